//! The checks of a chaos run, over what the harness saw (the writes it made
//! and the ids the CLI printed) and what the server and clients hold at the
//! end. Pure: the tests below feed it made-up runs to prove each check fires.
//!
//! - **attribution**: every applied mutation id is exactly one acknowledged
//!   write (`ferry put/patch/delete/restore` printed it), one resolution's
//!   upload (`upload_mutation_id` in a client's history) or one write whose
//!   process was killed before it could print (matched by record and by the
//!   time in its UUIDv7). Anything else is an *unexplained applied mutation*:
//!   an edit sent again under a new id, applied twice.
//! - **content**: replaying each record's applied mutations in version order
//!   (their payloads as the harness knows them) gives exactly what the server
//!   holds.
//! - **policy**: each resolution in a history obeys its entity's policy:
//!   client-wins keeps the local edit, server-wins the server's, manual is
//!   only ever settled by the user, merge keeps a field from one side or the
//!   other, lww keeps the edit made later on the server clock (checked when
//!   the harness's time windows tell the two edits apart).
//! - **lost**: every acknowledged write and every resolution upload is
//!   applied, superseded by a resolution that obeyed its policy, or queued.
//! - **divergent**: every client holds the server's live records.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Map, Value};

/// A record's fields.
pub type Fields = Map<String, Value>;
/// (entity, record id).
pub type Key = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    Put,
    Patch,
    Delete,
}

/// A local write the harness made.
#[derive(Debug, Clone)]
pub struct Write {
    /// The id `ferry` printed (empty for a write killed before it printed).
    pub id: String,
    pub client: usize,
    pub step: usize,
    pub entity: String,
    pub record_id: String,
    pub op: WriteOp,
    pub payload: Option<Fields>,
    /// Wall-clock ms the process ran in: the edit was made in between.
    pub window: (i64, i64),
    /// How far the client's estimate of the server clock, which stamped
    /// the edit, may have been off (ms).
    pub clock_error_ms: i64,
    pub desc: String,
}

/// A `ferry resolve` the harness ran that succeeded.
#[derive(Debug, Clone)]
pub struct ManualResolve {
    pub client: usize,
    pub step: usize,
    pub conflict_id: String,
    /// The id of the mutation `ferry resolve` said it queued, if any.
    pub printed_upload: Option<String>,
    pub window: (i64, i64),
    pub clock_error_ms: i64,
}

/// Everything the harness did and saw during the run.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Acknowledged writes (restores included).
    pub writes: Vec<Write>,
    /// Writes whose process was killed before it printed an id: they may or
    /// may not have been committed.
    pub maybe: Vec<Write>,
    pub resolves: Vec<ManualResolve>,
    /// Wall-clock window of each step (workload steps, then heal rounds).
    pub step_windows: Vec<(i64, i64)>,
}

