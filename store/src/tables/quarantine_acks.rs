//! `quarantine_acks`: each node's answer to a quarantine update — applied
//! (its processes enrolled in the `quarantine` role) or not, and why — with
//! when it received and applied it. Travels the road like any event, from
//! the node that answered.

use super::row::table_row;
use super::spec::{Col, TableSpec};

table_row! {
    pub struct QuarantineAckRow {
        /// The update's id.
        pub id: String,
        /// The node that answered, and its boot.
        pub host: String,
        pub boot_id: String,
        pub session: String,
        /// 1: the processes are enrolled and the role is in the kernel.
        pub applied: u8,
        /// Why not; what was done when applied.
        pub reason: String,
        /// The processes enrolled (decimal).
        pub pids: Vec<String>,
        pub role: String,
        pub finding_kind: String,
        pub severity: String,
        pub issued_wall_ns: u64,
        pub received_wall_ns: u64,
        /// When the node applied (or refused) it.
        pub wall_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "quarantine_acks",
    activity: false,
    day_of: Some("wall_ns"),
    columns: &[
        ("id", Col::Text),
        ("host", Col::Label),
        ("boot_id", Col::Label),
        ("session", Col::Text),
        ("applied", Col::U8),
        ("reason", Col::Text),
        ("pids", Col::Strings),
        ("role", Col::Label),
        ("finding_kind", Col::Label),
        ("severity", Col::Label),
        ("issued_wall_ns", Col::U64),
        ("received_wall_ns", Col::U64),
        ("wall_ns", Col::U64),
    ],
    key: &["id", "host", "boot_id"],
    key_time_first: false,
    indexes: &["wall_ns"],
    added: &[],
};
