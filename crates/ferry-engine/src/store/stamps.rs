//! Re-stamping queued edits whose server-clock time could be wrong.
//!
//! An edit is stamped `local clock + estimated offset` when it is made. That
//! estimate may be missing (no contact with the server yet: offset 0) or
//! stale (the local clock was stepped since the last contact). A wrong stamp
//! decides last-write-wins wrongly, everywhere, so each outbox row also keeps
//! evidence: the local wall time, whether an offset was known, and a reading
//! of a monotonic clock (`clock::monotonic_now`: the boot on Linux, across
//! processes; the process elsewhere).
//!
//! When a domain's monotonic clock has been paired with the server's time by
//! a fresh sample (a *check*), every edit made in that domain, before or
//! after the check, is dated exactly: `check.server + (edit.mono -
//! check.mono)`, whatever the wall clock did. Edits from a domain without a
//! check (an offline boot, another process off Linux) get the fresh offset if
//! none was known when they were made, or if the offset they used differs
//! from it by more than a second; they are then final. No stamp is ever
//! later than the server's now.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{settings, Store};
use crate::clock::Monotonic;
use crate::error::Result;

/// Differences below this are estimation noise, not a wrong stamp.
pub const TOLERANCE_MS: i64 = 1000;

/// Keep at most this many clock domains with no queued edits.
const MAX_IDLE_DOMAINS: i64 = 64;

/// What a row records about how its stamp was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evidence {
    pub local_at: i64,
    pub domain: i64,
    pub mono_ms: i64,
    pub offset_known: bool,
}

/// Evidence for edits stamped now (`local_now`: the raw local clock).
pub(crate) fn evidence(tx: &Transaction, local_now: i64, mono: &Monotonic) -> Result<Evidence> {
    let domain = domain_id(tx, &mono.domain)?;
    // The engine stamps with the saved offset when there is one.
    let offset_known: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM settings WHERE key = 'clock_offset_ms')")?
        .query_row([], |r| r.get(0))?;
    Ok(Evidence { local_at: local_now, domain, mono_ms: mono.ms, offset_known })
}

