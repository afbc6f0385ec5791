//! `file_writes`: bytes a process wrote to a file over a window, from the
//! kernel's IO accounting.

use super::row::table_row;
use super::spec::{Col, TableSpec};

table_row! {
    pub struct FileWriteRow {
        pub host: String,
        pub boot_id: String,
        pub pid: u32,
        pub process_start_key_ns: u64,
        pub comm: String,
        pub cgroup_id: u64,
        pub ts_ns: u64,
        pub wall_ns: u64,
        pub path: String,
        pub dev: u64,
        pub ino: u64,
        pub bytes: u64,
        pub calls: u64,
        pub window_start_wall_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "file_writes",
    activity: true,
    columns: &[
        ("path", Col::Text),
        ("dev", Col::U64),
        ("ino", Col::U64),
        ("bytes", Col::U64),
        ("calls", Col::U64),
        ("window_start_wall_ns", Col::U64),
    ],
    key: &["host", "boot_id", "pid", "dev", "ino", "ts_ns"],
    indexes: &["wall_ns"],
};
