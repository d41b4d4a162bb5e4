//! The server clock. Every time on the wire is milliseconds since the Unix
//! epoch on this clock; clients estimate their offset from it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    // A clock before 1970 is a broken host; 0 keeps us running rather than
    // panicking on a request path.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}
