//! `file_writes`: bytes a process wrote to a file over a window, from the
//! kernel's IO accounting.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

activity_row! {
    pub struct FileWriteRow {
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
    day_of: Some("wall_ns"),
    columns: &[
        ("path", Col::Text),
        ("dev", Col::U64),
        ("ino", Col::U64),
        ("bytes", Col::U64),
        ("calls", Col::U64),
        ("window_start_wall_ns", Col::U64),
    ],
    key: &["host", "boot_id", "pid", "dev", "ino", "ts_ns"],
    key_time_first: true,
    indexes: &["wall_ns"],
    added: &[],
};