fn domain_id(tx: &Transaction, name: &str) -> Result<i64> {
    if let Some(id) =
        tx.prepare_cached("SELECT id FROM clock_domains WHERE name = ?1")?.query_row([name], |r| r.get(0)).optional()?
    {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO clock_domains(name) VALUES (?1)")?.execute([name])?;
    Ok(tx.last_insert_rowid())
}

/// What the re-stamping knows now.
#[derive(Debug, Clone)]
pub struct RestampInput {
    /// Now on the monotonic clock.
    pub mono: Monotonic,
    /// The raw local clock now.
    pub local_now: i64,
    /// The offset from a fresh sample of this process, if there is one.
    pub fresh_offset: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestampOutcome {
    /// Rows whose stamp changed.
    pub restamped: u64,
    /// Some rows can only be dated with a fresh sample: take one and call
    /// again before sending them.
    pub needs_fresh_sample: bool,
}

impl Store {
    /// Re-dates queued edits from the evidence they carry (see the module
    /// docs). Cheap when nothing is new: rows already judged are skipped.
    pub fn restamp(&self, input: &RestampInput) -> Result<RestampOutcome> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let server_now = input.fresh_offset.map(|o| input.local_now + o);
        if let Some(server_now) = server_now {
            tx.execute(
                "INSERT INTO clock_domains(name, check_mono_ms, check_server_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET check_mono_ms = excluded.check_mono_ms,
                     check_server_ms = excluded.check_server_ms",
                params![input.mono.domain, input.mono.ms, server_now],
            )?;
        }
        let cap = server_now.unwrap_or(i64::MAX);
        let judged: i64 = settings::get(&tx, settings::RESTAMP_SEQ)?.unwrap_or(0);
        let newest: i64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM outbox", [], |r| r.get(0))?;
        // Without a fresh sample no check changes, so rows the exact pass
        // below has seen already come out the same: start after them. (While
        // offline with a long queue of unchecked edits, `judged` cannot move,
        // and re-reading a million rows at every retry cost a quarter of a
        // second each.)
        let any_check: bool =
            tx.query_row("SELECT EXISTS(SELECT 1 FROM clock_domains WHERE check_mono_ms IS NOT NULL)", [], |r| {
                r.get(0)
            })?;
        let exact_from = match server_now {
            Some(_) => judged,
            // No clock paired with the server's yet: nothing to date exactly.
            None if !any_check => newest,
            None => judged.max(settings::get(&tx, settings::RESTAMP_EXACT_SEQ)?.unwrap_or(0)),
        };
        let mut outcome = RestampOutcome::default();
        // Rows of a domain with a check: exact.
        outcome.restamped += tx.execute(
            "UPDATE outbox SET edited_at = min(?3, d.check_server_ms + (outbox.stamp_mono_ms - d.check_mono_ms))
             FROM clock_domains d
             WHERE outbox.seq > ?1 AND outbox.seq <= ?2 AND outbox.stamp_local_at IS NOT NULL
               AND d.id = outbox.stamp_domain AND d.check_mono_ms IS NOT NULL
               AND abs(outbox.edited_at
                       - min(?3, d.check_server_ms + (outbox.stamp_mono_ms - d.check_mono_ms))) > ?4",
            params![exact_from, newest, cap, TOLERANCE_MS],
        )? as u64;
        // Only forward: with the queue drained (`newest` is 0, or below rows
        // already seen) there is nothing new to remember, and an idle loop
        // would otherwise rewrite the setting at every cycle.
        if newest > exact_from {
            settings::put(&tx, settings::RESTAMP_EXACT_SEQ, &newest)?;
        }
        const UNCHECKED: &str = "seq > ?1 AND seq <= ?2 AND stamp_local_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM clock_domains d
                               WHERE d.id = outbox.stamp_domain AND d.check_mono_ms IS NOT NULL)";
        match (input.fresh_offset, server_now) {
            (Some(offset), Some(server_now)) => {
                // Rows of a domain never checked: the fresh offset if theirs
                // was unknown or is off by more than the tolerance. Final.
                outcome.restamped += tx.execute(
                    &format!(
                        "UPDATE outbox SET edited_at = min(?3, stamp_local_at + ?4), stamp_local_at = NULL
                         WHERE {UNCHECKED}
                           AND (stamp_offset_known = 0 OR abs((edited_at - stamp_local_at) - ?4) > ?5)"
                    ),
                    params![judged, newest, server_now, offset, TOLERANCE_MS],
                )? as u64;
            }
            _ => {
                let waiting: bool = tx.query_row(
                    &format!("SELECT EXISTS(SELECT 1 FROM outbox WHERE {UNCHECKED})"),
                    params![judged, newest],
                    |r| r.get(0),
                )?;
                outcome.needs_fresh_sample = waiting;
            }
        }
        if !outcome.needs_fresh_sample && newest > judged {
            settings::put(&tx, settings::RESTAMP_SEQ, &newest)?;
        }
        prune_domains(&tx, &input.mono.domain)?;
        tx.commit()?;
        if outcome.restamped > 0 {
            tracing::info!(rows = outcome.restamped, "re-dated queued edits on the server's clock");
        }
        Ok(outcome)
    }
}

