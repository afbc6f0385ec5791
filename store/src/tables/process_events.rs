//! `process_events`: one row per process lifecycle event. A process is the
//! group of rows sharing (host, boot_id, pid, start_key_ns); reads fold them.
//! The sort key includes the event's kind and time, so a re-delivered row is
//! the same key: ReplacingMergeTree (ClickHouse) and the unique index (SQLite)
//! keep one.

use super::row::table_row;
use super::spec::{Col, TableSpec};

/// `kind` column values (an `Enum8` in ClickHouse, an integer in SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProcessEventKind {
    Exec = 1,
    /// Running when the agent started (from /proc).
    Seen = 2,
    Fork = 3,
    Exit = 4,
    ExecFailed = 5,
}

table_row! {
    pub struct ProcessEventRow {
        pub host: String,
        pub boot_id: String,
        pub pid: u32,
        /// Process start, boot-clock ns truncated to a clock tick.
        pub start_key_ns: u64,
        /// A [`ProcessEventKind`] value.
        pub kind: u8,
        /// Event time on the node's boot clock.
        pub ts_ns: u64,
        pub wall_ns: u64,
        pub start_wall_ns: u64,
        pub ppid: u32,
        pub uid: u32,
        pub gid: u32,
        pub comm: String,
        /// Executable (exec, seen) or the file asked for (exec_failed).
        pub exe: String,
        pub argv: Vec<String>,
        pub argv_truncated: bool,
        pub cgroup_id: u64,
        pub exit_code: i32,
        pub exit_signal: u32,
        pub core_dumped: bool,
        /// Positive errno of a failed exec.
        pub errno: i32,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "process_events",
    activity: false,
    day_of: Some("wall_ns"),
    columns: &[
        ("host", Col::Label),
        ("boot_id", Col::Label),
        ("pid", Col::U32),
        ("start_key_ns", Col::U64),
        ("kind", Col::Kind("'exec' = 1, 'seen' = 2, 'fork' = 3, 'exit' = 4, 'exec_failed' = 5")),
        ("ts_ns", Col::U64),
        ("wall_ns", Col::U64),
        ("start_wall_ns", Col::U64),
        ("ppid", Col::U32),
        ("uid", Col::U32),
        ("gid", Col::U32),
        ("comm", Col::Label),
        ("exe", Col::LongText),
        ("argv", Col::Strings),
        ("argv_truncated", Col::U8),
        ("cgroup_id", Col::U64),
        ("exit_code", Col::I32),
        ("exit_signal", Col::U32),
        ("core_dumped", Col::U8),
        ("errno", Col::I32),
    ],
    key: &["host", "boot_id", "pid", "start_key_ns", "kind", "ts_ns"],
    // Processes are folded and their trees walked by the leading key columns.
    key_time_first: false,
    indexes: &["host, boot_id, ppid", "start_wall_ns"],
    added: &[],
};
