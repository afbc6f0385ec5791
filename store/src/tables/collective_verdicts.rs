//! `collective_verdicts`: one NCCL collective joined across all its ranks
//! and hosts, and what the join made of it: complete, straggler, mismatch or
//! hang. One row per (job, communicator, sequence); small next to the calls
//! it summarises, so every diagnosis view reads it rather than the calls.
//! A host of the job whose agent went silent is a row of its own
//! (`silent`, communicator 0, `seq` a hash of the host's name, `host` and
//! `wall_ns` the host and the last moment it was heard of).
//!
//! Ranks are the job's (as its launcher numbered them) where known, with the
//! communicator's own beside them. A straggler or hang that another one
//! caused names its cause (`cause_*`): the views show the cause first.

use serde::{Deserialize, Serialize};

use super::llm_calls::from_json_column;
use super::row::table_row;
use super::spec::{Added, Col, TableSpec};
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
        /// The last arrival's rank inside the communicator (`rank` is the
        /// job's where known); -1 for a hang.
        pub comm_rank: i32,
        /// The communicator's role, inferred from its members' job ranks:
        /// "world" (every rank), "tp" (consecutive ranks), "dp" (strided);
        /// empty when unknown.
        pub role: String,
        /// Set on a consequence: the collective of the cause (a hang: the
        /// root hung collective; a straggler: where its cause held it up)
        /// and the rank that caused it. 0, 0, -1 on a root.
        pub cause_communicator: u64,
        pub cause_seq: u64,
        pub cause_rank: i32,
    }
}

/// An element of `differing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankValue {
    /// The communicator's rank.
    pub rank: u32,
    pub value: String,
    /// The job's rank (-1 unknown), and where the call ran.
    #[serde(default = "unknown")]
    pub global_rank: i32,
    #[serde(default)]
    pub host: String,
    #[serde(default = "unknown")]
    pub device: i32,
}

fn unknown() -> i32 {
    -1
}

/// An element of `missing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRank {
    /// The communicator's rank.
    pub rank: u32,
    /// The job's rank (-1 unknown).
    #[serde(default = "unknown")]
    pub global_rank: i32,
    /// The rank is itself waiting in another collective that has not
    /// completed (so it is not the cause).
    #[serde(default)]
    pub blocked: bool,
    /// Its host went silent: nothing is known of it since.
    #[serde(default)]
    pub silent: bool,
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
    day_of: Some("wall_ns"),
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
    key_time_first: true,
    indexes: &["job, verdict, wall_ns"],
    added: &[Added {
        migration: 7,
        columns: &[
            ("comm_rank", Col::I32, "-1"),
            ("role", Col::Label, "''"),
            ("cause_communicator", Col::U64, "0"),
            ("cause_seq", Col::U64, "0"),
            ("cause_rank", Col::I32, "-1"),
        ],
    }],
};
