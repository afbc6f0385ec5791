//! `ipc_events`: a process's use of a pipe or unix socket over a window
//! (bytes, calls, time blocked), or its creating or attaching shared memory.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

/// `kind` values (as `IpcEvent.Kind`).
pub mod ipc_kind {
    pub const PIPE: u8 = 1;
    pub const UNIX_SOCKET: u8 = 2;
    pub const POSIX_SHM: u8 = 3;
    pub const SYSV_SHM: u8 = 4;
}

/// `op` values (as `IpcEvent.Op`).
pub mod ipc_op {
    pub const IO: u8 = 1;
    pub const SHM_CREATE: u8 = 2;
    pub const SHM_ATTACH: u8 = 3;
}

activity_row! {
    pub struct IpcEventRow {
        pub kind: u8,
        pub op: u8,
        pub object_id: u64,
        pub name: String,
        pub peer_pid: u32,
        pub peer_object_id: u64,
        pub bytes_written: u64,
        pub bytes_read: u64,
        pub write_blocked_ns: u64,
        pub read_blocked_ns: u64,
        pub writes: u64,
        pub reads: u64,
        pub window_start_wall_ns: u64,
        pub result: i64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "ipc_events",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("kind", Col::U8),
        ("op", Col::U8),
        ("object_id", Col::U64),
        ("name", Col::Text),
        ("peer_pid", Col::U32),
        ("peer_object_id", Col::U64),
        ("bytes_written", Col::U64),
        ("bytes_read", Col::U64),
        ("write_blocked_ns", Col::U64),
        ("read_blocked_ns", Col::U64),
        ("writes", Col::U64),
        ("reads", Col::U64),
        ("window_start_wall_ns", Col::U64),
        ("result", Col::I64),
    ],
    key: &["host", "boot_id", "pid", "kind", "object_id", "op", "ts_ns"],
    key_time_first: true,
    indexes: &["wall_ns", "object_id"],
    added: &[],
};
