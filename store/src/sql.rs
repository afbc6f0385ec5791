//! The SQL the views send, built once for both backends: text with `?`
//! placeholders and the values bound to them in order, the few spellings
//! that differ between ClickHouse and SQLite behind [`SqlDialect`], and the
//! WHERE clauses every view over process activity shares.

use crate::filter::{ActivityFilter, TimeRange};
use crate::tables::row::SqliteRow;
use crate::tables::TableSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDialect {
    ClickHouse,
    Sqlite,
}

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlArg {
    Str(String),
    U64(u64),
}

/// SQL text with its arguments, in placeholder order.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub args: Vec<SqlArg>,
}

impl SqlDialect {
    /// De-duplicated reads: ClickHouse merges re-delivered rows lazily.
    pub(crate) fn final_(self) -> &'static str {
        match self {
            SqlDialect::ClickHouse => " FINAL",
            SqlDialect::Sqlite => "",
        }
    }

    /// 1-based position of the bound string in `column`, 0 when absent.
    pub(crate) fn position(self, column: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("position({column}, ?)"),
            SqlDialect::Sqlite => format!("instr({column}, ?)"),
        }
    }

    pub(crate) fn u64_zero(self) -> &'static str {
        match self {
            SqlDialect::ClickHouse => "toUInt64(0)",
            SqlDialect::Sqlite => "0",
        }
    }

    pub(crate) fn i64_zero(self) -> &'static str {
        match self {
            SqlDialect::ClickHouse => "toInt64(0)",
            SqlDialect::Sqlite => "0",
        }
    }
}

/// The WHERE clause of an activity table (one with the who-and-when
/// columns, no socket id) for `filter`; `contains` names the columns the
/// substring is looked for in.
pub(crate) fn activity_where(d: SqlDialect, filter: &ActivityFilter, contains: &[&str], sql: &mut Sql) -> String {
    activity_where_on(d, filter, &["pid", "cgroup_id"], "wall_ns", contains, sql)
}

/// The WHERE clause for `filter` on a table with `columns`: filters on
/// columns the table lacks do not apply.
pub(crate) fn activity_where_on(
    d: SqlDialect,
    filter: &ActivityFilter,
    columns: &[&str],
    time: &str,
    contains: &[&str],
    sql: &mut Sql,
) -> String {
    let mut clauses = vec!["1 = 1".to_string()];
    if let Some(host) = &filter.host {
        clauses.push("host = ?".into());
        sql.args.push(SqlArg::Str(host.clone()));
    }
    if let Some(pid) = filter.pid.filter(|_| columns.contains(&"pid")) {
        clauses.push("pid = ?".into());
        sql.args.push(SqlArg::U64(pid.into()));
    }
    range_clauses(&filter.range, time, &mut clauses, sql);
    if let Some(needle) = filter.contains.as_ref().filter(|_| !contains.is_empty()) {
        let any: Vec<String> = contains.iter().map(|c| format!("{} > 0", d.position(c))).collect();
        clauses.push(format!("({})", any.join(" OR ")));
        sql.args.extend(contains.iter().map(|_| SqlArg::Str(needle.clone())));
    }
    if let Some(container) = filter.container.as_ref().filter(|_| columns.contains(&"cgroup_id")) {
        clauses.push(format!(
            "(host, cgroup_id) IN (SELECT host, cgroup_id FROM containers
                WHERE {} = 1 OR pod_name = ? OR pod_uid = ? OR {} > 0)",
            d.position("container_id"),
            d.position("cgroup_path"),
        ));
        sql.args.extend([container, container, container, container].map(|c| SqlArg::Str(c.clone())));
    }
    if !filter.sock_ids.is_empty() && columns.contains(&"sock_id") {
        let marks = vec!["?"; filter.sock_ids.len()].join(", ");
        clauses.push(format!("sock_id IN ({marks})"));
        sql.args.extend(filter.sock_ids.iter().map(|&id| SqlArg::U64(id)));
    }
    clauses.join(" AND ")
}

pub(crate) fn limit(filter: &ActivityFilter, sql: &mut Sql) -> &'static str {
    limit_clause(filter.limit, sql)
}

/// ` LIMIT ?`, with `limit` bound.
pub(crate) fn limit_clause(limit: u32, sql: &mut Sql) -> &'static str {
    sql.args.push(SqlArg::U64(limit.into()));
    " LIMIT ?"
}

/// Clauses keeping `column` within `range`, with their bounds bound.
pub(crate) fn range_clauses(range: &TimeRange, column: &str, clauses: &mut Vec<String>, sql: &mut Sql) {
    if let Some(start) = range.start_ns {
        clauses.push(format!("{column} >= ?"));
        sql.args.push(SqlArg::U64(start));
    }
    if let Some(end) = range.end_ns {
        clauses.push(format!("{column} <= ?"));
        sql.args.push(SqlArg::U64(end));
    }
}

/// Rows of `table` as stored, newest (by `time`) first, with every column of
/// the row type `T`.
pub(crate) fn rows_sql<T: SqliteRow>(
    d: SqlDialect,
    table: &str,
    time: &str,
    contains: &[&str],
    filter: &ActivityFilter,
) -> Sql {
    let mut sql = Sql::default();
    let columns = T::COLUMNS;
    let where_ = activity_where_on(d, filter, columns, time, contains, &mut sql);
    let key: Vec<&str> = ["host", "boot_id", "pid", "sock_id", "cgroup_id", "kind", "cpu", "ts_ns"]
        .into_iter()
        .filter(|c| columns.contains(c))
        .collect();
    sql.text = format!(
        "SELECT {} FROM {table}{} WHERE {where_} ORDER BY {time} DESC, {}{}",
        columns.join(", "),
        d.final_(),
        key.join(", "),
        limit(filter, &mut sql)
    );
    sql
}

/// Rows of an activity table as stored, newest first, then in the order of
/// the table's key, so that rows of the same time come out the same from
/// both backends.
pub(crate) fn rows_by_key_sql<T: SqliteRow>(
    d: SqlDialect,
    table: &TableSpec,
    contains: &[&str],
    filter: &ActivityFilter,
) -> Sql {
    let mut sql = Sql::default();
    let where_ = activity_where(d, filter, contains, &mut sql);
    sql.text = format!(
        "SELECT {} FROM {}{} WHERE {where_} ORDER BY wall_ns DESC, {}{}",
        T::COLUMNS.join(", "),
        table.name,
        d.final_(),
        table.key.join(", "),
        limit(filter, &mut sql)
    );
    sql
}
