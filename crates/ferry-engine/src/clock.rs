//! Time, on the server's clock.
//!
//! Last-write-wins compares when edits were *made*, so edits are stamped with
//! the local clock corrected by an estimate of the server's offset, learned
//! from the `server_time` in every response, NTP-style: each answer bounds
//! the offset to its round trip (the server stamped it somewhere between
//! sending and receiving), the midpoint is the sample, and the sample with the
//! shortest round trip in a recent window is the estimate, so a slow or
//! congested request never drags it off. A raw local clock is never trusted
//! for ordering: edits stamped without a fresh estimate are re-stamped at the
//! next contact with the server (see `store::stamps`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Test-only: add this many ms to the local clock, to simulate a machine whose
/// clock is wrong. Never set it in production; the offset estimate corrects
/// for it exactly as it would for a real skewed clock.
pub const TEST_SKEW_ENV: &str = "FERRY_TEST_CLOCK_SKEW_MS";

fn test_skew_ms() -> i64 {
    static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *SKEW.get_or_init(|| std::env::var(TEST_SKEW_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0))
}

/// The local wall clock in ms (including the test skew, if any).
pub fn local_now_ms() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_millis() as i64 + test_skew_ms()
}

/// A reading of a clock that only moves forward at the rate of real time,
/// whatever happens to the wall clock. Readings compare only within one
/// `domain`: on Linux the boot (`boot_id`, time since boot including
/// suspend), so they hold across processes; elsewhere this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monotonic {
    pub domain: String,
    pub ms: i64,
}

/// Now on the monotonic clock (see [`Monotonic`]).
pub fn monotonic_now() -> Monotonic {
    #[cfg(target_os = "linux")]
    if let Some(m) = linux_boot_clock() {
        return m;
    }
    process_clock()
}

#[cfg(target_os = "linux")]
fn linux_boot_clock() -> Option<Monotonic> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let boot = BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| format!("boot:{}", s.trim()))
        })
        .clone()?;
    // CLOCK_BOOTTIME (counts suspend), 10 ms resolution, without libc.
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    Some(Monotonic { domain: boot, ms: (secs * 1000.0).round() as i64 })
}

fn process_clock() -> Monotonic {
    static START: std::sync::OnceLock<(Instant, String)> = std::sync::OnceLock::new();
    let (start, domain) = START.get_or_init(|| {
        let nonce = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        (Instant::now(), format!("process:{}:{nonce}", std::process::id()))
    });
    Monotonic { domain: domain.clone(), ms: start.elapsed().as_millis() as i64 }
}

/// One observation of the offset: `server_time - local midpoint`, true to
/// within ± `rtt_ms / 2`.
#[derive(Debug, Clone, Copy)]
struct Sample {
    offset_ms: i64,
    rtt_ms: i64,
    /// When the answer arrived.
    at: Instant,
    /// The local wall clock when the answer arrived (at `at`), to notice a
    /// step since.
    local_ms: i64,
}

/// Samples kept to choose from.
const WINDOW: usize = 8;
/// Older samples are dropped: the local clock drifts, and a better network
/// path then is no evidence about now.
const MAX_AGE: Duration = Duration::from_secs(10 * 60);
/// Rounding of the ms timestamps on both ends.
const SLACK_MS: i64 = 5;
/// A wall clock that moved this much more or less than real time was stepped.
const STEP_MS: i64 = 1000;

#[derive(Debug, Default)]
struct ClockState {
    /// The last estimate saved by an earlier process, until a sample comes.
    saved_offset: Option<i64>,
    /// This process's recent samples, oldest first.
    window: VecDeque<Sample>,
}

impl ClockState {
    fn best(&self) -> Option<Sample> {
        // Lowest round trip; among equals, the newest.
        self.window.iter().rev().min_by_key(|s| s.rtt_ms).copied()
    }

    fn offset(&self) -> i64 {
        self.best().map(|s| s.offset_ms).or(self.saved_offset).unwrap_or(0)
    }
}

/// Estimated `server clock - local clock`, in ms.
#[derive(Debug, Default)]
pub struct ServerClock {
    state: Mutex<ClockState>,
}

