//! `file_events`: opens (the first of a window, and later summaries of the
//! repeats folded in the kernel), unlinks and renames.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

/// `op` values.
pub mod file_op {
    pub const OPEN: u8 = 1;
    pub const UNLINK: u8 = 2;
    pub const RENAME: u8 = 3;
}

activity_row! {
    pub struct FileEventRow {
        pub op: u8,
        pub path: String,
        /// The new path of a rename.
        pub target: String,
        pub flags: u32,
        /// fd or 0 on success, negative errno on failure.
        pub result: i64,
        /// Occurrences this row stands for.
        pub count: u64,
        pub last_wall_ns: u64,
        pub dev: u64,
        pub ino: u64,
        pub mode: u32,
        pub path_truncated: u8,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "file_events",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("op", Col::U8),
        ("path", Col::Text),
        ("target", Col::Text),
        ("flags", Col::U32),
        ("result", Col::I64),
        ("count", Col::U64),
        ("last_wall_ns", Col::U64),
        ("dev", Col::U64),
        ("ino", Col::U64),
        ("mode", Col::U32),
        ("path_truncated", Col::U8),
    ],
    key: &["host", "boot_id", "pid", "ts_ns", "op", "path"],
    key_time_first: true,
    // No index on path: the views look for substrings, which no index serves.
    indexes: &["wall_ns"],
    added: &[],
};
