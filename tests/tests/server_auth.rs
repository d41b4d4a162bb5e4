//! Sign-in, access tokens, refresh rotation, reuse detection and logout.

use std::thread::sleep;
use std::time::Duration;

use ferry_e2e::server::{upsert, AuthHeader, TestServer};
use ferry_protocol::TokenResponse;
use reqwest::Method;
use serde_json::json;

#[test]
fn login_returns_tokens_and_bad_credentials_look_alike() {
    let server = TestServer::start();
    server.add_user("ann", "red", "s3cret pw");
    let mut client = server.client();

    let tokens = client.login("ann", "s3cret pw");
    assert_eq!(tokens.user, "ann");
    assert_eq!(tokens.org, "red");
    assert!(tokens.access_expires_at > tokens.server_time);
    assert!(tokens.refresh_expires_at > tokens.access_expires_at);
    // Default TTLs: 15 minutes and 30 days (allow for second rounding).
    let access_ttl = tokens.access_expires_at - tokens.server_time;
    assert!((898_000..=900_000).contains(&access_ttl), "{access_ttl}");
    let refresh_ttl = tokens.refresh_expires_at - tokens.server_time;
    assert_eq!(refresh_ttl, 30 * 24 * 3600 * 1000);

    let wrong_password = client.try_login("ann", "nope");
    wrong_password.assert_error(401, "invalid_credentials");
    let no_such_user = client.try_login("nobody", "s3cret pw");
    no_such_user.assert_error(401, "invalid_credentials");
    assert_eq!(wrong_password.message(), no_such_user.message());

    // The token works on a sync endpoint.
    assert_eq!(client.get("/v1/pull").status, 200);
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let mut client = server.client();
    let first = client.login("ann", "pw");

    let second: TokenResponse = {
        let r = client.refresh(&first.refresh_token);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!((second.user.as_str(), second.org.as_str()), ("ann", "red"));
    client.tokens = Some(second.clone());
    assert_eq!(client.get("/v1/pull").status, 200, "rotated access token works");

    let third: TokenResponse = client.refresh(&second.refresh_token).json();

    // Presenting an already used token: refused, and the whole family dies,
    // including the newest token that was never used.
    let reuse = client.refresh(&first.refresh_token);
    reuse.assert_error(401, "invalid_refresh_token");
    assert!(reuse.message().contains("reuse"), "{}", reuse.message());
    client.refresh(&third.refresh_token).assert_error(401, "invalid_refresh_token");

    // Signing in again starts a new, working family.
    let fresh = client.login("ann", "pw");
    assert_eq!(client.refresh(&fresh.refresh_token).status, 200);

    client.refresh("not-a-token").assert_error(401, "invalid_refresh_token");
    client.post_json("/v1/auth/refresh", &json!({"refresh_token": 5})).assert_error(400, "malformed_request");
}

#[test]
fn a_lost_refresh_answer_can_be_retried_within_the_grace_window() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let mut client = server.client();
    let first = client.login("ann", "pw");

    // The server rotates, but the answer never reaches the client.
    let lost: TokenResponse = client.refresh(&first.refresh_token).json();
    // The client retries with the token it still holds: a new pair, not a
    // revoked session.
    let retried = client.refresh(&first.refresh_token);
    assert_eq!(retried.status, 200, "{}", retried.body);
    let retried: TokenResponse = retried.json();
    assert_ne!(retried.refresh_token, lost.refresh_token);
    client.tokens = Some(retried.clone());
    assert_eq!(client.get("/v1/pull").status, 200);

    // The retried pair rotates on as usual.
    let next: TokenResponse = client.refresh(&retried.refresh_token).json();
    // Once a successor has been used, the old token is a replay again: the
    // family is revoked, including the newest token.
    let replay = client.refresh(&first.refresh_token);
    replay.assert_error(401, "invalid_refresh_token");
    assert!(replay.message().contains("reuse"), "{}", replay.message());
    client.refresh(&next.refresh_token).assert_error(401, "invalid_refresh_token");
}

/// The answer a retry superseded never reached its client: if it is ever
/// presented, it was stolen (and the retry may have been the thief's), so the
/// whole family ends and nobody keeps the session.
#[test]
fn presenting_an_answer_a_retry_superseded_ends_the_session() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let mut client = server.client();
    let first = client.login("ann", "pw");
    let clients: TokenResponse = client.refresh(&first.refresh_token).json();
    let thiefs: TokenResponse = client.refresh(&first.refresh_token).json(); // a replay within the window
    let r = client.refresh(&clients.refresh_token);
    r.assert_error(401, "invalid_refresh_token");
    assert!(r.message().contains("reuse"), "{}", r.message());
    client.refresh(&thiefs.refresh_token).assert_error(401, "invalid_refresh_token");
}

