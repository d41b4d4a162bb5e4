//! Output: `--json` is one JSON document on stdout; the rest is for people.

use anyhow::Result;
use ferry_engine::model::ago;
use ferry_engine::resolve::format_time;
use ferry_engine::{ConflictView, DiagnosticsReport, Fields, QueueItem, ResolutionEntry, Status};
use serde_json::Value;

use crate::out::{self, outln};

pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json(v: &impl serde::Serialize) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

fn now() -> i64 {
    ferry_engine::clock::local_now_ms()
}

pub fn status(s: &Status, as_json: bool) -> Result<()> {
    if as_json {
        return json(s);
    }
    outln!("state:      {}", s.state.as_str())?;
    outln!("server:     {}", s.server.as_deref().unwrap_or("(none: run `ferry init --server URL`)"))?;
    outln!("user:       {}", s.user.as_deref().unwrap_or("(not signed in)"))?;
    outln!("pending:    {}", s.pending + s.in_flight)?;
    outln!("failed:     {}", s.failed)?;
    outln!("conflicts:  {}", s.conflicts)?;
    match s.last_sync_at {
        Some(t) => outln!("last sync:  {} ({})", format_time(t), ago(now() - t))?,
        None => outln!("last sync:  never")?,
    }
    if let Some(t) = s.next_retry_at {
        outln!("next retry: {}", format_time(t))?;
    }
    if let Some(e) = &s.last_error {
        outln!("last error: {e}")?;
    }
    if let Some(p) = s.problem {
        outln!("problem:    {}", p.as_str())?;
    }
    Ok(())
}

/// A record as `ferry list --json` shows it.
#[derive(serde::Serialize)]
struct Listed<'a> {
    id: &'a str,
    data: &'a Fields,
}

/// Every record `page` yields (`page(after_id, n)`), a page at a time.
pub fn records(
    mut page: impl FnMut(Option<String>, u32) -> Result<Vec<(String, Fields)>>,
    as_json: bool,
) -> Result<()> {
    if as_json {
        let shown = |(id, data): &(String, Fields)| serde_json::to_string_pretty(&Listed { id, data });
        return json_array(&mut page, |(id, _)| id.clone(), shown, None, None);
    }
    let mut after = None;
    loop {
        let rows = page(after, PAGE)?;
        let mut text = String::new();
        for (id, data) in &rows {
            text.push_str(&format!("{id}\t{}\n", serde_json::to_string(data)?));
        }
        out::write_str(&text)?;
        match rows.last() {
            Some((id, _)) if rows.len() as u32 == PAGE => after = Some(id.clone()),
            _ => return Ok(()),
        }
    }
}

/// The queue as one JSON array, read page by page so memory stays flat
/// however long it is; `limit` caps the number of items (None: all).
pub fn queue_json(
    page: impl FnMut(Option<i64>, u32) -> Result<Vec<QueueItem>>,
    after: Option<i64>,
    limit: Option<u32>,
) -> Result<()> {
    json_pages(page, |i| i.seq, after, limit)
}

fn json_pages<T: serde::Serialize, K>(
    page: impl FnMut(Option<K>, u32) -> Result<Vec<T>>,
    key: impl Fn(&T) -> K,
    after: Option<K>,
    limit: Option<u32>,
) -> Result<()> {
    json_array(page, key, |t| serde_json::to_string_pretty(t), after, limit)
}

/// Rows fetched a page at a time (keyset paging: `page(after_key, n)`),
/// so memory stays flat however long the list is.
const PAGE: u32 = 1000;

/// Prints a JSON array of every row `page` yields (each as `shown` writes
/// it), up to `limit`.
fn json_array<T, K>(
    mut page: impl FnMut(Option<K>, u32) -> Result<Vec<T>>,
    key: impl Fn(&T) -> K,
    shown: impl Fn(&T) -> serde_json::Result<String>,
    mut after: Option<K>,
    limit: Option<u32>,
) -> Result<()> {
    let mut left = limit.map_or(u64::MAX, u64::from);
    let mut first = true;
    out::write_str("[")?;
    while left > 0 {
        let items = page(after, PAGE.min(left.min(u64::from(u32::MAX)) as u32))?;
        let Some(last) = items.last() else { break };
        after = Some(key(last));
        left -= items.len() as u64;
        let mut text = String::new();
        for i in &items {
            text.push_str(if first { "\n" } else { ",\n" });
            first = false;
            text.push_str(&shown(i)?);
        }
        out::write_str(&text)?;
        if (items.len() as u32) < PAGE {
            break;
        }
    }
    out::write_str(if first { "]\n" } else { "\n]\n" })?;
    Ok(())
}

pub fn queue(items: &[QueueItem], limit: u32) -> Result<()> {
    if items.is_empty() {
        outln!("nothing queued")?;
        return Ok(());
    }
    outln!(
        "{:<8} {:<36} {:<9} {:<7} {:<30} {:<30} {:>8}  last error",
        "seq",
        "mutation",
        "state",
        "op",
        "record",
        "label",
        "attempts"
    )?;
    for i in items {
        outln!(
            "{:<8} {:<36} {:<9} {:<7} {:<30} {:<30} {:>8}  {}",
            i.seq,
            i.mutation_id,
            i.state.as_str(),
            i.op,
            format!("{}/{}", i.entity, i.record_id),
            one_line(&i.label, 30),
            i.attempts,
            i.last_error.as_deref().unwrap_or("")
        )?;
    }
    if items.len() as u32 >= limit {
        if let Some(last) = items.last() {
            outln!("… more: ferry queue --after {}", last.seq)?;
        }
    }
    Ok(())
}