/// One row of a client's resolution history.
#[derive(Debug, Clone, Default)]
pub struct HistoryRow {
    pub id: i64,
    pub entity: String,
    pub record_id: String,
    pub policy: String,
    pub winner: String,
    pub local: Option<Fields>,
    pub remote: Option<Fields>,
    pub result: Option<Fields>,
    pub superseded: Vec<String>,
    /// Local wall clock when it was settled.
    pub at: i64,
    pub conflict_id: Option<String>,
    pub upload_mutation_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct QueueItem {
    pub mutation_id: String,
    pub state: String,
    pub entity: String,
    pub record_id: String,
}

/// What one client holds at the end.
#[derive(Debug, Clone, Default)]
pub struct ClientView {
    pub idx: usize,
    /// Live records.
    pub records: BTreeMap<Key, Value>,
    pub queue: Vec<QueueItem>,
    pub history: Vec<HistoryRow>,
}

/// A row of the server's idempotency table.
#[derive(Debug, Clone)]
pub struct Applied {
    pub id: String,
    pub entity: String,
    pub record_id: String,
    pub version: u64,
}

/// A record as the server holds it.
#[derive(Debug, Clone)]
pub struct ServerRecord {
    pub entity: String,
    pub record_id: String,
    pub version: u64,
    pub deleted: bool,
    pub data: Option<Fields>,
}

#[derive(Debug, Clone, Default)]
pub struct ServerView {
    pub records: Vec<ServerRecord>,
    pub applied: Vec<Applied>,
    /// From `ferry-server stats --json`.
    pub mutations_applied: u64,
    pub distinct_applied_ids: u64,
}

/// A problem, with the workload steps to look at.
#[derive(Debug, Clone)]
pub struct Finding {
    pub steps: BTreeSet<usize>,
    pub text: String,
}

#[derive(Debug, Default, Clone)]
pub struct Audit {
    pub divergent: u64,
    pub lost: u64,
    /// Mutations applied twice: unexplained applied ids, repeated record
    /// versions, counters that disagree with the idempotency table.
    pub duplicates: u64,
    pub unexplained_applied: u64,
    /// Resolutions that broke their entity's policy.
    pub overwritten: u64,
    /// Records whose server value is not the replay of their mutations.
    pub wrong_content: u64,
    pub acked_applied: u64,
    pub acked_superseded: u64,
    pub acked_queued: u64,
    pub uploads: u64,
    pub uploads_applied: u64,
    pub uploads_superseded: u64,
    pub maybe_committed: u64,
    pub records_replayed: u64,
    pub history_rows: u64,
    pub lww_checked: u64,
    pub lww_undecidable: u64,
    pub merges_checked: u64,
    pub open_conflicts: u64,
    pub failed_mutations: u64,
    pub findings: Vec<Finding>,
}

/// Where a mutation came from.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    Write(&'a Write),
    /// A killed write that was committed after all.
    Maybe(&'a Write),
    Upload(&'a HistoryRow),
}

impl Origin<'_> {
    /// What the mutation does to the server's record.
    fn effect(&self) -> (WriteOp, Option<&Fields>) {
        match self {
            Origin::Write(w) | Origin::Maybe(w) => (w.op, w.payload.as_ref()),
            Origin::Upload(row) => match &row.result {
                Some(r) => (WriteOp::Put, Some(r)),
                None => (WriteOp::Delete, None),
            },
        }
    }
    fn key(&self) -> Key {
        match self {
            Origin::Write(w) | Origin::Maybe(w) => (w.entity.clone(), w.record_id.clone()),
            Origin::Upload(row) => (row.entity.clone(), row.record_id.clone()),
        }
    }
}

/// The ms timestamp of a UUIDv7 (ids of local writes and resolutions are
/// v7, stamped with the local wall clock when they were made).
pub fn v7_ms(id: &str) -> Option<i64> {
    let u = uuid::Uuid::parse_str(id).ok()?;
    (u.get_version_num() == 7).then(|| (u.as_u128() >> 80) as i64)
}

/// A record's state in a replay: `None` absent, `Some(None)` deleted.
type State = Option<Option<Fields>>;

fn apply(state: &State, op: WriteOp, payload: Option<&Fields>) -> Result<State, String> {
    match (op, state) {
        (WriteOp::Put, _) => Ok(Some(Some(payload.cloned().unwrap_or_default()))),
        (WriteOp::Patch, Some(Some(cur))) => {
            let mut next = cur.clone();
            for (k, v) in payload.into_iter().flatten() {
                if v.is_null() {
                    next.remove(k);
                } else {
                    next.insert(k.clone(), v.clone());
                }
            }
            Ok(Some(Some(next)))
        }
        (WriteOp::Delete, Some(Some(_))) => Ok(Some(None)),
        (op, s) => {
            Err(format!("{op:?} applied to a record that is {}", if s.is_none() { "absent" } else { "deleted" }))
        }
    }
}

/// An edit's time on the server clock: (earliest, latest) ms.
type Window = (i64, i64);

/// The later of two edits whose times are known to windows.
fn later(a: Window, b: Window) -> Window {
    (a.0.max(b.0), a.1.max(b.1))
}

pub struct Input<'a> {
    pub ledger: &'a Ledger,
    pub server: &'a ServerView,
    pub clients: &'a [ClientView],
    /// Entity → configured policy.
    pub policies: &'a BTreeMap<String, String>,
}

impl Input<'_> {
    /// The step running at wall-clock `ms`; between steps (a daemon's
    /// work), the one before; none before the first or long after the last.
    fn step_at(&self, ms: i64) -> Option<usize> {
        let w = &self.ledger.step_windows;
        let i = w.partition_point(|(start, _)| *start <= ms).checked_sub(1)?;
        (ms <= w[i].1 + 60_000).then_some(i)
    }
}

fn find(a: &mut Audit, steps: &[Option<usize>], text: String) {
    a.findings.push(Finding { steps: steps.iter().flatten().copied().collect(), text });
}

/// Whether `local` (a record's local value) includes the effect of an edit.
fn reflects(local: &Option<Fields>, op: WriteOp, payload: Option<&Fields>) -> bool {
    match (op, local) {
        (WriteOp::Put, Some(l)) => Some(l) == payload,
        (WriteOp::Delete, None) => true,
        (WriteOp::Patch, Some(l)) => {
            payload
                .into_iter()
                .flatten()
                .all(|(k, v)| if v.is_null() { !l.contains_key(k) } else { l.get(k) == Some(v) })
        }
        _ => false,
    }
}

