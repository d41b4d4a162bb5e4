//! Login throttling: the rules, without a database.
//!
//! Failed sign-ins are counted per account name (whether or not such an
//! account exists, so the answers do not tell which names are real) and
//! per client address. Past a few free failures each further one locks
//! the key for twice as long as the last, up to [`MAX_LOCKOUT_MS`]; while
//! a key is locked, sign-ins with it are answered `429 rate_limited` with
//! `Retry-After`, without looking at the password. A guesser at 40 tries
//! a second gets about a hundred guesses a day per account.
//!
//! The counts live in the database ([`crate::storage::Storage`]), so every
//! node sees the same ones; a key quiet for [`FORGET_AFTER_MS`] starts
//! over. A correct password clears its account's count, never its
//! address's (else one valid account would reset the count of an address
//! trying others).

use std::net::IpAddr;

/// Failures of one account before it is locked.
pub const ACCOUNT_FREE_FAILURES: u32 = 5;
/// Failures from one address before it is locked: more than an account's,
/// since a chapter's office shares one address.
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// The first lockout; each further failure doubles it.
pub const FIRST_LOCKOUT_MS: i64 = 5_000;
pub const MAX_LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// A key with no failure for this long is forgotten (longer than the
/// longest lockout, so waiting one out does not reset the count).
pub const FORGET_AFTER_MS: i64 = 60 * 60 * 1000;

/// What failures are counted under, e.g. `account:ann`, `address:192.0.2.7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKey {
    pub key: String,
    /// Failures before the first lockout.
    pub free: u32,
}

impl ThrottleKey {
    pub fn account(name: &str) -> Self {
        Self { key: format!("account:{name}"), free: ACCOUNT_FREE_FAILURES }
    }

    /// IPv6 clients are counted by their /64: one host controls a whole
    /// /64, and would otherwise get a fresh count per address.
    pub fn address(ip: IpAddr) -> Self {
        let key = match ip {
            IpAddr::V4(v4) => format!("address:{v4}"),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => format!("address:{v4}"),
                None => {
                    let s = v6.segments();
                    format!("address:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        };
        Self { key, free: ADDRESS_FREE_FAILURES }
    }
}

/// A key's failures as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    pub key: String,
    pub failures: u32,
    pub last_failure_at: i64,
}

/// How long a key with `failures` is locked after its last failure.
pub fn lockout_ms(failures: u32, free: u32) -> i64 {
    if failures < free {
        return 0;
    }
    let doublings = (failures - free).min(20);
    (FIRST_LOCKOUT_MS << doublings).min(MAX_LOCKOUT_MS)
}

/// How long sign-ins with any of `keys` must wait at `now`, if at all.
pub fn wait_ms(keys: &[ThrottleKey], counts: &[FailureCount], now: i64) -> Option<i64> {
    counts
        .iter()
        .filter(|c| now - c.last_failure_at < FORGET_AFTER_MS)
        .filter_map(|c| {
            let key = keys.iter().find(|k| k.key == c.key)?;
            let until = c.last_failure_at + lockout_ms(c.failures, key.free);
            (until > now).then_some(until - now)
        })
        .max()
}

/// "3 minutes", "40 seconds": how long to wait, for people.
pub fn describe_wait(secs: u64) -> String {
    if secs < 60 {
        let secs = secs.max(1);
        format!("{secs} second{}", if secs == 1 { "" } else { "s" })
    } else {
        let minutes = secs.div_ceil(60);
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_grow_and_are_capped() {
        assert_eq!(lockout_ms(0, 5), 0);
        assert_eq!(lockout_ms(4, 5), 0);
        assert_eq!(lockout_ms(5, 5), 5_000);
        assert_eq!(lockout_ms(6, 5), 10_000);
        assert_eq!(lockout_ms(9, 5), 80_000);
        assert_eq!(lockout_ms(12, 5), 640_000);
        assert_eq!(lockout_ms(13, 5), MAX_LOCKOUT_MS);
        assert_eq!(lockout_ms(u32::MAX, 5), MAX_LOCKOUT_MS);
    }

    #[test]
    fn the_longest_lock_of_the_keys_counts() {
        let keys = [ThrottleKey::account("ann"), ThrottleKey::address("192.0.2.7".parse().unwrap())];
        let count = |key: &str, failures, at| FailureCount { key: key.into(), failures, last_failure_at: at };
        assert_eq!(wait_ms(&keys, &[], 0), None);
        // Four failures of the account: still free.
        assert_eq!(wait_ms(&keys, &[count("account:ann", 4, 1000)], 1000), None);
        assert_eq!(wait_ms(&keys, &[count("account:ann", 6, 1000)], 1500), Some(9500));
        let both = [count("account:ann", 6, 1000), count("address:192.0.2.7", 22, 1000)];
        assert_eq!(wait_ms(&keys, &both, 1000), Some(20_000));
        // Over, and forgotten.
        assert_eq!(wait_ms(&keys, &both, 21_000), None);
        assert_eq!(wait_ms(&keys, &[count("account:ann", 40, 0)], FORGET_AFTER_MS), None);
        // Counts of other keys do not matter.
        assert_eq!(wait_ms(&keys, &[count("account:bob", 40, 1000)], 1000), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(ThrottleKey::address("192.0.2.7".parse().unwrap()).key, "address:192.0.2.7");
        assert_eq!(ThrottleKey::address("::ffff:192.0.2.7".parse().unwrap()).key, "address:192.0.2.7");
        assert_eq!(ThrottleKey::address("2001:db8:1:2:3:4:5:6".parse().unwrap()).key, "address:2001:db8:1:2::/64");
        assert_eq!(
            ThrottleKey::address("2001:db8:1:2::9".parse().unwrap()),
            ThrottleKey::address("2001:db8:1:2:ffff::1".parse().unwrap())
        );
    }

    #[test]
    fn waits_for_people() {
        assert_eq!(describe_wait(0), "1 second");
        assert_eq!(describe_wait(40), "40 seconds");
        assert_eq!(describe_wait(60), "1 minute");
        assert_eq!(describe_wait(61), "2 minutes");
        assert_eq!(describe_wait(900), "15 minutes");
    }
}
