//! Exponential backoff for transient failures: 1 s, 2 s, 4 s … capped at
//! 60 s, with full jitter, honouring the server's Retry-After.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { attempt: 0, base: Duration::from_secs(1), cap: Duration::from_secs(60) }
    }
}

/// The longest Retry-After we obey; beyond it a misbehaving server could
/// park the queue for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Backoff {
    /// The ceiling of the current attempt's delay: 1 s, 2 s, 4 s … cap.
    pub fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next try, advancing the schedule: "full
    /// jitter", uniform in [0, ceiling] of the capped exponential ceiling
    /// 1 s, 2 s, 4 s … 60 s. Clients that failed together spread out over the
    /// whole window instead of retrying in step; a server's Retry-After is a
    /// floor.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let jittered = Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling.as_millis() as u64));
        match retry_after {
            Some(ra) => jittered.max(ra.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_to_the_cap() {
        let mut b = Backoff::default();
        let mut nominal = vec![];
        for _ in 0..9 {
            nominal.push(b.nominal().as_secs());
            let d = b.next_delay(None);
            assert!(d <= Duration::from_secs(60));
        }
        assert_eq!(nominal, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn every_delay_is_within_its_ceiling() {
        for _ in 0..200 {
            let mut b = Backoff::default();
            for _ in 0..10 {
                let ceiling = b.nominal();
                assert!(b.next_delay(None) <= ceiling);
            }
        }
    }

    /// Full jitter: uniform over [0, ceiling]. About half the draws fall in
    /// the lower half, and the mean total wait over N failures is half the
    /// sum of the ceilings (10 failures: 303 s of ceilings, 151.5 s expected,
    /// sd of one run ~36 s, so the mean of 1000 runs is within ~1.2 s).
    #[test]
    fn jitter_is_full_and_the_total_wait_matches_the_schedule() {
        let runs = 1000;
        let mut lower_half = 0;
        let mut draws = 0;
        let mut total_ms = 0u64;
        for _ in 0..runs {
            let mut b = Backoff::default();
            for _ in 0..10 {
                let ceiling = b.nominal();
                let d = b.next_delay(None);
                draws += 1;
                if d < ceiling / 2 {
                    lower_half += 1;
                }
                total_ms += d.as_millis() as u64;
            }
        }
        let share = lower_half as f64 / draws as f64;
        assert!((0.46..=0.54).contains(&share), "{share} of delays below half the ceiling");
        let mean_total = total_ms as f64 / runs as f64 / 1000.0;
        assert!((145.0..=158.0).contains(&mean_total), "mean total wait {mean_total} s, expected 151.5 s");
    }

    #[test]
    fn retry_after_is_honoured_and_reset_restarts() {
        let mut b = Backoff::default();
        assert!(b.next_delay(Some(Duration::from_secs(7))) >= Duration::from_secs(7));
        assert!(b.next_delay(Some(Duration::from_secs(86_400))) <= MAX_RETRY_AFTER);
        b.reset();
        assert_eq!(b.nominal(), Duration::from_secs(1));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::default();
        for _ in 0..100 {
            b.next_delay(None);
        }
        assert_eq!(b.nominal(), Duration::from_secs(60));
    }
}
