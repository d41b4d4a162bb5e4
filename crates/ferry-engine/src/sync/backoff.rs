//! Exponential backoff for transient failures: 1 s, 2 s, 4 s … capped at
//! 60 s, with jitter, honouring the server's Retry-After.

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
    /// The un-jittered delay for the current attempt: 1 s, 2 s, 4 s … cap.
    pub fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next try, advancing the schedule.
    ///
    /// Jitter draws uniformly from [d/2, d] rather than [0, d] ("full
    /// jitter"): clients still spread out, but a retry never comes sooner than
    /// half the schedule, which is what gives a struggling server relief and
    /// makes the schedule checkable from outside.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let d = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        let jittered = half + Duration::from_millis(rand::thread_rng().gen_range(0..=half.as_millis() as u64));
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
    fn jitter_stays_within_half_to_full() {
        for _ in 0..200 {
            let mut b = Backoff::default();
            b.next_delay(None);
            b.next_delay(None);
            let d = b.next_delay(None); // nominal 4 s
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(4), "{d:?}");
        }
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
