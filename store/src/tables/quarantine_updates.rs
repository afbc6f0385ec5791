//! `quarantine_updates`: each quarantine the aggregator sent on the control
//! topic because a configured finding cut a session off. One row per update;
//! the nodes' answers are in `quarantine_acks`.

use super::row::table_row;
use super::spec::{Col, TableSpec};

table_row! {
    pub struct QuarantineUpdateRow {
        /// Unique per update.
        pub id: String,
        pub session: String,
        pub agent: String,
        /// The node the session's processes run on.
        pub host: String,
        pub boot_id: String,
        /// The session's processes the aggregator knew alive (decimal).
        pub pids: Vec<String>,
        pub finding_kind: String,
        pub severity: String,
        pub finding_subject: String,
        pub finding_summary: String,
        pub found_wall_ns: u64,
        /// When the aggregator sent it.
        pub wall_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "quarantine_updates",
    activity: false,
    day_of: Some("wall_ns"),
    columns: &[
        ("id", Col::Text),
        ("session", Col::Text),
        ("agent", Col::Label),
        ("host", Col::Label),
        ("boot_id", Col::Label),
        ("pids", Col::Strings),
        ("finding_kind", Col::Label),
        ("severity", Col::Label),
        ("finding_subject", Col::Text),
        ("finding_summary", Col::Text),
        ("found_wall_ns", Col::U64),
        ("wall_ns", Col::U64),
    ],
    key: &["id"],
    key_time_first: false,
    indexes: &["wall_ns", "session"],
    added: &[],
};
