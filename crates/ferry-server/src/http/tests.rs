//! In-process tests of the HTTP layer: request parsing, error mapping and
//! property tests that no push body, pull query string, auth body or
//! `Authorization` header makes the server panic or fail with a 5xx: each is
//! answered, or refused with a protocol error body.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use ferry_protocol::ErrorBody;
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;

struct Harness {
    _dir: tempfile::TempDir,
    app: Router,
    token: String,
    db: Arc<dyn Storage>,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db: Arc<dyn Storage> = Arc::new(crate::storage::sqlite::SqliteStorage::open(dir.path().join("t.db")).unwrap());
    let secret = runtime().block_on(db.signing_secret()).unwrap();
    let auth = Auth {
        keys: crate::auth::JwtKeys::new(&secret),
        access_ttl: Duration::from_secs(60),
        refresh_ttl: Duration::from_secs(600),
    };
    // Tokens are checked against the account on every request.
    let ann = crate::users::User {
        name: "ann".into(),
        org: "org1".into(),
        password_hash: "$argon2id$x".into(),
        created_at: 1,
        disabled_at: None,
        session_epoch: 1,
    };
    runtime().block_on(db.add_user(&ann)).unwrap();
    let (token, _) = auth.keys.issue(&ann, Duration::from_secs(600), now_ms()).unwrap();
    let app = router(AppState::new(db.clone(), auth));
    Harness { _dir: dir, app, token, db }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

impl Harness {
    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        assert!(res.headers().contains_key(SERVER_TIME_HEADER), "missing server time header");
        let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, body)
    }

    async fn push_raw(&self, body: impl Into<Body>) -> (StatusCode, Value) {
        let req = Request::post("/v1/push")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap();
        self.send(req).await
    }
}

fn error_code(body: &Value) -> String {
    let e: ErrorBody = serde_json::from_value(body.clone()).expect("an ErrorBody");
    serde_json::to_value(e.error).unwrap().as_str().unwrap().to_owned()
}

#[test]
fn bad_bodies_get_protocol_errors() {
    let h = harness();
    runtime().block_on(async {
        let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
            (b"{".to_vec(), StatusCode::BAD_REQUEST, "malformed_request"),
            (b"".to_vec(), StatusCode::BAD_REQUEST, "malformed_request"),
            (b"[]".to_vec(), StatusCode::BAD_REQUEST, "malformed_request"),
            (b"{\"mutations\": 5}".to_vec(), StatusCode::BAD_REQUEST, "malformed_request"),
            (vec![0xff, 0xfe, b'{'], StatusCode::BAD_REQUEST, "malformed_request"),
            (
                format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
                StatusCode::BAD_REQUEST,
                "malformed_request",
            ),
        ];
        for (body, status, code) in cases {
            let (got, value) = h.push_raw(body.clone()).await;
            assert_eq!(got, status, "body {:?}", String::from_utf8_lossy(&body[..body.len().min(40)]));
            assert_eq!(error_code(&value), code);
        }
        // Without a Content-Length header (as with a chunked upload) the
        // body is cut off by DefaultBodyLimit and still answered properly.
        let big = vec![b' '; ferry_protocol::limits::MAX_BODY_BYTES + 10];
        let (status, value) = h.push_raw(big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error_code(&value), "too_large");
        assert_eq!(h.db.stats().await.unwrap().mutations_applied, 0);
    });
}

#[test]
fn auth_errors() {
    let h = harness();
    runtime().block_on(async {
        let req = Request::post("/v1/push").body(Body::from("{\"mutations\":[]}")).unwrap();
        let (status, body) = h.send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&body), "unauthorized");
        assert!(body["message"].as_str().unwrap().contains("missing"));

        let req =
            Request::get("/v1/pull").header(header::AUTHORIZATION, "Bearer not.a.jwt").body(Body::empty()).unwrap();
        let (status, body) = h.send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&body), "unauthorized");

        let (status, body) = h.send(Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error_code(&body), "not_found");
        let (status, body) = h.send(Request::get("/v1/push").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(error_code(&body), "invalid_request");
    });
}

