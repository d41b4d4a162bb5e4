//! In-process tests of the HTTP layer: request parsing, error mapping and a
//! property test that no body makes the push endpoint panic or fail with 5xx.

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
    db: ServerDb,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = ServerDb::open(dir.path().join("t.db")).unwrap();
    let secret = db.jwt_secret().unwrap();
    let auth = Auth {
        keys: crate::auth::JwtKeys::new(&secret),
        access_ttl: Duration::from_secs(60),
        refresh_ttl: Duration::from_secs(600),
    };
    let (token, _) = auth
        .keys
        .issue("ann", "org1", Duration::from_secs(600), now_ms())
        .unwrap();
    let app = router(AppState::new(db.clone(), auth));
    Harness {
        _dir: dir,
        app,
        token,
        db,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

impl Harness {
    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        assert!(
            res.headers().contains_key(SERVER_TIME_HEADER),
            "missing server time header"
        );
        let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
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
    serde_json::to_value(e.error)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn bad_bodies_get_protocol_errors() {
    let h = harness();
    runtime().block_on(async {
        let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
            (b"{".to_vec(), StatusCode::BAD_REQUEST, "malformed_request"),
            (b"".to_vec(), StatusCode::BAD_REQUEST, "malformed_request"),
            (b"[]".to_vec(), StatusCode::BAD_REQUEST, "malformed_request"),
            (
                b"{\"mutations\": 5}".to_vec(),
                StatusCode::BAD_REQUEST,
                "malformed_request",
            ),
            (
                vec![0xff, 0xfe, b'{'],
                StatusCode::BAD_REQUEST,
                "malformed_request",
            ),
            (
                format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
                StatusCode::BAD_REQUEST,
                "malformed_request",
            ),
        ];
        for (body, status, code) in cases {
            let (got, value) = h.push_raw(body.clone()).await;
            assert_eq!(
                got,
                status,
                "body {:?}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
            assert_eq!(error_code(&value), code);
        }
        // Without a Content-Length header (as with a chunked upload) the
        // body is cut off by DefaultBodyLimit and still answered properly.
        let big = vec![b' '; ferry_protocol::limits::MAX_BODY_BYTES + 10];
        let (status, value) = h.push_raw(big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error_code(&value), "too_large");
        assert_eq!(h.db.stats().unwrap().mutations_applied, 0);
    });
}

#[test]
fn auth_errors() {
    let h = harness();
    runtime().block_on(async {
        let req = Request::post("/v1/push")
            .body(Body::from("{\"mutations\":[]}"))
            .unwrap();
        let (status, body) = h.send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&body), "unauthorized");
        assert!(body["message"].as_str().unwrap().contains("missing"));

        let req = Request::get("/v1/pull")
            .header(header::AUTHORIZATION, "Bearer not.a.jwt")
            .body(Body::empty())
            .unwrap();
        let (status, body) = h.send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&body), "unauthorized");

        let (status, body) = h
            .send(Request::get("/nope").body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error_code(&body), "not_found");
        let (status, body) = h
            .send(Request::get("/v1/push").body(Body::empty()).unwrap())
            .await;
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

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mutation-shaped objects where every field may be missing or of any type,
/// so parsing gets past the outer shape and exercises the per-field paths.
fn mutation_like() -> impl Strategy<Value = Value> {
    let field = |good: BoxedStrategy<Value>| prop_oneof![3 => good.prop_map(Some), 1 => json_value().prop_map(Some), 1 => Just(None)];
    (
        field(
            any::<u128>()
                .prop_map(|n| json!(uuid::Uuid::from_u128(n)))
                .boxed(),
        ),
        field(prop_oneof![Just(json!("activity")), ".{0,70}".prop_map(Value::String)].boxed()),
        field(".{0,140}".prop_map(Value::String).boxed()),
        field(
            prop_oneof![
                Just(json!("upsert")),
                Just(json!("patch")),
                Just(json!("delete"))
            ]
            .boxed(),
        ),
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