pub fn audit(input: &Input<'_>) -> Audit {
    let mut a = Audit::default();
    let ledger = input.ledger;

    // ---- Who made which mutation id.
    let mut origins: HashMap<&str, Origin<'_>> = HashMap::new();
    for w in &ledger.writes {
        if origins.insert(&w.id, Origin::Write(w)).is_some() {
            a.duplicates += 1;
            find(&mut a, &[Some(w.step)], format!("mutation id {} was printed for two writes", w.id));
        }
    }
    let mut resolves: HashMap<(usize, &str), &ManualResolve> = HashMap::new();
    for r in &ledger.resolves {
        resolves.insert((r.client, r.conflict_id.as_str()), r);
    }
    let mut resolved_rows: HashSet<(usize, &str)> = HashSet::new();
    for cl in input.clients {
        for row in &cl.history {
            a.history_rows += 1;
            if let Some(cid) = &row.conflict_id {
                resolved_rows.insert((cl.idx, cid.as_str()));
            }
            let Some(up) = &row.upload_mutation_id else { continue };
            a.uploads += 1;
            if origins.insert(up, Origin::Upload(row)).is_some() {
                a.duplicates += 1;
                find(
                    &mut a,
                    &[input.step_at(row.at)],
                    format!(
                        "mutation id {up} is the upload of client {}'s resolution #{} and something else",
                        cl.idx, row.id
                    ),
                );
            }
        }
    }
    for r in &ledger.resolves {
        if !resolved_rows.contains(&(r.client, r.conflict_id.as_str())) {
            find(
                &mut a,
                &[Some(r.step)],
                format!(
                    "client {}: `ferry resolve {}` succeeded but no history entry records it",
                    r.client, r.conflict_id
                ),
            );
        }
    }

    // ---- The server's applied mutations: attribution.
    let mut maybe_used = vec![false; ledger.maybe.len()];
    let match_maybe = |id: &str, key: &Key, used: &mut Vec<bool>| -> Option<usize> {
        let ms = v7_ms(id)?;
        ledger
            .maybe
            .iter()
            .enumerate()
            .position(|(i, m)| {
                !used[i] && m.entity == key.0 && m.record_id == key.1 && ms >= m.window.0 - 2 && ms <= m.window.1 + 2
            })
            .inspect(|&i| used[i] = true)
    };
    let mut applied_ids: HashSet<&str> = HashSet::new();
    let mut by_record: HashMap<Key, Vec<(u64, &str)>> = HashMap::new();
    for ap in &input.server.applied {
        if !applied_ids.insert(&ap.id) {
            a.duplicates += 1;
            find(&mut a, &[], format!("mutation {} is in applied_mutations twice", ap.id));
        }
        let key = (ap.entity.clone(), ap.record_id.clone());
        by_record.entry(key.clone()).or_default().push((ap.version, &ap.id));
        if let Some(o) = origins.get(ap.id.as_str()) {
            if o.key() != key {
                find(&mut a, &[], format!("mutation {} was made for {:?} but applied to {key:?}", ap.id, o.key()));
            }
            continue;
        }
        if let Some(i) = match_maybe(&ap.id, &key, &mut maybe_used) {
            a.maybe_committed += 1;
            origins.insert(&ap.id, Origin::Maybe(&ledger.maybe[i]));
            continue;
        }
        a.unexplained_applied += 1;
        a.duplicates += 1;
        let step = v7_ms(&ap.id).and_then(|ms| input.step_at(ms));
        find(
            &mut a,
            &[step],
            format!(
                "unexplained applied mutation {} ({}/{} version {}): no acknowledged write or resolution made it \
                 (an edit sent again under a new id?)",
                ap.id, ap.entity, ap.record_id, ap.version
            ),
        );
    }
    let table = input.server.applied.len() as u64;
    if input.server.mutations_applied != table || input.server.distinct_applied_ids != table {
        a.duplicates +=
            input.server.mutations_applied.abs_diff(table).max(input.server.distinct_applied_ids.abs_diff(table));
        find(
            &mut a,
            &[],
            format!(
                "stats say {} mutations applied and {} distinct ids, the idempotency table holds {table}",
                input.server.mutations_applied, input.server.distinct_applied_ids
            ),
        );
    }

    // ---- Versions and content: replay each record's mutations.
    let step_of = |o: &Origin<'_>| match o {
        Origin::Write(w) | Origin::Maybe(w) => Some(w.step),
        Origin::Upload(row) => input.step_at(row.at),
    };
    // Every value each record had, with the mutation that produced it.
    let mut history_of: HashMap<Key, Vec<(Option<Fields>, &str)>> = HashMap::new();
    let on_server: HashMap<Key, &ServerRecord> =
        input.server.records.iter().map(|r| ((r.entity.clone(), r.record_id.clone()), r)).collect();
    for (key, rec) in &on_server {
        let mut vs = by_record.remove(key).unwrap_or_default();
        vs.sort();
        let versions: Vec<u64> = vs.iter().map(|v| v.0).collect();
        if versions != (1..=rec.version).collect::<Vec<_>>() {
            let distinct = versions.iter().collect::<BTreeSet<_>>().len();
            a.duplicates += (versions.len() - distinct) as u64;
            find(
                &mut a,
                &[],
                format!(
                    "{}/{} is at version {} but applied mutations produced versions {versions:?}",
                    key.0, key.1, rec.version
                ),
            );
            continue;
        }
        let mut state: State = None;
        let mut values = Vec::new();
        let mut replayed = true;
        for (version, id) in &vs {
            let Some(o) = origins.get(id) else {
                replayed = false;
                break;
            };
            let (op, payload) = o.effect();
            match apply(&state, op, payload) {
                Ok(next) => state = next,
                Err(e) => {
                    a.wrong_content += 1;
                    find(&mut a, &[step_of(o)], format!("{}/{} version {version} ({id}): {e}", key.0, key.1));
                    replayed = false;
                    break;
                }
            }
            values.push((state.clone().flatten(), *id));
        }
        if !replayed {
            continue;
        }
        a.records_replayed += 1;
        let expected = state.flatten();
        let held = if rec.deleted { None } else { rec.data.clone() };
        if expected != held {
            a.wrong_content += 1;
            let last = vs.last().and_then(|(_, id)| origins.get(id)).and_then(step_of);
            find(
                &mut a,
                &[last],
                format!(
                    "{}/{}: the server holds {} but its applied mutations make {}",
                    key.0,
                    key.1,
                    show(&held),
                    show(&expected)
                ),
            );
        }
        history_of.insert(key.clone(), values);
    }
    for (key, vs) in by_record {
        find(&mut a, &[], format!("applied mutations {vs:?} for {}/{}, which the server does not hold", key.0, key.1));
    }

    // ---- When each mutation's edit was made (server clock), as far as known.
    let manual_window = |client: usize, row: &HistoryRow| -> Option<Window> {
        let r = resolves.get(&(client, row.conflict_id.as_deref()?))?;
        Some((r.window.0 - r.clock_error_ms, r.window.1 + r.clock_error_ms))
    };
    let mut windows: HashMap<&str, Window> = HashMap::new();
    for (id, o) in &origins {
        if let Origin::Write(w) | Origin::Maybe(w) = o {
            windows.insert(*id, (w.window.0 - w.clock_error_ms, w.window.1 + w.clock_error_ms));
        }
    }
    // A resolution's upload carries the edit time of what it kept; rows can
    // depend on rows of other clients, so settle them in a few passes.
    let local_window = |windows: &HashMap<&str, Window>, row: &HistoryRow| -> Option<Window> {
        let mut out: Option<Window> = None;
        for id in &row.superseded {
            let w = *windows.get(id.as_str())?;
            out = Some(out.map_or(w, |o| later(o, w)));
        }
        out
    };
    let remote_window = |windows: &HashMap<&str, Window>, row: &HistoryRow| -> Option<Window> {
        let values = history_of.get(&(row.entity.clone(), row.record_id.clone()))?;
        let mut out: Option<Window> = None;
        for (_, id) in values.iter().filter(|(v, _)| *v == row.remote) {
            let w = *windows.get(id)?;
            out = Some(out.map_or(w, |o: Window| (o.0.min(w.0), o.1.max(w.1))));
        }
        out
    };
    for _ in 0..4 {
        for cl in input.clients {
            for row in &cl.history {
                let Some(up) = row.upload_mutation_id.as_deref() else { continue };
                let w = if row.policy == "manual" {
                    manual_window(cl.idx, row)
                } else if row.winner == "merged" {
                    local_window(&windows, row).zip(remote_window(&windows, row)).map(|(l, r)| later(l, r))
                } else {
                    local_window(&windows, row)
                };
                if let Some(w) = w {
                    windows.insert(up, w);
                }
            }
        }
    }

    // ---- Each resolution against its entity's policy.
    let mut superseded_by: HashMap<&str, (usize, bool)> = HashMap::new();
    for cl in input.clients {
        for row in &cl.history {
            let mut broken = Vec::new();
            let policy = input.policies.get(&row.entity).map(String::as_str).unwrap_or("lww");
            let expected_winner = if row.result == row.local {
                "local"
            } else if row.result == row.remote {
                "remote"
            } else {
                "merged"
            };
            // When local == remote either name fits.
            let either = row.local == row.remote && (row.winner == "local" || row.winner == "remote");
            if row.winner != expected_winner && !either {
                broken.push(format!("winner {} but the result is {expected_winner}", row.winner));
            }
            if row.upload_mutation_id.is_some() != (row.result != row.remote) {
                broken.push(format!(
                    "upload {:?} though the result {} the server's",
                    row.upload_mutation_id,
                    if row.result == row.remote { "equals" } else { "differs from" }
                ));
            }
            // The local version it judged must include the last edit it
            // superseded (an edit made while the conflict was being settled
            // must not vanish with it).
            match row.superseded.last().map(|id| (id, origins.get(id.as_str()))) {
                None => broken.push("it superseded no local edit".into()),
                Some((id, Some(o))) => {
                    let (op, payload) = o.effect();
                    if !reflects(&row.local, op, payload) {
                        broken.push(format!("the local version it judged lacks the last edit it superseded ({id})"));
                    }
                }
                Some((_, None)) => {}
            }
            if row.policy == "manual" {
                if policy != "manual" {
                    broken.push(format!("settled as manual, but {} is {policy}", row.entity));
                }
                match row.conflict_id.as_deref().and_then(|c| resolves.get(&(cl.idx, c))) {
                    None => broken.push("settled as manual without a `ferry resolve`".into()),
                    Some(r) if r.printed_upload != row.upload_mutation_id => broken.push(format!(
                        "`ferry resolve` printed upload {:?}, the history says {:?}",
                        r.printed_upload, row.upload_mutation_id
                    )),
                    Some(_) => {}
                }
            } else if policy == "manual" {
                broken.push(format!("{} is manual but was settled automatically ({})", row.entity, row.policy));
            } else if row.policy != policy {
                broken.push(format!("settled by {} but {} is {policy}", row.policy, row.entity));
            } else {
                let lww_times = |a: &mut Audit, broken: &mut Vec<String>| {
                    let l = local_window(&windows, row);
                    let r = remote_window(&windows, row);
                    let (Some(l), Some(r)) = (l, r) else {
                        a.lww_undecidable += 1;
                        return;
                    };
                    let local_later = l.0 > r.1;
                    let remote_later = r.0 > l.1;
                    if !local_later && !remote_later {
                        a.lww_undecidable += 1;
                        return;
                    }
                    a.lww_checked += 1;
                    if local_later && row.winner != "local" {
                        broken.push(format!(
                            "the local edit was made later ({} ms after the server's) but {} won",
                            l.0 - r.1,
                            row.winner
                        ));
                    }
                    if remote_later && row.winner == "local" {
                        broken
                            .push(format!("the server's edit was made later ({} ms) but the local one won", r.0 - l.1));
                    }
                };
                match policy {
                    "client-wins" if row.winner != "local" => {
                        broken.push(format!("client-wins, but {} won", row.winner))
                    }
                    "server-wins" if row.winner != "remote" => {
                        broken.push(format!("server-wins, but {} won", row.winner))
                    }
                    "lww" => lww_times(&mut a, &mut broken),
                    "merge" => match (&row.local, &row.remote) {
                        (Some(l), Some(r)) => {
                            a.merges_checked += 1;
                            let result = row.result.clone().unwrap_or_default();
                            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).chain(result.keys()).collect();
                            for k in keys {
                                let (lv, rv, got) = (l.get(k), r.get(k), result.get(k));
                                if got != lv && got != rv {
                                    broken.push(format!(
                                        "merge made field {k} = {got:?}, neither side's ({lv:?} / {rv:?})"
                                    ));
                                }
                            }
                            if row.result.is_none() {
                                broken.push("merge of two live versions deleted the record".into());
                            }
                        }
                        // Delete versus edit: whole-record lww.
                        _ => lww_times(&mut a, &mut broken),
                    },
                    _ => {}
                }
            }
            let ok = broken.is_empty();
            if !ok {
                a.overwritten += 1;
                let mut steps = vec![input.step_at(row.at)];
                steps.extend(row.superseded.iter().map(|id| origins.get(id.as_str()).and_then(step_of)));
                find(
                    &mut a,
                    &steps,
                    format!(
                        "client {} resolution #{} of {}/{} ({}, winner {}): {}; local {} remote {} result {}",
                        cl.idx,
                        row.id,
                        row.entity,
                        row.record_id,
                        row.policy,
                        row.winner,
                        broken.join("; "),
                        show(&row.local),
                        show(&row.remote),
                        show(&row.result)
                    ),
                );
            }
            for id in &row.superseded {
                if superseded_by.insert(id, (cl.idx, ok)).is_some() {
                    find(&mut a, &[input.step_at(row.at)], format!("mutation {id} superseded by two resolutions"));
                }
                if !origins.contains_key(id.as_str()) {
                    let key = (row.entity.clone(), row.record_id.clone());
                    if let Some(i) = match_maybe(id, &key, &mut maybe_used) {
                        a.maybe_committed += 1;
                        origins.insert(id, Origin::Maybe(&ledger.maybe[i]));
                    } else {
                        find(
                            &mut a,
                            &[input.step_at(row.at)],
                            format!("client {} resolution #{} supersedes {id}, which nobody made", cl.idx, row.id),
                        );
                    }
                }
            }
        }
    }

    // ---- Every acknowledged write and every resolution upload accounted for.
    for cl in input.clients {
        for q in &cl.queue {
            match q.state.as_str() {
                "conflict" => a.open_conflicts += 1,
                "failed" => {
                    a.failed_mutations += 1;
                    find(&mut a, &[], format!("client {}: failed mutation after healing: {q:?}", cl.idx));
                }
                _ => find(&mut a, &[], format!("client {}: still queued after healing: {q:?}", cl.idx)),
            }
            if !origins.contains_key(q.mutation_id.as_str()) {
                let key = (q.entity.clone(), q.record_id.clone());
                if match_maybe(&q.mutation_id, &key, &mut maybe_used).is_none() {
                    find(&mut a, &[], format!("client {}: queued mutation {} nobody made", cl.idx, q.mutation_id));
                }
            }
        }
    }
    let queued: HashSet<(usize, &str)> =
        input.clients.iter().flat_map(|c| c.queue.iter().map(move |q| (c.idx, q.mutation_id.as_str()))).collect();
    let account = |a: &mut Audit, id: &str, client: usize, step: Option<usize>, what: &str| -> Option<&'static str> {
        if applied_ids.contains(id) {
            return Some("applied");
        }
        match superseded_by.get(id) {
            Some((c, true)) if *c == client => return Some("superseded"),
            Some((c, true)) => {
                find(a, &[step], format!("{what} ({id}) of client {client} was superseded on client {c}"));
                return None;
            }
            // Counted as overwritten with its resolution.
            Some((_, false)) => return None,
            None => {}
        }
        if queued.contains(&(client, id)) {
            return Some("queued");
        }
        a.lost += 1;
        find(
            a,
            &[step],
            format!("LOST: {what} ({id}) of client {client} is not on the server, not superseded, not queued"),
        );
        None
    };
    for w in &ledger.writes {
        match account(&mut a, &w.id, w.client, Some(w.step), &format!("acknowledged write `{}`", w.desc)) {
            Some("applied") => a.acked_applied += 1,
            Some("superseded") => a.acked_superseded += 1,
            Some(_) => a.acked_queued += 1,
            None => {}
        }
    }
    for cl in input.clients {
        for row in &cl.history {
            let Some(up) = &row.upload_mutation_id else { continue };
            let what = format!("the upload of resolution #{} of {}/{}", row.id, row.entity, row.record_id);
            match account(&mut a, up, cl.idx, input.step_at(row.at), &what) {
                Some("applied") => a.uploads_applied += 1,
                Some("superseded") => a.uploads_superseded += 1,
                _ => {}
            }
        }
    }

    // ---- Every client holds exactly the server's live records.
    let live: BTreeMap<Key, Value> = input
        .server
        .records
        .iter()
        .filter(|r| !r.deleted)
        .map(|r| ((r.entity.clone(), r.record_id.clone()), Value::Object(r.data.clone().unwrap_or_default())))
        .collect();
    for cl in input.clients {
        let keys: BTreeSet<&Key> = cl.records.keys().chain(live.keys()).collect();
        for k in keys {
            if cl.records.get(k) != live.get(k) {
                a.divergent += 1;
                let last =
                    ledger.writes.iter().filter(|w| (&w.entity, &w.record_id) == (&k.0, &k.1)).map(|w| w.step).max();
                find(
                    &mut a,
                    &[last],
                    format!(
                        "divergent: client {} has {}/{} = {:?}, the server {:?}",
                        cl.idx,
                        k.0,
                        k.1,
                        cl.records.get(k),
                        live.get(k)
                    ),
                );
            }
        }
    }
    a
}

