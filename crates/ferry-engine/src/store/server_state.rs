//! What ties a data dir to its server (read by `init` before it lets the
//! data dir move to another server).

use super::Store;
use crate::error::Result;

impl Store {
    /// Whether any record carries a version from the server (pushed and
    /// applied, or pulled): such versions mean nothing to another server.
    pub fn has_server_versions(&self) -> Result<bool> {
        Ok(self.conn().query_row("SELECT EXISTS(SELECT 1 FROM records WHERE version > 0)", [], |r| r.get(0))?)
    }

    /// Any record, queued change, conflict or resolution here at all.
    pub fn holds_any_data(&self) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS(SELECT 1 FROM records) OR EXISTS(SELECT 1 FROM outbox)
                 OR EXISTS(SELECT 1 FROM conflicts) OR EXISTS(SELECT 1 FROM history)",
            [],
            |r| r.get(0),
        )?)
    }
}