impl ServerClock {
    /// `offset_ms`: the estimate an earlier process saved, if any. It is used
    /// until this process sees the server, then replaced.
    pub fn new(offset_ms: Option<i64>) -> Self {
        ServerClock { state: Mutex::new(ClockState { saved_offset: offset_ms, window: VecDeque::new() }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Now on the server's clock, as well as we know it (the raw local clock
    /// when nothing is known yet: such stamps are re-stamped later).
    pub fn now_ms(&self) -> i64 {
        local_now_ms() + self.offset_ms()
    }

    pub fn offset_ms(&self) -> i64 {
        self.lock().offset()
    }

    /// Whether any offset is known, fresh or saved.
    pub fn is_known(&self) -> bool {
        let s = self.lock();
        !s.window.is_empty() || s.saved_offset.is_some()
    }

    /// The estimate, if this process observed the server within `max_age`
    /// and the local wall clock has not been stepped since.
    pub fn fresh_offset(&self, max_age: Duration) -> Option<i64> {
        let s = self.lock();
        let newest = s.window.back()?;
        let elapsed = newest.at.elapsed();
        let wall_elapsed = local_now_ms() - newest.local_ms;
        let stepped = (wall_elapsed - elapsed.as_millis() as i64).abs() > STEP_MS;
        (elapsed <= max_age && !stepped).then(|| s.offset())
    }

    /// Feed one observation: the request left at `sent` and its answer's
    /// headers arrived at `received` (both local ms; take `received` as
    /// `sent` plus a monotonic duration so a wall-clock step in between
    /// cannot fake a round trip), carrying `server_time`. Returns the new
    /// estimate.
    pub fn observe(&self, sent: i64, received: i64, server_time: i64) -> i64 {
        self.observe_at(Instant::now(), sent, received, server_time)
    }

    fn observe_at(&self, now: Instant, sent: i64, received: i64, server_time: i64) -> i64 {
        let rtt_ms = received - sent;
        let mut s = self.lock();
        if rtt_ms < 0 {
            return s.offset(); // not a real observation
        }
        let mid = sent + rtt_ms / 2;
        let sample = Sample { offset_ms: server_time - mid, rtt_ms, at: now, local_ms: received };
        s.window.retain(|old| now.saturating_duration_since(old.at) <= MAX_AGE);
        if let Some(best) = s.best() {
            // Each sample's true offset lies within ± rtt/2 of it. If the two
            // ranges do not meet, a clock was stepped: start afresh.
            let reach = (best.rtt_ms + rtt_ms) / 2 + 1 + SLACK_MS;
            if (sample.offset_ms - best.offset_ms).abs() > reach {
                tracing::info!(old = best.offset_ms, new = sample.offset_ms, "clock offset jumped; following it");
                s.window.clear();
            }
        }
        if s.window.len() == WINDOW {
            s.window.pop_front();
        }
        s.window.push_back(sample);
        s.offset()
    }
}

#[cfg(test)]
mod tests {
    /// A slow answer (3 s round trip: a train's mobile link) is an honest
    /// sample, not a clock step: the estimate stays fresh.
    #[test]
    fn a_slow_round_trip_is_not_a_clock_step() {
        let c = ServerClock::new(None);
        let received = local_now_ms();
        c.observe(received - 3000, received, received + 60_000);
        assert!(c.fresh_offset(Duration::from_secs(600)).is_some());
        assert!((c.offset_ms() - 61_500).abs() <= 2, "{}", c.offset_ms());
    }

    use super::*;

    #[test]
    fn first_sample_sets_offset_and_replaces_a_saved_one() {
        let c = ServerClock::new(Some(-86_400_000));
        assert_eq!(c.offset_ms(), -86_400_000);
        assert!(c.is_known());
        assert_eq!(c.fresh_offset(Duration::from_secs(60)), None, "a saved offset is not fresh");
        let sent = local_now_ms();
        assert_eq!(c.observe(sent, sent + 100, sent + 4050), 4000);
        assert_eq!(c.fresh_offset(Duration::from_secs(60)), Some(4000));
        assert_eq!(c.fresh_offset(Duration::ZERO), None, "older than asked for");
        // A sample whose wall time is far from now: the clock was stepped since.
        let stepped = ServerClock::new(None);
        stepped.observe(sent - 3_600_000, sent - 3_600_000 + 10, sent);
        assert_eq!(stepped.fresh_offset(Duration::from_secs(60)), None);
        assert!(!ServerClock::new(None).is_known());
    }

    /// A slow answer (the server stamped it early in a 4 s round trip) must
    /// not move an estimate a fast one pinned down; a faster one improves it.
    #[test]
    fn the_lowest_round_trip_wins_so_slow_links_do_not_bias_it() {
        let c = ServerClock::new(None);
        // True offset 1000: a fast exchange.
        assert_eq!(c.observe(0, 40, 1020), 1000);
        // Slow: sent at 100, the server stamped at once (local 100), the
        // answer took 4 s to arrive. Its midpoint is 2 s off.
        assert_eq!(c.observe(100, 4100, 1100), 1000, "the slow sample does not move the estimate");
        // A tighter one refines it.
        assert_eq!(c.observe(5000, 5010, 6003), 998);
        assert_eq!(c.offset_ms(), 998);
    }

    #[test]
    fn a_stepped_clock_is_followed_at_once() {
        let c = ServerClock::new(None);
        c.observe(0, 20, 110);
        assert_eq!(c.offset_ms(), 100);
        // The local clock was set back an hour: every new sample says +1 h.
        let o = c.observe(10_000, 10_400, 10_200 + 3_600_100);
        assert_eq!(o, 3_600_100, "ranges that do not meet mean a step, even from a slower sample");
    }

    #[test]
    fn samples_expire_and_a_negative_round_trip_is_ignored() {
        let c = ServerClock::new(None);
        let t0 = Instant::now();
        c.observe_at(t0, 0, 10, 105); // offset 100, rtt 10
                                      // Later, only slower samples; the old fast one still wins while fresh.
        assert_eq!(c.observe_at(t0 + Duration::from_secs(60), 0, 200, 190), 100);
        // After MAX_AGE it is gone; the best of what is left counts.
        let late = t0 + MAX_AGE + Duration::from_secs(1);
        assert_eq!(c.observe_at(late, 0, 100, 140), 90);
        assert_eq!(c.observe(500, 400, 0), 90, "a wall-clock step during the request is no sample");
    }

    #[test]
    fn the_window_keeps_only_recent_samples() {
        let c = ServerClock::new(None);
        let t0 = Instant::now();
        c.observe_at(t0, 0, 2, 51); // the best: rtt 2, offset 50
        for i in 1..=WINDOW as u64 {
            c.observe_at(t0 + Duration::from_secs(i), 0, 20, 60); // rtt 20, offset 50
        }
        assert_eq!(c.lock().window.len(), WINDOW);
        assert!(c.lock().window.iter().all(|s| s.rtt_ms == 20), "the oldest fell out");
    }

    #[test]
    fn monotonic_readings_move_forward_in_one_domain() {
        let a = monotonic_now();
        std::thread::sleep(Duration::from_millis(30));
        let b = monotonic_now();
        assert_eq!(a.domain, b.domain);
        assert!(b.ms >= a.ms + 10, "{a:?} -> {b:?}");
    }
}