fn show(v: &Option<Fields>) -> String {
    match v {
        Some(m) => Value::Object(m.clone()).to_string(),
        None => "(deleted)".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(v: Value) -> Option<Fields> {
        v.as_object().cloned()
    }

    /// A v7 id made at `ms`.
    fn id_at(ms: i64, n: u16) -> String {
        uuid::Uuid::from_u128(((ms as u128) << 80) | (0x7 << 76) | (0x8 << 60) | n as u128).to_string()
    }

    fn write(id: &str, client: usize, step: usize, op: WriteOp, payload: Value, at: i64) -> Write {
        Write {
            id: id.into(),
            client,
            step,
            entity: "activity".into(),
            record_id: "k".into(),
            op,
            payload: fields(payload),
            window: (at, at + 20),
            clock_error_ms: 100,
            desc: format!("{op:?} at step {step}"),
        }
    }

    struct Run {
        ledger: Ledger,
        server: ServerView,
        clients: Vec<ClientView>,
        policies: BTreeMap<String, String>,
    }

    impl Run {
        /// Two clients; client 0 put k at step 0, it was applied; the clients
        /// hold it.
        fn new(policy: &str) -> Run {
            let a = id_at(1_000, 1);
            let ledger = Ledger {
                writes: vec![write(&a, 0, 0, WriteOp::Put, json!({"x": "s0"}), 1_000)],
                step_windows: (0..10).map(|s| (1_000 * (s + 1), 1_000 * (s + 1) + 900)).collect(),
                ..Default::default()
            };
            let server = ServerView {
                records: vec![ServerRecord {
                    entity: "activity".into(),
                    record_id: "k".into(),
                    version: 1,
                    deleted: false,
                    data: fields(json!({"x": "s0"})),
                }],
                applied: vec![Applied { id: a, entity: "activity".into(), record_id: "k".into(), version: 1 }],
                mutations_applied: 1,
                distinct_applied_ids: 1,
            };
            let mut records = BTreeMap::new();
            records.insert(("activity".to_string(), "k".to_string()), json!({"x": "s0"}));
            let clients =
                (0..2).map(|idx| ClientView { idx, records: records.clone(), ..Default::default() }).collect();
            let policies = [("activity".to_string(), policy.to_string())].into();
            Run { ledger, server, clients, policies }
        }

        fn audit(&self) -> Audit {
            audit(&Input {
                ledger: &self.ledger,
                server: &self.server,
                clients: &self.clients,
                policies: &self.policies,
            })
        }

        /// The server applies `id` as the next version, holding `data`.
        fn apply(&mut self, id: &str, data: Option<Value>) {
            let rec = &mut self.server.records[0];
            rec.version += 1;
            rec.deleted = data.is_none();
            rec.data = data.clone().and_then(fields);
            self.server.applied.push(Applied {
                id: id.into(),
                entity: "activity".into(),
                record_id: "k".into(),
                version: rec.version,
            });
            self.server.mutations_applied += 1;
            self.server.distinct_applied_ids += 1;
            for c in &mut self.clients {
                let key = ("activity".to_string(), "k".to_string());
                match &data {
                    Some(d) => c.records.insert(key, d.clone()),
                    None => c.records.remove(&key),
                };
            }
        }

        /// Client 1 patched at step 5 (made at 6 000 ms), client 0 at step
        /// 7 (8 000 ms); client 1's went first, client 0's conflicted and
        /// was settled with `winner` and `result`.
        fn conflict(&mut self, policy: &str, winner: &str, result: Option<Value>) -> HistoryRow {
            let (b, c) = (id_at(6_000, 2), id_at(8_000, 3));
            self.ledger.writes.push(write(&b, 1, 5, WriteOp::Patch, json!({"x": "c1s5"}), 6_000));
            self.ledger.writes.push(write(&c, 0, 7, WriteOp::Patch, json!({"x": "c0s7"}), 8_000));
            self.apply(&b, Some(json!({"x": "c1s5"})));
            let upload = (fields(json!({"x": "c1s5"})) != result.clone().and_then(fields)).then(|| id_at(9_000, 4));
            let row = HistoryRow {
                id: 1,
                entity: "activity".into(),
                record_id: "k".into(),
                policy: policy.into(),
                winner: winner.into(),
                local: fields(json!({"x": "c0s7"})),
                remote: fields(json!({"x": "c1s5"})),
                result: result.clone().and_then(fields),
                superseded: vec![c],
                at: 9_000,
                conflict_id: None,
                upload_mutation_id: upload.clone(),
            };
            self.clients[0].history.push(row.clone());
            if let Some(up) = upload {
                self.apply(&up, result);
            }
            row
        }
    }

    fn texts(a: &Audit) -> String {
        a.findings.iter().map(|f| format!("{:?} {}", f.steps, f.text)).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn a_clean_run_has_no_findings() {
        let mut run = Run::new("lww");
        run.conflict("lww", "local", Some(json!({"x": "c0s7"})));
        let a = run.audit();
        assert!(a.findings.is_empty(), "{}", texts(&a));
        assert_eq!((a.acked_applied, a.acked_superseded, a.uploads_applied, a.lww_checked), (2, 1, 1, 1));
        assert_eq!(a.records_replayed, 1);
    }

    #[test]
    fn an_edit_sent_again_under_a_new_id_is_an_unexplained_applied_mutation() {
        let mut run = Run::new("lww");
        // Step 3 re-sent the put of step 0 under a new id.
        run.apply(&id_at(4_100, 9), Some(json!({"x": "s0"})));
        let a = run.audit();
        assert_eq!((a.unexplained_applied, a.duplicates), (1, 1), "{}", texts(&a));
        assert_eq!(a.findings[0].steps, [3].into(), "{}", texts(&a));
    }

    #[test]
    fn a_resolution_uploaded_twice_is_caught() {
        let mut run = Run::new("client-wins");
        run.conflict("client-wins", "local", Some(json!({"x": "c0s7"})));
        run.apply(&id_at(9_001, 5), Some(json!({"x": "c0s7"})));
        let a = run.audit();
        assert_eq!(a.unexplained_applied, 1, "{}", texts(&a));
    }

    #[test]
    fn a_killed_write_that_committed_is_explained_by_its_record_and_time() {
        let mut run = Run::new("lww");
        let mut killed = write("", 1, 2, WriteOp::Patch, json!({"y": "c1s2"}), 3_000);
        killed.window = (3_000, 3_040);
        run.ledger.maybe.push(killed);
        run.apply(&id_at(3_010, 7), Some(json!({"x": "s0", "y": "c1s2"})));
        let a = run.audit();
        assert!(a.findings.is_empty(), "{}", texts(&a));
        assert_eq!(a.maybe_committed, 1);
        // The same mutation made outside the killed process's window is not.
        let mut run = Run::new("lww");
        run.ledger.maybe.push(write("", 1, 2, WriteOp::Patch, json!({"y": "c1s2"}), 3_000));
        run.apply(&id_at(5_000, 7), Some(json!({"x": "s0", "y": "c1s2"})));
        assert_eq!(run.audit().unexplained_applied, 1);
    }

    #[test]
    fn a_server_value_that_is_not_the_replay_of_its_mutations_is_wrong_content() {
        let mut run = Run::new("lww");
        let b = id_at(2_000, 2);
        run.ledger.writes.push(write(&b, 1, 1, WriteOp::Patch, json!({"y": "c1s1", "x": null}), 2_000));
        // The server dropped the patch's removal of x.
        run.apply(&b, Some(json!({"x": "s0", "y": "c1s1"})));
        let a = run.audit();
        assert_eq!(a.wrong_content, 1, "{}", texts(&a));
        assert_eq!(a.findings[0].steps, [1].into());
    }

    #[test]
    fn an_acknowledged_write_nowhere_is_lost() {
        let mut run = Run::new("lww");
        run.ledger.writes.push(write(&id_at(2_000, 2), 1, 1, WriteOp::Patch, json!({"y": "1"}), 2_000));
        let a = run.audit();
        assert_eq!(a.lost, 1, "{}", texts(&a));
        // Queued (an open conflict) is accounted for.
        run.clients[1].queue.push(QueueItem {
            mutation_id: id_at(2_000, 2),
            state: "conflict".into(),
            entity: "activity".into(),
            record_id: "k".into(),
        });
        let a = run.audit();
        assert_eq!((a.lost, a.open_conflicts, a.acked_queued), (0, 1, 1), "{}", texts(&a));
    }

    #[test]
    fn policies_are_checked() {
        // client-wins that lost the local edit.
        let mut run = Run::new("client-wins");
        run.conflict("client-wins", "remote", Some(json!({"x": "c1s5"})));
        let a = run.audit();
        assert_eq!(a.overwritten, 1, "{}", texts(&a));
        assert_eq!(a.acked_superseded, 0, "a write lost to a broken resolution is not accounted for");
        assert!(a.findings[0].steps.contains(&7), "{:?}", a.findings[0].steps);

        // server-wins that kept the local edit.
        let mut run = Run::new("server-wins");
        run.conflict("server-wins", "local", Some(json!({"x": "c0s7"})));
        assert_eq!(run.audit().overwritten, 1);
        let mut run = Run::new("server-wins");
        run.conflict("server-wins", "remote", Some(json!({"x": "c1s5"})));
        assert_eq!(run.audit().overwritten, 0, "{}", texts(&run.audit()));

        // lww: the local edit (8 000 ms) was later than the server's (6 000).
        let mut run = Run::new("lww");
        run.conflict("lww", "remote", Some(json!({"x": "c1s5"})));
        let a = run.audit();
        assert_eq!((a.overwritten, a.lww_checked), (1, 1), "{}", texts(&a));

        // manual settled automatically.
        let mut run = Run::new("manual");
        run.conflict("lww", "local", Some(json!({"x": "c0s7"})));
        assert_eq!(run.audit().overwritten, 1);

        // A policy other than the entity's.
        let mut run = Run::new("merge");
        run.conflict("server-wins", "remote", Some(json!({"x": "c1s5"})));
        assert_eq!(run.audit().overwritten, 1);

        // merge inventing a value.
        let mut run = Run::new("merge");
        run.conflict("merge", "merged", Some(json!({"x": "made up"})));
        let a = run.audit();
        assert_eq!((a.overwritten, a.merges_checked), (1, 1), "{}", texts(&a));
    }

    #[test]
    fn an_edit_made_while_a_conflict_was_settled_must_not_vanish() {
        let mut run = Run::new("lww");
        // Client 0's put of step 8 was superseded too, but the local
        // version judged was step 7's: the put vanished.
        let d = id_at(8_500, 5);
        run.ledger.writes.push(write(&d, 0, 8, WriteOp::Put, json!({"z": "c0s8"}), 8_500));
        run.conflict("lww", "local", Some(json!({"x": "c0s7"})));
        run.clients[0].history[0].superseded.push(d);
        let a = run.audit();
        assert_eq!(a.overwritten, 1, "{}", texts(&a));
        assert!(a.findings[0].steps.contains(&8), "{:?}", a.findings[0].steps);
    }

    #[test]
    fn manual_resolutions_must_be_the_users() {
        let mut run = Run::new("manual");
        let mut row = run.conflict("manual", "local", Some(json!({"x": "c0s7"})));
        // No `ferry resolve` made it.
        assert_eq!(run.audit().overwritten, 1, "{}", texts(&run.audit()));
        row.conflict_id = Some("c-1".into());
        run.clients[0].history[0] = row.clone();
        run.ledger.resolves.push(ManualResolve {
            client: 0,
            step: 8,
            conflict_id: "c-1".into(),
            printed_upload: row.upload_mutation_id.clone(),
            window: (8_950, 9_050),
            clock_error_ms: 100,
        });
        let a = run.audit();
        assert!(a.findings.is_empty(), "{}", texts(&a));
        // The id `ferry resolve` printed must be the one uploaded.
        run.ledger.resolves[0].printed_upload = Some(id_at(9_000, 99));
        assert_eq!(run.audit().overwritten, 1);
    }

    #[test]
    fn divergence_and_counter_mismatches_are_caught() {
        let mut run = Run::new("lww");
        run.clients[1].records.clear();
        run.server.mutations_applied = 2;
        let a = run.audit();
        assert_eq!((a.divergent, a.duplicates), (1, 1), "{}", texts(&a));
    }
}
