//! `loss_markers`: events the pipeline knows it lost, so a timeline can show
//! the gap. Keyed by what was lost and when, so re-delivery keeps one row.

use super::row::table_row;
use super::spec::{Col, TableSpec};

table_row! {
    pub struct LossMarkerRow {
        pub host: String,
        pub boot_id: String,
        /// Event kind lost, e.g. `proc_exec`.
        pub kind: String,
        /// `LossMarker.Reason` value.
        pub reason: u8,
        pub cpu: i32,
        pub count: u64,
        pub from_ns: u64,
        pub to_ns: u64,
        pub from_wall_ns: u64,
        pub to_wall_ns: u64,
    }
}

pub const SPEC: TableSpec = TableSpec {
    name: "loss_markers",
    activity: false,
    day_of: Some("to_wall_ns"),
    columns: &[
        ("host", Col::Label),
        ("boot_id", Col::Label),
        ("kind", Col::Label),
        ("reason", Col::U8),
        ("cpu", Col::I32),
        ("count", Col::U64),
        ("from_ns", Col::U64),
        ("to_ns", Col::U64),
        ("from_wall_ns", Col::U64),
        ("to_wall_ns", Col::U64),
    ],
    key: &["host", "boot_id", "kind", "reason", "cpu", "from_ns"],
    key_time_first: true,
    indexes: &[],
    added: &[],
};