#[test]
fn push_then_pull_in_process() {
    let h = harness();
    runtime().block_on(async {
        let body = json!({"mutations": [{
            "id": "6f1c2d7e-3b1a-4c55-9d0e-0a1b2c3d4e5f", "entity": "activity",
            "record_id": "a1", "op": "upsert", "payload": {"title": "Walk"},
            "base_version": 0, "edited_at": 1, "future_field": true
        }], "also_unknown": 1});
        let (status, value) = h.push_raw(body.to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(value["results"][0]["status"], "applied");
        let req = Request::get("/v1/pull?since=0&limit=10")
            .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
            .body(Body::empty())
            .unwrap();
        let (status, value) = h.send(req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(value["changes"][0]["data"]["title"], "Walk");
        assert_eq!(value["changes"][0]["edited_by"], "ann");
    });
}

impl Harness {
    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let req = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    async fn push_one(&self, id: &str, record: &str) -> Value {
        let body = json!({"mutations": [{
            "id": id, "entity": "activity", "record_id": record, "op": "upsert",
            "payload": {"title": record}, "base_version": 0, "edited_at": 1
        }]});
        let (status, value) = self.push_raw(body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{value}");
        value
    }
}

#[test]
fn a_waiting_pull_answers_at_once_when_changes_are_there() {
    let h = harness();
    runtime().block_on(async {
        h.push_one("6f1c2d7e-3b1a-4c55-9d0e-0a1b2c3d4e50", "a1").await;
        let (status, value) = h.get("/v1/pull?since=0&wait=60").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(value["changes"][0]["record_id"], "a1");
        assert_eq!(value["wait"], 60);
        // A plain pull says the server can wait, too.
        let (_, plain) = h.get("/v1/pull?since=0").await;
        assert_eq!(plain["wait"], 0);
    });
}

#[test]
fn a_push_wakes_a_waiting_pull_of_its_organisation() {
    let h = Arc::new(harness());
    runtime().block_on(async {
        let waiting = {
            let h = h.clone();
            tokio::spawn(async move { h.get("/v1/pull?since=0&wait=60").await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "answered before anything changed");
        h.push_one("6f1c2d7e-3b1a-4c55-9d0e-0a1b2c3d4e51", "a2").await;
        // Far below the 60 s wait: the push, not the deadline, answered it.
        let (status, value) = tokio::time::timeout(Duration::from_secs(20), waiting).await.unwrap().unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(value["changes"][0]["record_id"], "a2");
        assert_eq!(value["cursor"], 1);
    });
}

#[test]
fn a_waiting_pull_with_nothing_new_answers_empty_at_its_deadline() {
    let h = harness();
    runtime().block_on(async {
        let (status, value) = h.get("/v1/pull?since=0&wait=1").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(value["changes"], json!([]));
        assert_eq!((value["cursor"].as_u64(), value["has_more"].as_bool()), (Some(0), Some(false)));
        assert_eq!(value["wait"], 1);
    });
}

#[test]
fn a_wait_beyond_the_limit_is_refused() {
    let h = harness();
    runtime().block_on(async {
        let (status, value) = h.get("/v1/pull?since=0&wait=61").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(value["message"].as_str().unwrap().contains("between 0 and 60"), "{value}");
    });
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mutation-shaped objects where every field may be missing or of any type,
/// so parsing gets past the outer shape and exercises the per-field paths.
fn mutation_like() -> impl Strategy<Value = Value> {
    let field = |good: BoxedStrategy<Value>| prop_oneof![3 => good.prop_map(Some), 1 => json_value().prop_map(Some), 1 => Just(None)];
    (
        field(any::<u128>().prop_map(|n| json!(uuid::Uuid::from_u128(n))).boxed()),
        field(prop_oneof![Just(json!("activity")), ".{0,70}".prop_map(Value::String)].boxed()),
        field(".{0,140}".prop_map(Value::String).boxed()),
        field(prop_oneof![Just(json!("upsert")), Just(json!("patch")), Just(json!("delete"))].boxed()),
        field(json_value().boxed()),
        field((0u64..4).prop_map(|n| json!(n)).boxed()),
        field(any::<i64>().prop_map(|n| json!(n)).boxed()),
    )
        .prop_map(|(id, entity, record_id, op, payload, base, edited_at)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("id", id),
                ("entity", entity),
                ("record_id", record_id),
                ("op", op),
                ("payload", payload),
                ("base_version", base),
                ("edited_at", edited_at),
            ] {
                if let Some(v) = v {
                    m.insert(k.to_owned(), v);
                }
            }
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let h = harness();
        let (status, value) = runtime().block_on(h.push_raw(body));
        // Random bytes are (almost surely) not a valid push: a 4xx with a body.
        prop_assert!(status.is_client_error() || status == StatusCode::OK, "{status}");
        if status.is_client_error() {
            error_code(&value);
        }
    }

    #[test]
    fn arbitrary_json_never_fails_server_side(
        top in json_value(),
        mutations in prop::collection::vec(mutation_like(), 0..8),
        wrap in any::<bool>(),
    ) {
        let h = harness();
        let body = if wrap { json!({ "mutations": mutations }) } else { top };
        let (status, value) = runtime().block_on(h.push_raw(body.to_string()));
        prop_assert!(status == StatusCode::OK || status.is_client_error(), "{status}: {value}");
        if status.is_client_error() {
            error_code(&value);
        } else {
            prop_assert!(value["results"].is_array());
        }
    }
}

/// `status` is a protocol error answer: a 4xx whose body is an `ErrorBody`
/// with the expected code (one of `codes`) and a message.
fn assert_protocol_error(status: StatusCode, body: &Value, codes: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(status.is_client_error(), "{status}: {body}");
    let parsed: Result<ErrorBody, _> = serde_json::from_value(body.clone());
    prop_assert!(parsed.is_ok(), "{status} without an ErrorBody: {body}");
    prop_assert!(!parsed.unwrap().message.is_empty(), "{status}: empty message: {body}");
    let code = error_code(body);
    prop_assert!(codes.contains(&code.as_str()), "{status}: code {code}, expected one of {codes:?}: {body}");
    Ok(())
}

/// Query strings made of the pieces a pull query has (names, `=`, `&`,
/// numbers of every size and sign), URI characters and percent-escapes of
/// any byte (invalid UTF-8 included).
fn query_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("since=".to_owned()),
        Just("limit=".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0u32..2000).prop_map(|n| n.to_string()),
        "[A-Za-z0-9;._~!$'()*+,:@/?-]{1,6}",
        any::<u8>().prop_map(|b| format!("%{b:02X}")),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|v| v.concat())
}

/// Header values: arbitrary bytes (the ones HTTP allows in a header at
/// all), and bearer-shaped values with random schemes and tokens.
fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (
            prop_oneof![Just("Bearer"), Just("bearer"), Just("Basic"), Just(""), Just("Bearer\t")],
            prop_oneof![".{0,200}", "[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{1,80}\\.[A-Za-z0-9_-]{0,60}",]
        )
            .prop_map(|(scheme, token)| format!("{scheme} {token}").into_bytes()),
    ]
}

/// Bodies for the auth endpoints: random bytes, any JSON, and objects with
/// the right field names holding values of any type.
fn auth_body(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let shaped =
        prop::collection::vec(prop_oneof![3 => ".{0,40}".prop_map(Value::String), 1 => json_value()], fields.len())
            .prop_map(move |values| {
                let m: serde_json::Map<String, Value> = fields.iter().map(|f| f.to_string()).zip(values).collect();
                Value::Object(m).to_string().into_bytes()
            });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        shaped,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any query string on `/v1/pull` is a page or a protocol error, never a
    /// panic or a 5xx (e.g. a `since` past SQLite's integer range).
    #[test]
    fn arbitrary_pull_queries_never_fail_server_side(query in query_string()) {
        let h = harness();
        let Ok(req) = Request::get(format!("/v1/pull?{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
            .body(Body::empty())
        else {
            // Not a URI at all: no client could send it.
            return Ok(());
        };
        let (status, value) = runtime().block_on(h.send(req));
        if status == StatusCode::OK {
            prop_assert!(value["changes"].is_array(), "{value}");
            prop_assert!(value["cursor"].is_u64(), "{value}");
        } else {
            assert_protocol_error(status, &value, &["invalid_request"])?;
        }
    }

    /// Any `Authorization` header on the authenticated endpoints is refused
    /// with `401 unauthorized` and a protocol error body.
    #[test]
    fn arbitrary_authorization_headers_are_refused_cleanly(value in authorization_value(), push in any::<bool>()) {
        let Ok(header_value) = axum::http::HeaderValue::from_bytes(&value) else {
            // Bytes HTTP forbids in a header (CR, LF, NUL): never reach a server.
            return Ok(());
        };
        let h = harness();
        let req = if push {
            Request::post("/v1/push").body(Body::from("{\"mutations\":[]}"))
        } else {
            Request::get("/v1/pull?since=0").body(Body::empty())
        };
        let mut req = req.unwrap();
        req.headers_mut().insert(header::AUTHORIZATION, header_value);
        let (status, body) = runtime().block_on(h.send(req));
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", body);
        assert_protocol_error(status, &body, &["unauthorized"])?;
    }
}

proptest! {
    // Fewer cases: a well-formed login runs argon2 (on purpose slow).
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    /// Any body sent to the auth endpoints is a protocol error (nobody can
    /// sign in: the harness has no users), or for logout a 204: logging out
    /// an unknown token is fine.
    #[test]
    fn arbitrary_auth_bodies_get_protocol_errors(
        login in auth_body(&["username", "password"]),
        refresh in auth_body(&["refresh_token"]),
        logout in auth_body(&["refresh_token"]),
    ) {
        let h = harness();
        let post = |path: &str, body: Vec<u8>| {
            Request::post(path).header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap()
        };
        let rt = runtime();
        let (status, value) = rt.block_on(h.send(post("/v1/auth/login", login)));
        assert_protocol_error(status, &value, &["malformed_request", "invalid_credentials"])?;
        let (status, value) = rt.block_on(h.send(post("/v1/auth/refresh", refresh)));
        assert_protocol_error(status, &value, &["malformed_request", "invalid_refresh_token"])?;
        let (status, value) = rt.block_on(h.send(post("/v1/auth/logout", logout)));
        if status != StatusCode::NO_CONTENT {
            assert_protocol_error(status, &value, &["malformed_request"])?;
        }
    }
}
