//! The quarantine view: the quarantines findings sent (newest first) and
//! every node's acknowledgement of them, written once for both backends.

use crate::filter::ActivityFilter;
use crate::sql::{rows_sql, Sql, SqlArg, SqlDialect};
use crate::tables::row::SqliteRow;
use crate::tables::{QuarantineAckRow, QuarantineUpdateRow};

/// Updates within the filter's range, newest first; the filter's host is the
/// node the session runs on, `contains` matches the session, agent or
/// finding kind.
pub fn quarantine_updates_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    rows_sql::<QuarantineUpdateRow>(d, "quarantine_updates", "wall_ns", &["session", "agent", "finding_kind"], filter)
}

/// The acknowledgements of the updates `ids`, from every node, oldest first.
pub fn quarantine_acks_sql(d: SqlDialect, ids: &[String]) -> Sql {
    let mut sql = Sql::default();
    let marks = vec!["?"; ids.len().max(1)].join(", ");
    if ids.is_empty() {
        sql.args.push(SqlArg::Str(String::new()));
    }
    sql.args.extend(ids.iter().map(|id| SqlArg::Str(id.clone())));
    sql.text = format!(
        "SELECT {} FROM quarantine_acks{} WHERE id IN ({marks}) ORDER BY wall_ns, host, boot_id",
        QuarantineAckRow::COLUMNS.join(", "),
        d.final_(),
    );
    sql
}
