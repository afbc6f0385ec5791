//! `loss_markers`: events the pipeline knows it lost, so a timeline can show
//! the gap. Keyed by what was lost and when, so re-delivery keeps one row.

use super::row::table_row;

use crate::dialect::Dialect;

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

pub(crate) fn clickhouse_ddl(d: &Dialect) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS loss_markers (
            host {lc_string},
            boot_id {lc_string},
            kind {lc_string},
            reason UInt8,
            cpu Int32,
            count UInt64,
            from_ns UInt64,
            to_ns UInt64,
            from_wall_ns UInt64,
            to_wall_ns UInt64,
            day Date MATERIALIZED toDate(toDateTime(intDiv(to_wall_ns, 1000000000)))
        ) ENGINE = ReplacingMergeTree
        PARTITION BY day
        ORDER BY (host, boot_id, kind, reason, cpu, from_ns){ttl}",
        lc_string = d.low_cardinality("String"),
        ttl = d.ttl("day"),
    )
}

pub(crate) const SQLITE_DDL: &str = "
CREATE TABLE IF NOT EXISTS loss_markers (
    host TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason INTEGER NOT NULL,
    cpu INTEGER NOT NULL,
    count INTEGER NOT NULL,
    from_ns INTEGER NOT NULL,
    to_ns INTEGER NOT NULL,
    from_wall_ns INTEGER NOT NULL,
    to_wall_ns INTEGER NOT NULL,
    PRIMARY KEY (host, boot_id, kind, reason, cpu, from_ns)
) WITHOUT ROWID;
";
