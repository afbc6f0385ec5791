//! `dns_queries`: a name a process looked up and what it was told.

use super::row::activity_row;
use super::spec::{Col, TableSpec};

activity_row! {
    pub struct DnsQueryRow {
        pub name: String,
        pub qtype: u16,
        pub rcode: u16,
        /// Addresses answered, comma-separated.
        pub answers: String,
        pub server: String,
        pub latency_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "dns_queries",
    activity: true,
    day_of: Some("wall_ns"),
    columns: &[
        ("name", Col::Text),
        ("qtype", Col::U16),
        ("rcode", Col::U16),
        ("answers", Col::Text),
        ("server", Col::Text),
        ("latency_ns", Col::U64),
    ],
    key: &["host", "boot_id", "ts_ns", "pid", "name", "qtype"],
    key_time_first: true,
    indexes: &["wall_ns"],
    added: &[],
};
