//! `nccl_calls`: one call of an NCCL API by one rank — collectives with
//! their communicator, rank and sequence number, and the communicator's
//! init, split and destroy.
//!
//! Ordered by job and rank first: the GPU views read one job, and a rank's
//! timeline reads one narrow range of the table.

use super::row::activity_row;
use super::spec::{Added, Col, TableSpec};

activity_row! {
    pub struct NcclCallRow {
        pub tid: u32,
        /// The training job (see `NcclCall.job_sid`).
        pub job: String,
        /// The communicator: the hash of its `ncclUniqueId`, 0 when unknown.
        pub communicator: u64,
        /// `ncclComm_t` within the process.
        pub comm_handle: u64,
        /// The rank as users name it: the job's (as its launcher numbered
        /// it) when `rank_in_job`, else the communicator's; -1 unknown.
        /// Leading the key, so one rank's timeline reads one narrow range.
        pub rank: i32,
        pub nranks: i32,
        pub seq: u64,
        /// "ALL_REDUCE", "COMM_INIT" ... (the `NcclCall.Op` name).
        pub op: String,
        pub count: u64,
        pub datatype: i32,
        pub reduce_op: i32,
        pub peer: i32,
        pub stream: u64,
        /// `ncclResult_t`.
        pub result: i32,
        pub duration_ns: u64,
        /// -1 when unknown.
        pub device: i32,
        /// Of a split: the parent communicator and the color.
        pub parent_communicator: u64,
        pub color: i32,
        /// The rank inside the communicator; -1 unknown.
        pub comm_rank: i32,
        /// The job's size (`NcclCall.world_size`); -1 unknown.
        pub world_size: i32,
        /// 1 when `rank` is the job's rank, 0 when it is the communicator's
        /// (the launcher's rank unknown, or a row from before migration 7).
        pub rank_in_job: u8,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "nccl_calls",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("tid", Col::U32),
        ("job", Col::Label),
        ("communicator", Col::U64),
        ("comm_handle", Col::U64),
        ("rank", Col::I32),
        ("nranks", Col::I32),
        ("seq", Col::U64),
        ("op", Col::Label),
        ("count", Col::U64),
        ("datatype", Col::I32),
        ("reduce_op", Col::I32),
        ("peer", Col::I32),
        ("stream", Col::U64),
        ("result", Col::I32),
        ("duration_ns", Col::U64),
        ("device", Col::I32),
        ("parent_communicator", Col::U64),
        ("color", Col::I32),
    ],
    key: &["job", "rank", "ts_ns", "host", "boot_id", "pid", "tid", "op", "comm_handle", "seq"],
    key_time_first: true,
    indexes: &["job, rank, wall_ns", "host, pid, wall_ns"],
    added: &[Added {
        migration: 7,
        columns: &[("comm_rank", Col::I32, "-1"), ("world_size", Col::I32, "-1"), ("rank_in_job", Col::U8, "0")],
    }],
};
