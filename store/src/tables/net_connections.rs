//! `net_connections`: TCP connects (completed or failed) and accepts, UDP
//! connects, and unix socket connects and accepts.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

/// `direction` values.
pub mod direction {
    pub const CONNECT: u8 = 1;
    pub const ACCEPT: u8 = 2;
}

/// `transport` values (as `plumbline.v1.Transport`).
pub mod transport {
    pub const TCP: u8 = 1;
    pub const UDP: u8 = 2;
    pub const UNIX_STREAM: u8 = 3;
    pub const UNIX_DGRAM: u8 = 4;
}

activity_row! {
    pub struct NetConnectionRow {
        pub direction: u8,
        pub transport: u8,
        /// Text form ("10.0.0.1", "::1"); empty for unix sockets.
        pub local_addr: String,
        pub local_port: u32,
        pub remote_addr: String,
        pub remote_port: u32,
        pub unix_path: String,
        pub remote_name: String,
        pub result: i32,
        pub latency_ns: u64,
        pub sock_id: u64,
        pub peer_pid: u32,
        pub inode: u64,
        pub peer_inode: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "net_connections",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("direction", Col::U8),
        ("transport", Col::U8),
        ("local_addr", Col::Text),
        ("local_port", Col::U32),
        ("remote_addr", Col::Text),
        ("remote_port", Col::U32),
        ("unix_path", Col::Text),
        ("remote_name", Col::Text),
        ("result", Col::I32),
        ("latency_ns", Col::U64),
        ("sock_id", Col::U64),
        ("peer_pid", Col::U32),
        ("inode", Col::U64),
        ("peer_inode", Col::U64),
    ],
    key: &["host", "boot_id", "ts_ns", "sock_id", "direction"],
    key_time_first: true,
    indexes: &["wall_ns", "sock_id"],
    added: &[],
};
