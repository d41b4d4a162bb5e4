//! What a chaos run did and found, and its printed table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::audit::Audit;

#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub seed: u64,
    pub clients: usize,
    /// Server processes, and the backend they share.
    pub nodes: usize,
    pub backend: &'static str,
    pub steps: usize,
    pub steps_by_kind: BTreeMap<&'static str, u64>,
    /// Local writes that exited 0 with a mutation id (restores included).
    pub acknowledged: u64,
    /// Writes refused locally (patch/delete of a record absent here): fine.
    pub refused_locally: u64,
    /// `ferry sync` runs, by exit code ("killed" for SIGKILLed ones).
    pub syncs_by_exit: BTreeMap<String, u64>,
    pub requests: u64,
    pub faults: BTreeMap<String, u64>,
    /// SIGKILLs that hit a running `ferry` process, by what was killed and
    /// when.
    pub kills: BTreeMap<String, u64>,
    /// Protocol-moment kills whose moment never came (the sync had fewer
    /// pushes), so the process was not killed there.
    pub kill_moments_missed: u64,
    pub server_kills: u64,
    pub daemons_started: u64,
    pub manual_resolutions: u64,
    pub restores: u64,
    pub heal_rounds: u64,
    pub converged: bool,
    pub server_records: u64,
    pub mutations_applied: u64,
    pub distinct_applied_ids: u64,
    pub mutations_duplicate_answers: u64,
    pub conflicts_reported: u64,
    pub rejected: u64,
    /// Largest |clock offset| a client estimated (the server runs on the
    /// same clock, so this is the estimate's error).
    pub max_clock_offset_ms: i64,
    /// `database is locked` errors (a bug: see docs/reliability.md).
    pub busy_errors: u64,
    pub audit: Audit,
    /// Anything that should never happen, with enough detail to debug.
    pub findings: Vec<String>,
    /// Workload steps the findings point at, to replay and read.
    pub failing_steps: BTreeSet<usize>,
    /// One line per step (printed for the failing steps).
    pub step_log: Vec<String>,
    pub elapsed: Duration,
}

impl Summary {
    /// Nothing lost, applied twice, silently overwritten, divergent or
    /// otherwise wrong.
    pub fn ok(&self) -> bool {
        let a = &self.audit;
        self.converged
            && a.lost == 0
            && a.duplicates == 0
            && a.divergent == 0
            && a.overwritten == 0
            && a.wrong_content == 0
            && self.busy_errors == 0
            && self.findings.is_empty()
    }

    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }

    pub fn total_kills(&self) -> u64 {
        self.kills.values().sum()
    }

    /// The failing steps with what each did, for a report.
    pub fn failing_step_lines(&self) -> Vec<String> {
        self.failing_steps.iter().filter_map(|s| self.step_log.get(*s).cloned()).collect()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "| {k:<52} | {v:>12} |");
        let a = &self.audit;
        writeln!(f, "| {:<52} | {:>12} |", "ferry chaos run", "")?;
        writeln!(f, "|{}|{}|", "-".repeat(54), "-".repeat(14))?;
        row(f, "seed (FERRY_CHAOS_SEED)", self.seed.to_string())?;
        row(f, "clients", self.clients.to_string())?;
        row(f, "server nodes", format!("{} on {}", self.nodes, self.backend))?;
        row(f, "workload steps", self.steps.to_string())?;
        for (k, v) in &self.steps_by_kind {
            row(f, &format!("  steps: {k}"), v.to_string())?;
        }
        row(f, "local writes acknowledged", self.acknowledged.to_string())?;
        row(f, "local writes refused (no such record here)", self.refused_locally.to_string())?;
        for (k, v) in &self.syncs_by_exit {
            row(f, &format!("  `ferry sync` exit {k}"), v.to_string())?;
        }
        row(f, "HTTP requests through the proxies", self.requests.to_string())?;
        row(f, "faults injected (total)", self.total_faults().to_string())?;
        for (k, v) in &self.faults {
            row(f, &format!("  fault: {k}"), v.to_string())?;
        }
        row(f, "kill -9 of a running client process (total)", self.total_kills().to_string())?;
        for (k, v) in &self.kills {
            row(f, &format!("  kill -9: {k}"), v.to_string())?;
        }
        row(f, "  protocol-moment kills not reached", self.kill_moments_missed.to_string())?;
        row(f, "server (node) kill -9 + restart", self.server_kills.to_string())?;
        row(f, "`ferry daemon`s started", self.daemons_started.to_string())?;
        row(f, "manual conflicts resolved by the harness", self.manual_resolutions.to_string())?;
        row(f, "losing local versions restored", self.restores.to_string())?;
        row(f, "heal rounds until quiet", self.heal_rounds.to_string())?;
        row(f, "server records (incl. tombstones)", self.server_records.to_string())?;
        row(f, "server: mutations_applied", self.mutations_applied.to_string())?;
        row(f, "server: distinct_applied_ids", self.distinct_applied_ids.to_string())?;
        row(f, "server: re-sends answered `duplicate`", self.mutations_duplicate_answers.to_string())?;
        row(f, "server: conflicts answered", self.conflicts_reported.to_string())?;
        row(f, "server: rejected", self.rejected.to_string())?;
        row(f, "acknowledged writes applied on the server", a.acked_applied.to_string())?;
        row(f, "acknowledged writes superseded (policy checked)", a.acked_superseded.to_string())?;
        row(f, "acknowledged writes still queued", a.acked_queued.to_string())?;
        row(f, "resolution uploads", a.uploads.to_string())?;
        row(f, "  applied / superseded later", format!("{} / {}", a.uploads_applied, a.uploads_superseded))?;
        row(f, "killed writes that had committed (matched)", a.maybe_committed.to_string())?;
        row(f, "records replayed from their mutations", a.records_replayed.to_string())?;
        row(f, "resolutions checked against their policy", a.history_rows.to_string())?;
        row(f, "  lww/merge timing decided / undecidable", format!("{} / {}", a.lww_checked, a.lww_undecidable))?;
        row(f, "  merges checked field by field", a.merges_checked.to_string())?;
        row(f, "client clock estimate error, max", format!("{} ms", self.max_clock_offset_ms))?;
        row(f, "open conflicts after healing", a.open_conflicts.to_string())?;
        row(f, "failed mutations after healing", a.failed_mutations.to_string())?;
        row(f, "converged", self.converged.to_string())?;
        row(f, "LOST acknowledged writes or resolution uploads", a.lost.to_string())?;
        row(f, "DUPLICATE applications", a.duplicates.to_string())?;
        row(f, "  of which unexplained applied mutations", a.unexplained_applied.to_string())?;
        row(f, "OVERWRITTEN against the policy", a.overwritten.to_string())?;
        row(f, "WRONG CONTENT on the server", a.wrong_content.to_string())?;
        row(f, "DIVERGENT records", a.divergent.to_string())?;
        row(f, "`database is locked` errors", self.busy_errors.to_string())?;
        row(f, "findings (panics, hangs, odd errors)", self.findings.len().to_string())?;
        row(f, "elapsed", format!("{:.1} s", self.elapsed.as_secs_f64()))?;
        for finding in &self.findings {
            writeln!(f, "finding: {finding}")?;
        }
        if !self.failing_steps.is_empty() {
            writeln!(f, "failing steps (replay with FERRY_CHAOS_SEED={}; --verbose prints every step):", self.seed)?;
            for line in self.failing_step_lines() {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}