/// Forgets domains no queued edit refers to, once there are many (one per
/// process off Linux).
fn prune_domains(tx: &Transaction, current: &str) -> Result<()> {
    let n: i64 = tx.query_row("SELECT count(*) FROM clock_domains", [], |r| r.get(0))?;
    if n > MAX_IDLE_DOMAINS {
        tx.execute(
            "DELETE FROM clock_domains WHERE name != ?1
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.stamp_domain = clock_domains.id)",
            [current],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteOp;
    use ferry_protocol::Op;

    const DAY: i64 = 86_400_000;
    const T: i64 = 1_700_000_000_000; // the real time of the first edit

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    fn mono(domain: &str, ms: i64) -> Monotonic {
        Monotonic { domain: domain.into(), ms }
    }

    /// Queues an edit, then sets the evidence it was stamped with.
    fn edit(s: &Store, id: &str, edited_at: i64, local_at: i64, at: &Monotonic, offset_known: bool) -> i64 {
        let w = WriteOp { entity: "a".into(), record_id: id.into(), op: Op::Upsert, payload: Some(Default::default()) };
        s.write(&w, edited_at, local_at).unwrap();
        let conn = s.conn();
        let tx = conn.unchecked_transaction().unwrap();
        let domain = domain_id(&tx, &at.domain).unwrap();
        tx.execute(
            "UPDATE outbox SET stamp_domain = ?2, stamp_mono_ms = ?3, stamp_offset_known = ?4
             WHERE record_id = ?1",
            params![id, domain, at.ms, offset_known],
        )
        .unwrap();
        tx.commit().unwrap();
        conn.query_row("SELECT seq FROM outbox WHERE record_id = ?1", [id], |r| r.get(0)).unwrap()
    }

    fn stamp(s: &Store, id: &str) -> i64 {
        s.conn().query_row("SELECT edited_at FROM outbox WHERE record_id = ?1", [id], |r| r.get(0)).unwrap()
    }

    fn input(at: Monotonic, local_now: i64, fresh_offset: Option<i64>) -> RestampInput {
        RestampInput { mono: at, local_now, fresh_offset }
    }

    #[test]
    fn an_edit_made_before_any_contact_is_redated_at_the_first_sample() {
        let (_d, s) = store();
        // The clock is a day ahead and no offset is known: stamped T + 1 day.
        edit(&s, "x", T + DAY, T + DAY, &mono("boot:1", 1_000), false);
        // No sample yet: nothing can be dated, and sending must wait.
        let out = s.restamp(&input(mono("boot:1", 61_000), T + DAY + 60_000, None)).unwrap();
        assert_eq!(out, RestampOutcome { restamped: 0, needs_fresh_sample: true });
        assert_eq!(stamp(&s, "x"), T + DAY);
        // A minute later the server says its clock is a day behind ours.
        let out = s.restamp(&input(mono("boot:1", 61_000), T + DAY + 60_000, Some(-DAY))).unwrap();
        assert_eq!(out, RestampOutcome { restamped: 1, needs_fresh_sample: false });
        assert_eq!(stamp(&s, "x"), T, "dated when it was really made");
    }

    #[test]
    fn a_stale_offset_is_corrected_exactly_from_a_check_in_the_same_boot() {
        let (_d, s) = store();
        s.set_setting(settings::CLOCK_OFFSET_MS, &0).unwrap();
        // A contact at mono 0 paired this boot's clock with the server's (T).
        s.restamp(&input(mono("boot:1", 0), T, Some(0))).unwrap();
        // Then the wall clock was stepped a day ahead; the saved offset (0)
        // is stale, so an edit 5 s later was stamped T + 1 day + 5 s.
        edit(&s, "x", T + DAY + 5_000, T + DAY + 5_000, &mono("boot:1", 5_000), true);
        // Re-dated from the check alone, with no new sample and no request.
        let out = s.restamp(&input(mono("boot:1", 9_000), T + DAY + 9_000, None)).unwrap();
        assert_eq!(out, RestampOutcome { restamped: 1, needs_fresh_sample: false });
        assert_eq!(stamp(&s, "x"), T + 5_000);
        // Later edits of the same boot are dated the same way by the next
        // pass (which starts after the rows it has seen).
        edit(&s, "y", T + DAY + 20_000, T + DAY + 20_000, &mono("boot:1", 20_000), true);
        let out = s.restamp(&input(mono("boot:1", 21_000), T + DAY + 21_000, None)).unwrap();
        assert_eq!(out.restamped, 1);
        assert_eq!(stamp(&s, "y"), T + 20_000);
        assert_eq!(stamp(&s, "x"), T + 5_000);
        // Edits of a checked boot are exact before the check as well.
        edit(&s, "early", T - 3_000 + 7, T - 3_000 + 7, &mono("boot:1", -3_000), true);
        s.restamp(&input(mono("boot:1", 10_000), T + DAY + 10_000, None)).unwrap();
        assert_eq!(stamp(&s, "early"), T - 3_000 + 7, "within tolerance: untouched");
    }

    #[test]
    fn edits_from_an_unchecked_domain_take_the_fresh_offset_only_when_theirs_was_unknown_or_off() {
        let (_d, s) = store();
        let other = mono("process:old", 500);
        edit(&s, "unknown", T + 10_000, T + 10_000, &other, false);
        edit(&s, "right", T + 20_000 + 300, T + 20_000, &other, true); // used offset 300
        edit(&s, "stale", T + 30_000 + 7_200_000, T + 30_000, &other, true); // used +2 h
        let now = T + 100_000;
        s.restamp(&input(mono("process:new", 1), now, Some(250))).unwrap();
        assert_eq!(stamp(&s, "unknown"), T + 10_250);
        assert_eq!(stamp(&s, "right"), T + 20_300, "off by 50 ms: left alone");
        assert_eq!(stamp(&s, "stale"), T + 30_250);
        // Final once re-dated: a later offset does not move them again.
        edit(&s, "new", now, now, &mono("process:new", 2), true);
        s.restamp(&input(mono("process:new", 3), now + 1, Some(99_999))).unwrap();
        assert_eq!(stamp(&s, "unknown"), T + 10_250);
        assert_eq!(stamp(&s, "stale"), T + 30_250);
    }

    #[test]
    fn no_stamp_is_later_than_the_servers_now() {
        let (_d, s) = store();
        // Made with a clock years ahead, before any contact.
        edit(&s, "x", T + 400 * DAY, T + 400 * DAY, &mono("process:old", 0), false);
        s.restamp(&input(mono("process:new", 0), T, Some(0))).unwrap();
        assert_eq!(stamp(&s, "x"), T);
    }

    #[test]
    fn judged_rows_are_skipped_and_new_writes_carry_evidence() {
        let (_d, s) = store();
        let w =
            WriteOp { entity: "a".into(), record_id: "r".into(), op: Op::Upsert, payload: Some(Default::default()) };
        s.write(&w, T, T).unwrap();
        let (known, domain): (bool, String) = s
            .conn()
            .query_row(
                "SELECT o.stamp_offset_known, d.name FROM outbox o JOIN clock_domains d ON d.id = o.stamp_domain",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(!known, "no offset saved yet");
        assert_eq!(domain, crate::clock::monotonic_now().domain);
        s.set_setting(settings::CLOCK_OFFSET_MS, &12).unwrap();
        let seq = edit(&s, "q", T, T, &mono("boot:1", 0), true);
        s.restamp(&input(mono("boot:1", 1), T, Some(0))).unwrap();
        assert_eq!(s.setting(settings::RESTAMP_SEQ).unwrap(), Some(seq), "everything up to here judged");
        // A row already judged is not looked at again, even if its evidence
        // would now say otherwise.
        s.conn().execute("UPDATE outbox SET edited_at = edited_at + 3600000 WHERE record_id = 'q'", []).unwrap();
        s.restamp(&input(mono("boot:1", 2), T, Some(0))).unwrap();
        assert_eq!(stamp(&s, "q"), T + 3_600_000);
    }

    /// An idle loop (queue drained, clock paired, no new sample) writes
    /// nothing: each write is an fsync.
    #[test]
    fn a_drained_queue_rewrites_no_watermark() {
        let (_d, s) = store();
        edit(&s, "x", T, T, &mono("boot:1", 0), true);
        s.restamp(&input(mono("boot:1", 1), T, Some(0))).unwrap();
        s.restamp(&input(mono("boot:1", 2), T, None)).unwrap();
        let seen = s.setting(settings::RESTAMP_EXACT_SEQ).unwrap();
        assert!(seen.is_some_and(|n| n > 0), "{seen:?}");
        s.conn().execute("DELETE FROM outbox", []).unwrap(); // uploaded
        for ms in 3..6 {
            let changes_before = s.conn().total_changes();
            s.restamp(&input(mono("boot:1", ms), T, None)).unwrap();
            assert_eq!(s.conn().total_changes(), changes_before, "nothing written");
        }
        assert_eq!(s.setting(settings::RESTAMP_EXACT_SEQ).unwrap(), seen);
    }
}
