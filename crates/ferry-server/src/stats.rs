//! Operator views of the database: counters and a full dump.

use std::collections::BTreeMap;

use ferry_protocol::RemoteRecord;
use serde::{Deserialize, Serialize};

/// `ferry-server stats --json`. Counters are totals over all organisations
/// since the database was created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Stats {
    /// Live (not deleted) records per entity.
    pub records: BTreeMap<String, u64>,
    pub tombstones: u64,
    pub mutations_applied: u64,
    /// Distinct (org, mutation id) pairs in the idempotency table. Equal to
    /// `mutations_applied` unless a mutation was counted (applied) twice or
    /// applied without being remembered, so an operator or a test can check
    /// "nothing applied twice" through the CLI.
    pub distinct_applied_ids: u64,
    pub mutations_duplicate: u64,
    pub conflicts: u64,
    pub rejected: u64,
}

/// One line of `ferry-server dump`: a record and its organisation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DumpRecord {
    pub org: String,
    #[serde(flatten)]
    pub record: RemoteRecord,
}
