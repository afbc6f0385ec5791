//! The policy view: the workload policy each node last said it has in force
//! (its latest `policy_status` row), written once for both backends.

use crate::filter::ActivityFilter;
use crate::sql::{activity_where_on, limit, Sql, SqlDialect};
use crate::tables::row::SqliteRow;
use crate::tables::PolicyStatusRow;

/// Each host's latest status within the filter's range, by host; only the
/// host and range of the filter apply.
pub fn policy_status_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    let mut sql = Sql::default();
    let where_ = activity_where_on(d, filter, &["host"], "wall_ns", &[], &mut sql);
    sql.text = format!(
        "SELECT {} FROM policy_status{} WHERE (host, wall_ns) IN (
            SELECT host, max(wall_ns) FROM policy_status WHERE {where_} GROUP BY host
        ) ORDER BY host, boot_id{}",
        PolicyStatusRow::COLUMNS.join(", "),
        d.final_(),
        limit(filter, &mut sql)
    );
    sql
}
