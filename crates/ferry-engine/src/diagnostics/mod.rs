//! `Engine::save_diagnostics`: one `.tar.gz` a volunteer can send to
//! whoever helps them, holding what explains a sync problem and nothing
//! that signs in. The token store is never read; record contents (ids,
//! labels, fields) only when asked for; anything token-like in the logs
//! and settings is scrubbed ([`redact`]).
//!
//! Contents: `manifest.json`, `status.json`, `settings.json`,
//! `queue.json`, `conflicts.json`, `history.json`, `sync-runs.json` and
//! `logs/` (the newest part of [`crate::logs`]' files).

mod archive;
pub mod redact;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::Result;
use crate::model::{ConflictView, MutationState, QueueItem, ResolutionEntry};
use crate::Engine;

/// What goes into the archive beyond the always-safe metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticsOptions {
    /// Record ids, labels and contents (queued changes, conflict sides,
    /// resolutions): only when the user agrees to share them.
    pub include_records: bool,
}

/// What [`Engine::save_diagnostics`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticsReport {
    pub path: PathBuf,
    /// The files in the archive, in order.
    pub files: Vec<String>,
    /// The archive's size.
    pub bytes: u64,
}

/// Most queue entries described (the counts cover all of them).
pub const MAX_QUEUE_ENTRIES: u32 = 5_000;
/// Most open conflicts and resolutions described.
pub const MAX_CONFLICTS: u32 = 5_000;
pub const MAX_HISTORY: u32 = 1_000;
/// Most sync runs.
pub const MAX_SYNC_RUNS: u32 = 200;
/// About how much of the log files is taken, newest first.
pub const LOG_BUDGET: u64 = 2 * 1024 * 1024;

pub(crate) fn save(engine: &Engine, to: &Path, options: DiagnosticsOptions) -> Result<DiagnosticsReport> {
    let created_at = crate::clock::local_now_ms();
    let mut archive = archive::Archive::create(to, created_at)?;
    let records = options.include_records;
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("status.json".into(), pretty(&engine.refresh_status())?),
        ("settings.json".into(), pretty(&settings(engine)?)?),
        ("queue.json".into(), pretty(&queue(engine, records)?)?),
        ("conflicts.json".into(), pretty(&conflicts(engine, records)?)?),
        ("history.json".into(), pretty(&history(engine, records)?)?),
        ("sync-runs.json".into(), pretty(&engine.sync_runs(MAX_SYNC_RUNS)?)?),
    ];
    files.extend(logs(engine.data_dir()));
    let mut names: Vec<String> = vec!["manifest.json".into()];
    names.extend(files.iter().map(|(name, _)| name.clone()));
    let manifest = json!({
        "ferry_version": env!("CARGO_PKG_VERSION"),
        "created_at": created_at,
        "created_at_text": crate::resolve::format_time(created_at),
        "include_records": records,
        "files": names,
    });
    archive.add("manifest.json", &pretty(&manifest)?)?;
    for (name, data) in &files {
        archive.add(name, data)?;
    }
    let bytes = archive.finish()?;
    tracing::info!(path = %to.display(), bytes, include_records = records, "diagnostics saved");
    Ok(DiagnosticsReport { path: to.to_owned(), files: names, bytes })
}

fn pretty(v: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v)
        .map_err(|e| crate::EngineError::Invalid(format!("cannot describe the state as JSON: {e}")))
}

/// Whether a setting's name suggests a secret. None is kept in the
/// settings today (tokens live in the token store); this keeps it so.
fn secret_name(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "secret", "password", "passwd", "credential", "cookie", "private", "apikey", "api_key", "session"]
        .iter()
        .any(|word| key.contains(word))
}

fn settings(engine: &Engine) -> Result<Value> {
    let kept: serde_json::Map<String, Value> = engine
        .inner
        .store
        .all_settings()?
        .into_iter()
        .filter(|(key, _)| !secret_name(key))
        .map(|(key, value)| (key, Value::String(redact::redact(&value))))
        .collect();
    Ok(Value::Object(kept))
}

fn queue(engine: &Engine, records: bool) -> Result<Value> {
    let counts = engine.inner.store.counts()?;
    let items = engine.queue(None, None, MAX_QUEUE_ENTRIES)?;
    Ok(json!({
        "counts": {
            "pending": counts.pending - counts.in_flight,
            "in_flight": counts.in_flight,
            "failed": counts.failed,
            "conflict": counts.conflict,
        },
        "described": items.len(),
        "entries": items.iter().map(|i| queue_entry(i, records)).collect::<Vec<_>>(),
    }))
}

