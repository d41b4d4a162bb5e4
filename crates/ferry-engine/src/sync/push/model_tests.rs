//! The pipelined push against the one-at-a-time push (depth 1), on a model
//! server that applies batches with the real server's rules
//! (`ferry_server::apply::plan_batch`) and answers each request at random:
//! applied, 413, a timeout (nothing applied), an answer lost after the
//! apply, and answers arriving out of order. Conflicts, rejections and
//! blocked mutations come from the workload itself (records another client
//! wrote first, payloads over the model's size limit, chains behind them).
//! Both runs are pushed until nothing more can go; the outbox (per record,
//! in order), the local records and the server's records must be the same,
//! and no mutation is applied twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ferry_protocol::{ErrorCode, Op, PushRequest, PushResponse};
use ferry_server::apply::{plan_batch, AppliedResult, BatchInputs, Rules, SeqStart, StoredRecord};
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use uuid::Uuid;

use super::{push_queue, Uplink};
use crate::error::{EngineError, Result};
use crate::model::SyncReport;
use crate::state::Inner;
use crate::store::{Store, WriteOp};
use crate::transport::TransportError;
use crate::EngineConfig;

const ENTITY: &str = "activity";
/// Payloads over this are rejected by the model server (`payload_too_large`).
const MODEL_MAX_PAYLOAD: usize = 120;
/// Server-side edit time of the records another client wrote first: local
/// edits before it lose a last-write-wins conflict, later ones win.
const OTHER_CLIENT_EDITED_AT: i64 = 30;

#[derive(Debug, Clone)]
enum Write {
    Put { record: usize, big: bool },
    Patch { record: usize },
    Delete { record: usize },
}

#[derive(Debug, Default)]
struct ServerState {
    records: HashMap<(String, String), StoredRecord>,
    applied: HashMap<Uuid, AppliedResult>,
    seq: u64,
    /// Mutations applied (never counting a duplicate).
    applications: u64,
    /// Mutations answered `blocked` since the round began.
    blocked: std::collections::HashSet<Uuid>,
    /// Seqs of changes other clients made (never pulled in this test).
    others: Vec<u64>,
}

struct ModelServer {
    state: Mutex<ServerState>,
    rng: Mutex<StdRng>,
}

impl ModelServer {
    fn new(seed: u64, written_by_other: &[usize]) -> ModelServer {
        let mut state = ServerState::default();
        for &r in written_by_other {
            state.seq += 1;
            let rec = StoredRecord {
                entity: ENTITY.into(),
                record_id: record_id(r),
                version: 1,
                seq: state.seq,
                deleted: false,
                data: Some(r#"{"by":"other"}"#.into()),
                edited_at: OTHER_CLIENT_EDITED_AT,
                edited_by: "other".into(),
                server_time: OTHER_CLIENT_EDITED_AT,
            };
            state.others.push(state.seq);
            state.records.insert(rec.key(), rec);
        }
        ModelServer { state: Mutex::new(state), rng: Mutex::new(StdRng::seed_from_u64(seed)) }
    }

    fn apply(&self, req: &PushRequest, other_first: bool) -> PushResponse {
        let mut st = self.state.lock().unwrap();
        if other_first {
            // Another client's change to a record of its own commits just
            // before this batch: the pull cursor must never pass it.
            st.seq += 1;
            let seq = st.seq;
            st.others.push(seq);
        }
        let mut inputs = BatchInputs::default();
        for m in &req.mutations {
            if let Some(r) = st.applied.get(&m.id) {
                inputs.applied.insert(m.id, *r);
            }
            let key = (m.entity.clone(), m.record_id.clone());
            if let Some(r) = st.records.get(&key) {
                inputs.records.insert(key, r.clone());
            }
        }
        let start = SeqStart { counter: st.seq, org_latest: st.seq };
        let plan = plan_batch("ann", &req.mutations, inputs, start, &Rules::max_payload(MODEL_MAX_PAYLOAD), 1_000)
            .expect("plan");
        for r in plan.records {
            st.records.insert(r.key(), r);
        }
        for a in &plan.applied {
            assert!(st.applied.insert(a.mutation_id, a.result).is_none(), "applied twice");
            st.applications += 1;
        }
        st.seq = plan.last_seq;
        for r in &plan.outcome.results {
            if r.outcome == ferry_protocol::Outcome::Blocked {
                st.blocked.insert(r.mutation_id);
            }
        }
        PushResponse {
            results: plan.outcome.results,
            server_time: 1_000,
            seq_before: Some(plan.outcome.seq_before),
            seq_after: Some(plan.outcome.seq_after),
        }
    }
}

fn transient(reason: &str) -> EngineError {
    TransportError::Transient {
        reason: reason.into(),
        retry_after: None,
        cause: crate::transport::TransientCause::Network,
    }
    .into()
}

impl Uplink for ModelServer {
    fn push(&self, req: PushRequest) -> impl std::future::Future<Output = Result<PushResponse>> + Send {
        let (yields, fault, other_first) = {
            let mut rng = self.rng.lock().unwrap();
            (rng.gen_range(0..4u32), rng.gen_range(0..10u32), rng.gen_ratio(1, 10))
        };
        async move {
            // Requests out at once reach the server in any order.
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            match fault {
                0 if req.mutations.len() > 1 => Err(TransportError::Permanent {
                    status: 413,
                    code: ErrorCode::TooLarge,
                    message: "request body too large".into(),
                }
                .into()),
                1 => Err(transient("timed out")),
                2 => {
                    self.apply(&req, other_first);
                    Err(transient("connection closed before the answer"))
                }
                _ => Ok(self.apply(&req, other_first)),
            }
        }
    }
}

fn record_id(r: usize) -> String {
    format!("r{r}")
}

fn write_op(w: &Write, i: usize) -> WriteOp {
    let fields = |text: String| serde_json::json!({ "n": i, "text": text }).as_object().cloned();
    let (record, op, payload) = match *w {
        Write::Put { record, big } => (record, Op::Upsert, fields(if big { "x".repeat(200) } else { "small".into() })),
        Write::Patch { record } => (record, Op::Patch, fields(format!("patch {i}"))),
        Write::Delete { record } => (record, Op::Delete, None),
    };
    WriteOp { entity: ENTITY.into(), record_id: record_id(record), op, payload }
}

/// A local record: (id, version, data, deleted, shadow).
type LocalRow = (String, i64, Option<String>, bool, Option<String>);

/// What must come out the same.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Per record, its remaining outbox entries in order: (op, payload, state).
    outbox: BTreeMap<String, Vec<(String, Option<String>, String)>>,
    local: Vec<LocalRow>,
    /// Server records: (id, version, deleted, data).
    server: BTreeMap<String, (u64, bool, Option<String>)>,
    applications: u64,
}

