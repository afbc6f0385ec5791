//! `collective_verdicts`: one NCCL collective joined across all its ranks
//! and hosts, and what the join made of it: complete, straggler, mismatch or
//! hang. One row per (job, communicator, sequence); small next to the calls
//! it summarises, so every diagnosis view reads it rather than the calls.

use serde::{Deserialize, Serialize};

use super::llm_calls::from_json_column;
use super::row::table_row;
use super::spec::{Col, TableSpec};
use crate::StoreError;

table_row! {
    pub struct CollectiveVerdictRow {
        pub job: String,
        pub communicator: u64,
        pub seq: u64,
        /// The op most ranks called ("ALL_REDUCE" ...).
        pub op: String,
        pub count: u64,
        pub datatype: i32,
        pub nranks: u32,
        /// Ranks that arrived, and the hosts they ran on.
        pub arrived: u32,
        pub hosts: u32,
        /// "complete", "straggler", "mismatch" or "hang".
        pub verdict: String,
        /// First arrival, wall-clock ns (with each host's clock correction).
        pub wall_ns: u64,
        pub median_wall_ns: u64,
        pub last_wall_ns: u64,
        /// The rank that arrived last, where it ran, and how long after the
        /// median arrival (also for a complete collective; -1 for a hang).
        pub rank: i32,
        pub host: String,
        pub device: i32,
        pub late_ns: u64,
        /// Mismatch: "op", "count" or "datatype", the value most ranks had,
        /// and a JSON array of [`RankValue`] for the ranks that differ.
        pub field: String,
        pub expected: String,
        pub differing: String,
        /// Hang: a JSON array of [`MissingRank`].
        pub missing: String,
        pub judged_wall_ns: u64,
    }
}

/// An element of `differing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankValue {
    pub rank: u32,
    pub value: String,
}

/// An element of `missing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRank {
    pub rank: u32,
    /// None: the rank completed no collective of the communicator.
    pub last_completed_seq: Option<u64>,
    /// From the rank's latest call seen; empty when never seen.
    pub host: String,
    pub device: i32,
}

impl CollectiveVerdictRow {
    pub fn differing_list(&self) -> Result<Vec<RankValue>, StoreError> {
        from_json_column("collective_verdicts.differing", &self.differing)
    }

    pub fn missing_list(&self) -> Result<Vec<MissingRank>, StoreError> {
        from_json_column("collective_verdicts.missing", &self.missing)
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "collective_verdicts",
    activity: false,
    columns: &[
        ("job", Col::Label),
        ("communicator", Col::U64),
        ("seq", Col::U64),
        ("op", Col::Label),
        ("count", Col::U64),
        ("datatype", Col::I32),
        ("nranks", Col::U32),
        ("arrived", Col::U32),
        ("hosts", Col::U32),
        ("verdict", Col::Label),
        ("wall_ns", Col::U64),
        ("median_wall_ns", Col::U64),
        ("last_wall_ns", Col::U64),
        ("rank", Col::I32),
        ("host", Col::Label),
        ("device", Col::I32),
        ("late_ns", Col::U64),
        ("field", Col::Label),
        ("expected", Col::Text),
        ("differing", Col::Text),
        ("missing", Col::Text),
        ("judged_wall_ns", Col::U64),
    ],
    key: &["job", "communicator", "seq"],
    indexes: &["job, verdict, wall_ns"],
};
