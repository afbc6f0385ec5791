//! `net_flows`: a TCP connection at its close, with the kernel's byte counts.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

activity_row! {
    pub struct NetFlowRow {
        pub direction: u8,
        pub local_addr: String,
        pub local_port: u32,
        pub remote_addr: String,
        pub remote_port: u32,
        pub remote_name: String,
        pub bytes_sent: u64,
        pub bytes_received: u64,
        /// 0 when the agent did not see the connection established.
        pub established_wall_ns: u64,
        pub duration_ns: u64,
        pub sock_id: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "net_flows",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("direction", Col::U8),
        ("local_addr", Col::Text),
        ("local_port", Col::U32),
        ("remote_addr", Col::Text),
        ("remote_port", Col::U32),
        ("remote_name", Col::Text),
        ("bytes_sent", Col::U64),
        ("bytes_received", Col::U64),
        ("established_wall_ns", Col::U64),
        ("duration_ns", Col::U64),
        ("sock_id", Col::U64),
    ],
    key: &["host", "boot_id", "sock_id", "ts_ns"],
    key_time_first: true,
    indexes: &["wall_ns", "sock_id"],
    added: &[],
};