async fn run(writes: &[Write], written_by_other: &[usize], batch: usize, depth: usize, seed: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ferry.db")).unwrap();
    let config = EngineConfig { batch_max_count: batch, push_depth: depth, ..EngineConfig::new(dir.path()) };
    let inner = Arc::new(Inner::new(config, store).unwrap());
    for (i, w) in writes.iter().enumerate() {
        // A patch or delete of a record that is not there is refused
        // locally, the same way in both runs.
        let _ = inner.store.write(&write_op(w, i), i as i64 + 1, i as i64 + 1);
    }
    let server = ModelServer::new(seed, written_by_other);
    let mut report = SyncReport::default();
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 2_000, "the push never finished");
        server.state.lock().unwrap().blocked.clear();
        let result = push_queue(&inner, &server, &mut report).await;
        assert_eq!(inner.store.counts().unwrap().in_flight, 0, "nothing stays in flight after a push");
        match result {
            Ok(()) => {}
            Err(EngineError::Transport(t)) if t.is_transient() => continue,
            Err(e) => panic!("push failed: {e}"),
        }
        // A push that ends well has sent everything it could: only what
        // the server answered `blocked` (behind a conflict or rejection in
        // its batch) waits for the next push.
        let left = inner.store.next_batch(0, 1000, 1 << 20).unwrap();
        let blocked = &server.state.lock().unwrap().blocked;
        for item in &left {
            assert!(blocked.contains(&item.mutation.id), "{item:?} was passed over by a push that ended well");
        }
        if left.is_empty() {
            break;
        }
    }
    // The pull cursor moved only across our own changes.
    let cursor: u64 = inner.store.setting(crate::store::settings::PULL_CURSOR).unwrap().unwrap_or(0);
    let st = server.state.lock().unwrap();
    let first_other = st.others.iter().min().copied().unwrap_or(u64::MAX);
    assert!(cursor < first_other, "the pull cursor ({cursor}) passed another client's change ({first_other})");
    assert!(cursor <= st.seq);
    drop(st);
    snapshot(&inner.store, &server)
}

fn snapshot(store: &Store, server: &ModelServer) -> Outcome {
    let conn = store.test_conn();
    let mut outbox: BTreeMap<String, Vec<_>> = BTreeMap::new();
    let mut stmt = conn.prepare("SELECT record_id, op, payload, state FROM outbox ORDER BY seq").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))).unwrap();
    for row in rows {
        let (id, entry) = row.unwrap();
        outbox.entry(id).or_default().push(entry);
    }
    let mut stmt = conn.prepare("SELECT id, version, data, deleted, shadow FROM records ORDER BY id").unwrap();
    let local = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let st = server.state.lock().unwrap();
    let server_records =
        st.records.values().map(|r| (r.record_id.clone(), (r.version, r.deleted, r.data.clone()))).collect();
    Outcome { outbox, local, server: server_records, applications: st.applications }
}

fn write_strategy() -> impl Strategy<Value = Write> {
    (0..6usize, 0..10u8).prop_map(|(record, kind)| match kind {
        0..=4 => Write::Put { record, big: false },
        5 => Write::Put { record, big: true },
        6..=8 => Write::Patch { record },
        _ => Write::Delete { record },
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn pipelined_push_ends_where_the_one_at_a_time_push_ends(
        writes in prop::collection::vec(write_strategy(), 1..60),
        written_by_other in prop::collection::vec(0..6usize, 0..3),
        batch in 1..8usize,
        depth in 2..5usize,
        seeds in (any::<u64>(), any::<u64>()),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut others = written_by_other;
        others.sort_unstable();
        others.dedup();
        let sequential = rt.block_on(run(&writes, &others, batch, 1, seeds.0));
        let pipelined = rt.block_on(run(&writes, &others, batch, depth, seeds.1));
        prop_assert_eq!(pipelined, sequential);
    }
}