/// A label for a line of text: control characters (a newline in a
/// title) as spaces, at most `width` characters.
fn one_line(label: &str, width: usize) -> String {
    let flat: String = label.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= width {
        return flat;
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn show(v: &Option<Fields>) -> String {
    match v {
        Some(f) => Value::Object(f.clone()).to_string(),
        None => "(deleted)".into(),
    }
}

/// Every open conflict `page` yields (`page(after, n)`), a page at a time.
pub fn conflicts(
    mut page: impl FnMut(Option<(i64, String)>, u32) -> Result<Vec<ConflictView>>,
    as_json: bool,
) -> Result<()> {
    let key = |c: &ConflictView| (c.detected_at, c.id.clone());
    if as_json {
        return json_pages(page, key, None, None);
    }
    let mut after = None;
    loop {
        let items = page(after.clone(), PAGE)?;
        if after.is_none() && items.is_empty() {
            outln!("no open conflicts")?;
        }
        conflict_lines(&items)?;
        match items.last() {
            Some(last) if items.len() as u32 == PAGE => after = Some(key(last)),
            _ => return Ok(()),
        }
    }
}

fn conflict_lines(items: &[ConflictView]) -> Result<()> {
    for c in items {
        outln!("conflict {}  {}/{}  {}", c.id, c.entity, c.record_id, one_line(&c.label, 80))?;
        outln!("  base:   {}", show(&c.base))?;
        outln!("  local:  {}  (edited {})", show(&c.local), format_time(c.local_edited_at))?;
        outln!(
            "  remote: {}  (edited {} by {})",
            show(&c.remote),
            format_time(c.remote_edited_at),
            c.remote_edited_by
        )?;
        outln!("  differs: {}", c.differing_fields.join(", "))?;
        outln!("  settle: ferry resolve {} --keep local|remote [--field NAME=local|remote]", c.id)?;
    }
    Ok(())
}

/// After `ferry resolve`: the mutation it queued (scripts use it to account
/// for every upload) and the history entry that records the decision.
pub fn resolved(
    conflict_id: &str,
    entry: Option<&ResolutionEntry>,
    upload: Option<String>,
    as_json: bool,
) -> Result<()> {
    if as_json {
        return json(&serde_json::json!({
            "conflict_id": conflict_id,
            "history_id": entry.map(|h| h.id),
            "upload_mutation_id": upload,
        }));
    }
    match (entry, upload) {
        (_, Some(id)) => outln!("resolved; queued mutation {id}, which syncs like any change")?,
        (Some(_), None) => outln!("resolved; nothing to upload: the result is the server's version")?,
        // Written, but pushed out of the recent history by other resolutions.
        (None, None) => outln!("resolved; see `ferry conflicts --history` for what was queued")?,
    }
    Ok(())
}

/// After `ferry restore`: the mutation that queues the old value again.
pub fn restored(history_id: i64, mutation_id: &str, as_json: bool) -> Result<()> {
    if as_json {
        return json(&serde_json::json!({"history_id": history_id, "upload_mutation_id": mutation_id}));
    }
    outln!("{mutation_id}")?;
    Ok(())
}

/// The whole resolution history, newest first; `page(before_id, n)`.
pub fn history(mut page: impl FnMut(Option<i64>, u32) -> Result<Vec<ResolutionEntry>>, as_json: bool) -> Result<()> {
    if as_json {
        return json_pages(page, |h| h.id, None, None);
    }
    let mut before = None;
    loop {
        let items = page(before, PAGE)?;
        if before.is_none() && items.is_empty() {
            outln!("no resolutions yet")?;
        }
        history_lines(&items)?;
        match items.last() {
            Some(last) if items.len() as u32 == PAGE => before = Some(last.id),
            _ => return Ok(()),
        }
    }
}

fn history_lines(items: &[ResolutionEntry]) -> Result<()> {
    for h in items {
        outln!(
            "{:<6} {}  {}/{}  {}  {} kept ({}): {}{}",
            h.id,
            format_time(h.at),
            h.entity,
            h.record_id,
            one_line(&h.label, 80),
            h.winner,
            h.policy.as_str(),
            h.reason,
            if h.restorable { format!("  [restore: ferry restore {}]", h.id) } else { String::new() }
        )?;
        if let Some(m) = &h.upload_mutation_id {
            outln!("       queued mutation {m}")?;
        }
    }
    Ok(())
}

/// After `ferry title`: the entity's title field now.
pub fn title_field(entity: &str, field: Option<&str>) -> Result<()> {
    match field {
        Some(f) => outln!("{entity}: {f}")?,
        None => outln!("{entity}: (default: title, name or description, else the record id)")?,
    }
    Ok(())
}

/// After `ferry diagnostics`: where the archive is and what it holds.
pub fn diagnostics(report: &DiagnosticsReport, include_records: bool) -> Result<()> {
    outln!("saved diagnostics to {} ({} bytes)", report.path.display(), report.bytes)?;
    outln!("it holds: {}", report.files.join(", "))?;
    if include_records {
        outln!("record ids, labels and contents are included: share it only with someone who may see them")?;
    } else {
        outln!("no record contents and never a password or token (add --include-records to include records)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn labels_fit_one_line_of_a_table() {
        assert_eq!(one_line("Visit", 30), "Visit");
        assert_eq!(one_line("two\nlines\tand a tab", 30), "two lines and a tab");
        assert_eq!(one_line(&"ø".repeat(40), 30), format!("{}…", "ø".repeat(29)));
    }
}