#[test]
fn logout_revokes_the_family() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let mut client = server.client();
    let first = client.login("ann", "pw");
    let second: TokenResponse = client.refresh(&first.refresh_token).json();

    let out = client.logout(&second.refresh_token);
    assert_eq!(out.status, 204, "{}", out.body);
    client.refresh(&second.refresh_token).assert_error(401, "invalid_refresh_token");
    // Logging out twice, or with an unknown token, is fine.
    assert_eq!(client.logout(&second.refresh_token).status, 204);
    assert_eq!(client.logout("unknown").status, 204);
    // Other sessions of the same user are untouched.
    let other = client.login("ann", "pw");
    assert_eq!(client.refresh(&other.refresh_token).status, 200);
}

#[test]
fn expired_access_token_is_refused_then_refresh_recovers() {
    let server = TestServer::start_with(&["--access-token-ttl", "1"]);
    server.add_user("ann", "red", "pw");
    let mut client = server.client();
    let tokens = client.login("ann", "pw");
    // A 1 s token issued in second S expires after S+1: 3 s is always past it.
    sleep(Duration::from_secs(3));
    let r = client.try_push(&[upsert("note", "n1", 0, json!({"a": 1}))]);
    r.assert_error(401, "unauthorized");
    assert!(r.message().contains("expired"), "{}", r.message());
    assert!(r.message().contains("refresh"), "{}", r.message());
    client.get("/v1/pull").assert_error(401, "unauthorized");

    let renewed = client.refresh(&tokens.refresh_token);
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let renewed: TokenResponse = renewed.json();
    assert!(renewed.access_expires_at > tokens.access_expires_at);
    assert_eq!(server.stats()["mutations_applied"], 0);
}

#[test]
fn sync_endpoints_require_a_valid_access_token() {
    let server = TestServer::start();
    let other = TestServer::start();
    server.add_user("ann", "red", "pw");
    other.add_user("ann", "red", "pw");
    let signed_in = server.login("ann", "pw");
    // Same user name on another server: its token is signed with another
    // secret.
    let foreign = other.login("ann", "pw");

    let push_body = serde_json::to_vec(&json!({"mutations": []})).unwrap();
    let cases = [
        AuthHeader::None,
        AuthHeader::Raw("Bearer".into()),
        AuthHeader::Raw("Bearer garbage".into()),
        AuthHeader::Raw("Bearer a.b.c".into()),
        AuthHeader::Raw(format!("Basic {}", signed_in.access_token())),
        AuthHeader::Raw(format!("Bearer {}", signed_in.tokens.as_ref().unwrap().refresh_token)),
        AuthHeader::Raw(format!("Bearer {}", foreign.access_token())),
    ];
    for auth in cases {
        for (method, path, body) in [
            (Method::POST, "/v1/push", Some(push_body.clone())),
            (Method::GET, "/v1/pull?since=0", None),
            (Method::GET, "/v1/records/note/n1", None),
        ] {
            let r = signed_in.request(method.clone(), path, body, auth.clone());
            r.assert_error(401, "unauthorized");
            assert!(!r.message().is_empty());
        }
    }
    // Health needs no token.
    let health = server.client().request(Method::GET, "/health", None, AuthHeader::None);
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
    assert_eq!(health.body["protocol"], 1);
}

#[test]
fn secrets_never_reach_the_log() {
    let server = TestServer::start();
    let password = "correct-horse-battery-staple";
    server.add_user("ann", "red", password);
    let mut client = server.client();
    let tokens = client.login("ann", password);
    client.try_login("ann", "typo-horse-battery");
    client.try_login("correct-horse-in-the-user-field", "x");
    let rotated: TokenResponse = client.refresh(&tokens.refresh_token).json();
    client.refresh(&tokens.refresh_token); // a retry within the grace window
    client.refresh(&tokens.refresh_token); // still a retry: nothing used since
    client.push(&[upsert("note", "n1", 0, json!({"private": "payload-marker-xyz"}))]);
    let log = server.log();
    assert!(log.contains("login"), "log has login lines:\n{log}");
    assert!(log.contains("push"), "log has push lines:\n{log}");
    for secret in [
        password,
        "typo-horse-battery",
        "correct-horse-in-the-user-field",
        &tokens.access_token,
        &tokens.refresh_token,
        &rotated.refresh_token,
        &rotated.access_token,
        "payload-marker-xyz",
    ] {
        assert!(!log.contains(secret), "log contains a secret: {secret}");
    }
}
