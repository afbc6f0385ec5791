//! Every table: its row type and its DDL for ClickHouse and for SQLite, side
//! by side, and the ordered list of schema migrations both backends apply.

mod dead_letters;
mod loss_markers;
mod process_events;

pub use dead_letters::DeadLetterRow;
pub use loss_markers::LossMarkerRow;
pub use process_events::{ProcessEventKind, ProcessEventRow};

use crate::clickhouse::Dialect;

/// One schema change, for both backends. Applied in `id` order, once each,
/// recorded in `schema_migrations`; every statement is idempotent
/// (`IF NOT EXISTS`), so two aggregators starting at once cannot break it.
pub struct Migration {
    pub id: u32,
    pub name: &'static str,
    /// ClickHouse statements, rendered for the server's capabilities.
    pub clickhouse: fn(&Dialect) -> Vec<String>,
    pub sqlite: &'static [&'static str],
}

pub const MIGRATIONS: &[Migration] = &[Migration {
    id: 1,
    name: "process_events, loss_markers, dead_letters",
    clickhouse: |d| {
        vec![
            process_events::clickhouse_ddl(d),
            loss_markers::clickhouse_ddl(d),
            dead_letters::clickhouse_ddl(d),
        ]
    },
    sqlite: &[
        process_events::SQLITE_DDL,
        loss_markers::SQLITE_DDL,
        dead_letters::SQLITE_DDL,
    ],
}];
