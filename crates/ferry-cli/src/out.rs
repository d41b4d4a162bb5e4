//! Writing to stdout without panicking when the reader went away.
//!
//! `println!` panics on a closed pipe (`ferry list x | head -1`). These
//! return the error instead, and `main` ends quietly when it is a broken pipe:
//! the reader chose to stop reading, which is not a failure of the command.

use std::io::{ErrorKind, Write};

/// Like `println!`, but returns `std::io::Result<()>`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// Writes `text` as-is.
pub fn write_str(text: &str) -> std::io::Result<()> {
    std::io::stdout().lock().write_all(text.as_bytes())
}

/// Whether `e` is (or was caused by) writing to a closed stdout.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>().and_then(|j| j.io_error_kind()) == Some(ErrorKind::BrokenPipe)
    })
}
