//! `cuda_calls`: one call of the CUDA runtime by one process — kernel
//! launches with their kernel's name and dimensions, copies, allocations and
//! synchronisations — with the job, rank and device it belongs to.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

activity_row! {
    pub struct CudaCallRow {
        pub tid: u32,
        /// The training job; empty for a process outside any.
        pub job: String,
        /// The process's rank in its largest communicator; -1 when unknown.
        pub rank: i32,
        /// -1 when unknown.
        pub device: i32,
        /// "LAUNCH_KERNEL", "MEMCPY" ... (the `CudaCall.Api` name).
        pub api: String,
        /// Demangled kernel name of a launch.
        pub kernel: String,
        pub grid_x: u32,
        pub grid_y: u32,
        pub grid_z: u32,
        pub block_x: u32,
        pub block_y: u32,
        pub block_z: u32,
        pub stream: u64,
        /// Copied or allocated bytes; a launch's dynamic shared memory.
        pub bytes: u64,
        pub memcpy_kind: i32,
        /// `cudaError_t`.
        pub result: i32,
        pub duration_ns: u64,
        /// A launch's function pointer or graph within the process.
        pub handle: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "cuda_calls",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("tid", Col::U32),
        ("job", Col::Label),
        ("rank", Col::I32),
        ("device", Col::I32),
        ("api", Col::Label),
        ("kernel", Col::Label),
        ("grid_x", Col::U32),
        ("grid_y", Col::U32),
        ("grid_z", Col::U32),
        ("block_x", Col::U32),
        ("block_y", Col::U32),
        ("block_z", Col::U32),
        ("stream", Col::U64),
        ("bytes", Col::U64),
        ("memcpy_kind", Col::I32),
        ("result", Col::I32),
        ("duration_ns", Col::U64),
        ("handle", Col::U64),
    ],
    key: &["job", "rank", "ts_ns", "host", "boot_id", "pid", "tid", "api", "handle"],
    key_time_first: true,
    indexes: &["job, rank, wall_ns", "host, pid, wall_ns"],
    added: &[],
};
