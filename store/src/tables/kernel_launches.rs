//! `kernel_launches`: one process's launches of one kernel within one
//! delivered batch, summed. The job-wide kernel view reads these instead of
//! every launch in `cuda_calls`: a batch of a training host holds hundreds of
//! launches of each kernel per rank, so the view reads hundreds of times
//! fewer rows. `ts_ns`/`wall_ns` are the batch's first launch of the kernel;
//! a time window selects whole batch groups by that first launch.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

activity_row! {
    pub struct KernelLaunchesRow {
        pub job: String,
        pub rank: i32,
        pub device: i32,
        /// Demangled kernel name.
        pub kernel: String,
        pub launches: u64,
        /// Launches that returned an error.
        pub failed: u64,
        /// Time spent in the launch calls.
        pub total_ns: u64,
        /// Dimensions of the group's last launch.
        pub grid_x: u32,
        pub grid_y: u32,
        pub grid_z: u32,
        pub block_x: u32,
        pub block_y: u32,
        pub block_z: u32,
        /// Boot-clock time of the group's last launch.
        pub last_ts_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "kernel_launches",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("job", Col::Label),
        ("rank", Col::I32),
        ("device", Col::I32),
        ("kernel", Col::Label),
        ("launches", Col::U64),
        ("failed", Col::U64),
        ("total_ns", Col::U64),
        ("grid_x", Col::U32),
        ("grid_y", Col::U32),
        ("grid_z", Col::U32),
        ("block_x", Col::U32),
        ("block_y", Col::U32),
        ("block_z", Col::U32),
        ("last_ts_ns", Col::U64),
    ],
    // A batch delivered again sums to the same row under the same key.
    key: &["job", "rank", "kernel", "host", "boot_id", "pid", "ts_ns"],
    key_time_first: true,
    indexes: &["job, rank, wall_ns"],
    added: &[],
};
