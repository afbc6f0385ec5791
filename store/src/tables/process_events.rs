//! `process_events`: one row per process lifecycle event. A process is the
//! group of rows sharing (host, boot_id, pid, start_key_ns); reads fold them.
//! The sort key includes the event's kind and time, so a re-delivered row is
//! the same key: ReplacingMergeTree (ClickHouse) and the unique index (SQLite)
//! keep one.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use crate::dialect::Dialect;

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Row, Serialize, Deserialize)]
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

pub(crate) fn clickhouse_ddl(d: &Dialect) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS process_events (
            host {lc_string},
            boot_id {lc_string},
            pid UInt32,
            start_key_ns UInt64,
            kind Enum8('exec' = 1, 'seen' = 2, 'fork' = 3, 'exit' = 4, 'exec_failed' = 5),
            ts_ns UInt64{delta},
            wall_ns UInt64{delta},
            start_wall_ns UInt64{delta},
            ppid UInt32,
            uid UInt32,
            gid UInt32,
            comm {lc_string},
            exe String{zstd},
            argv Array(String){zstd},
            argv_truncated UInt8,
            cgroup_id UInt64,
            exit_code Int32,
            exit_signal UInt32,
            core_dumped UInt8,
            errno Int32,
            day Date MATERIALIZED toDate(toDateTime(intDiv(wall_ns, 1000000000)))
        ) ENGINE = ReplacingMergeTree
        PARTITION BY day
        ORDER BY (host, boot_id, pid, start_key_ns, kind, ts_ns){ttl}",
        lc_string = d.low_cardinality("String"),
        delta = d.codec("DoubleDelta, ZSTD(1)"),
        zstd = d.codec("ZSTD(3)"),
        ttl = d.ttl("day"),
    )
}

pub(crate) const SQLITE_DDL: &str = "
CREATE TABLE IF NOT EXISTS process_events (
    host TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    start_key_ns INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    wall_ns INTEGER NOT NULL,
    start_wall_ns INTEGER NOT NULL,
    ppid INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    comm TEXT NOT NULL,
    exe TEXT NOT NULL,
    argv TEXT NOT NULL, -- JSON array
    argv_truncated INTEGER NOT NULL,
    cgroup_id INTEGER NOT NULL,
    exit_code INTEGER NOT NULL,
    exit_signal INTEGER NOT NULL,
    core_dumped INTEGER NOT NULL,
    errno INTEGER NOT NULL,
    PRIMARY KEY (host, boot_id, pid, start_key_ns, kind, ts_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS process_events_by_parent ON process_events (host, boot_id, ppid);
CREATE INDEX IF NOT EXISTS process_events_by_time ON process_events (start_wall_ns);
";
