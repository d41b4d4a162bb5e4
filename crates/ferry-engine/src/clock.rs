//! Time, on the server's clock.
//!
//! Last-write-wins compares when edits were *made*, so edits are stamped with
//! the local clock corrected by an estimate of the server's offset (learned
//! from the `server_time` in every response, NTP-style: the midpoint of the
//! request's round trip). A raw local clock is never trusted for ordering.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Estimated `server clock - local clock`, in ms.
#[derive(Debug, Default)]
pub struct ServerClock {
    offset_ms: AtomicI64,
    has_sample: std::sync::atomic::AtomicBool,
}

impl ServerClock {
    pub fn new(offset_ms: Option<i64>) -> Self {
        let c = ServerClock::default();
        if let Some(o) = offset_ms {
            c.offset_ms.store(o, Ordering::Relaxed);
            c.has_sample.store(true, Ordering::Relaxed);
        }
        c
    }

    /// Now on the server's clock, as well as we know it.
    pub fn now_ms(&self) -> i64 {
        local_now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Feed one observation: the request left at `sent` and its answer came
    /// back at `received` (both local ms) carrying `server_time`. Returns the
    /// new offset.
    pub fn observe(&self, sent: i64, received: i64, server_time: i64) -> i64 {
        let rtt = (received - sent).max(0);
        let sample = server_time - (sent + rtt / 2);
        let new = if self.has_sample.swap(true, Ordering::Relaxed) {
            let old = self.offset_ms.load(Ordering::Relaxed);
            // Smooth jitter, but follow big jumps (a corrected system clock)
            // at once.
            if (sample - old).abs() > 5_000 {
                sample
            } else {
                old + (sample - old) / 4
            }
        } else {
            sample
        };
        self.offset_ms.store(new, Ordering::Relaxed);
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_sets_offset() {
        let c = ServerClock::new(None);
        assert_eq!(c.observe(1000, 1100, 5050), 5050 - 1050);
    }

    #[test]
    fn jitter_is_smoothed_jumps_are_followed() {
        let c = ServerClock::new(Some(100));
        let o = c.observe(0, 0, 200);
        assert_eq!(o, 125);
        let o = c.observe(0, 0, 3_600_000);
        assert_eq!(o, 3_600_000);
    }
}