fn queue_entry(i: &QueueItem, records: bool) -> Value {
    let mut v = json!({
        "seq": i.seq,
        "mutation_id": i.mutation_id,
        "entity": i.entity,
        "op": i.op,
        "state": i.state,
        "attempts": i.attempts,
        "next_attempt_at": i.next_attempt_at,
        "last_error": error_text(i, records),
        "edited_at": i.edited_at,
    });
    if records {
        v["record_id"] = json!(i.record_id);
        v["label"] = json!(i.label);
        v["payload"] = json!(i.payload);
    }
    v
}

/// A refused change's error is the server's reason, which may quote the
/// record ("amount: -150 is less than …"): without records, only its code
/// (`validation`). Transport errors say nothing of records and stay whole.
fn error_text(i: &QueueItem, records: bool) -> Option<String> {
    let text = i.last_error.as_deref()?;
    if records || i.state != MutationState::Failed {
        return Some(text.to_owned());
    }
    Some(text.split_once(':').map_or(text, |(code, _)| code).to_owned())
}

fn conflicts(engine: &Engine, records: bool) -> Result<Value> {
    let items = engine.conflicts(None, MAX_CONFLICTS)?;
    Ok(Value::Array(items.iter().map(|c| conflict(c, records)).collect()))
}

fn conflict(c: &ConflictView, records: bool) -> Value {
    let mut v = json!({
        "id": c.id,
        "entity": c.entity,
        "remote_version": c.remote_version,
        "local_edited_at": c.local_edited_at,
        "remote_edited_at": c.remote_edited_at,
        "remote_edited_by": c.remote_edited_by,
        "detected_at": c.detected_at,
        "differing_field_count": c.differing_fields.len(),
    });
    if records {
        v["record_id"] = json!(c.record_id);
        v["label"] = json!(c.label);
        v["differing_fields"] = json!(c.differing_fields);
        v["base"] = json!(c.base);
        v["local"] = json!(c.local);
        v["remote"] = json!(c.remote);
    }
    v
}

fn history(engine: &Engine, records: bool) -> Result<Value> {
    let items = engine.history(MAX_HISTORY)?;
    Ok(Value::Array(items.iter().map(|h| resolution(h, records)).collect()))
}

fn resolution(h: &ResolutionEntry, records: bool) -> Value {
    let mut v = json!({
        "id": h.id,
        "entity": h.entity,
        "policy": h.policy,
        "winner": h.winner,
        "reason": h.reason,
        "superseded": h.superseded,
        "at": h.at,
        "restorable": h.restorable,
        "conflict_id": h.conflict_id,
        "upload_mutation_id": h.upload_mutation_id,
    });
    if records {
        v["record_id"] = json!(h.record_id);
        v["label"] = json!(h.label);
        v["local"] = json!(h.local);
        v["remote"] = json!(h.remote);
        v["result"] = json!(h.result);
    }
    v
}

/// The newest [`LOG_BUDGET`] bytes of the log files, newest file first,
/// scrubbed, as `logs/NAME`. Logs that cannot be read are left out (and
/// said so in the log itself): the rest of the archive still helps.
fn logs(data_dir: &Path) -> Vec<(String, Vec<u8>)> {
    let files = match crate::logs::files(&crate::logs::log_dir(data_dir)) {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the log files for the diagnostics");
            return Vec::new();
        }
    };
    let mut left = LOG_BUDGET;
    let mut out = Vec::new();
    for path in files.iter().rev() {
        if left == 0 {
            break;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        match tail(path, left) {
            Ok((text, whole)) => {
                // A file cut short spent the budget (its first line too).
                left = if whole { left.saturating_sub(text.len() as u64) } else { 0 };
                out.push((format!("logs/{name}"), redact::redact(&text).into_bytes()));
            }
            Err(e) => tracing::warn!(error = %e, file = %path.display(), "cannot read a log file for the diagnostics"),
        }
    }
    out
}

/// The last `max` bytes of `path`, from the first whole line; and whether
/// that is the whole file.
fn tail(path: &Path, max: u64) -> std::io::Result<(String, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((len - start) as usize);
    file.take(max).read_to_end(&mut bytes)?;
    if start > 0 {
        // A line cut in the middle could hide half a token from the scrub.
        let first_line = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| n + 1);
        bytes.drain(..first_line);
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), start == 0))
}

#[cfg(test)]
mod tests;
