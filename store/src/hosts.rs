//! Host health: when the store last heard from each host, how many events
//! it stored from it per minute and how many the kernel lost, per kind.
//! There is no table of batches: a host's last batch is the newest row
//! stored from it, on the host's own clock. Written once for both backends.

use crate::filter::ActivityFilter;
use crate::sql::{limit, range_clauses, Sql, SqlArg, SqlDialect};
use crate::tables::row::table_row;

const MINUTE_NS: u64 = 60_000_000_000;

/// The tables whose rows say a host's agent is sending, with their time
/// column: what it ran, opened, connected to and asked its LLMs.
const EVENT_TABLES: &[&str] = &["process_events", "file_events", "net_connections", "dns_queries", "llm_calls"];

table_row! {
    /// One host: its newest row, and its events and losses in the range.
    pub struct HostRow {
        pub host: String,
        /// Wall-clock ns of its newest row (any time up to the range's end).
        pub last_seen_wall_ns: u64,
        pub events: u64,
        pub lost: u64,
    }
}

table_row! {
    /// Events stored from one host in one minute.
    pub struct HostMinuteRow {
        pub host: String,
        /// Start of the minute, wall-clock ns.
        pub minute_wall_ns: u64,
        pub events: u64,
    }
}

table_row! {
    /// Kernel events of one kind one host lost in one minute.
    pub struct LossMinuteRow {
        pub host: String,
        pub kind: String,
        /// Start of the minute, wall-clock ns.
        pub minute_wall_ns: u64,
        pub lost: u64,
    }
}

impl SqlDialect {
    /// Start of the minute of a wall-clock ns column (integer division:
    /// ClickHouse 18.16 lacks `toStartOfInterval`).
    fn minute(self, column: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("intDiv({column}, {MINUTE_NS}) * {MINUTE_NS}"),
            SqlDialect::Sqlite => format!("({column} / {MINUTE_NS}) * {MINUTE_NS}"),
        }
    }

    /// `expr` as an unsigned 64-bit value: ClickHouse's UNION ALL wants the
    /// same type on every side.
    fn u64_of(self, expr: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("toUInt64({expr})"),
            SqlDialect::Sqlite => expr.to_string(),
        }
    }
}

/// `host = ?` when the filter names one, with its value bound.
fn host_clause(filter: &ActivityFilter, clauses: &mut Vec<String>, sql: &mut Sql) {
    if let Some(host) = &filter.host {
        clauses.push("host = ?".into());
        sql.args.push(SqlArg::Str(host.clone()));
    }
}

/// Every host heard from up to the range's end, stalest first: its newest
/// row (the start of the range does not cut it off: a host silent for the
/// whole range is the one to show), its events and losses in the range.
pub fn hosts_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    let mut sql = Sql::default();
    let start = filter.range.start_ns.unwrap_or(0);
    let mut parts = Vec::new();
    for table in EVENT_TABLES {
        let mut clauses = vec!["1 = 1".to_string()];
        // The range's start is bound into the count, before the WHERE's values.
        sql.args.push(SqlArg::U64(start));
        host_clause(filter, &mut clauses, &mut sql);
        range_clauses(&crate::TimeRange { start_ns: None, ..filter.range }, "wall_ns", &mut clauses, &mut sql);
        parts.push(format!(
            "SELECT host, {last} AS last_wall, {events} AS n_events, {zero} AS n_lost
            FROM {table}{final_} WHERE {where_} GROUP BY host",
            last = d.u64_of("max(wall_ns)"),
            events = d.u64_of("sum(CASE WHEN wall_ns >= ? THEN 1 ELSE 0 END)"),
            zero = d.u64_zero(),
            final_ = d.final_(),
            where_ = clauses.join(" AND "),
        ));
    }
    let mut clauses = vec!["1 = 1".to_string()];
    sql.args.push(SqlArg::U64(start));
    host_clause(filter, &mut clauses, &mut sql);
    range_clauses(&crate::TimeRange { start_ns: None, ..filter.range }, "to_wall_ns", &mut clauses, &mut sql);
    parts.push(format!(
        "SELECT host, {last} AS last_wall, {zero} AS n_events, {lost} AS n_lost
        FROM loss_markers{final_} WHERE {where_} GROUP BY host",
        last = d.u64_of("max(to_wall_ns)"),
        lost = d.u64_of("sum(CASE WHEN to_wall_ns >= ? THEN count ELSE 0 END)"),
        zero = d.u64_zero(),
        final_ = d.final_(),
        where_ = clauses.join(" AND "),
    ));
    sql.text = format!(
        "SELECT host, max(last_wall) AS last_seen_wall_ns, sum(n_events) AS events, sum(n_lost) AS lost
        FROM ({})
        GROUP BY host
        ORDER BY last_seen_wall_ns, host{}",
        parts.join("\n            UNION ALL\n            "),
        limit(filter, &mut sql),
    );
    sql
}

/// Events stored per host and minute within the range, newest minute first
/// (a limit keeps the newest).
pub fn events_per_minute_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    let mut sql = Sql::default();
    let mut parts = Vec::new();
    for table in EVENT_TABLES {
        let mut clauses = vec!["1 = 1".to_string()];
        host_clause(filter, &mut clauses, &mut sql);
        range_clauses(&filter.range, "wall_ns", &mut clauses, &mut sql);
        parts.push(format!(
            "SELECT host, {minute} AS minute, {n} AS n FROM {table}{final_} WHERE {where_} GROUP BY host, minute",
            minute = d.minute("wall_ns"),
            n = d.u64_of("count(*)"),
            final_ = d.final_(),
            where_ = clauses.join(" AND "),
        ));
    }
    sql.text = format!(
        "SELECT host, minute AS minute_wall_ns, sum(n) AS events
        FROM ({})
        GROUP BY host, minute
        ORDER BY minute_wall_ns DESC, host{}",
        parts.join("\n            UNION ALL\n            "),
        limit(filter, &mut sql),
    );
    sql
}

/// Kernel events lost per host, kind and minute (of the loss's start)
/// within the range, newest minute first.
pub fn losses_per_minute_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    let mut sql = Sql::default();
    let mut clauses = vec!["1 = 1".to_string()];
    host_clause(filter, &mut clauses, &mut sql);
    range_clauses(&filter.range, "from_wall_ns", &mut clauses, &mut sql);
    sql.text = format!(
        "SELECT host, kind, minute AS minute_wall_ns, {lost} AS lost
        FROM (SELECT host, kind, {minute} AS minute, count FROM loss_markers{final_} WHERE {where_})
        GROUP BY host, kind, minute
        ORDER BY minute_wall_ns DESC, host, kind{limit}",
        lost = d.u64_of("sum(count)"),
        minute = d.minute("from_wall_ns"),
        final_ = d.final_(),
        where_ = clauses.join(" AND "),
        limit = limit(filter, &mut sql),
    );
    sql
}

/// What [`crate::StoreRead::host_health`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostHealthRows {
    /// Stalest first.
    pub hosts: Vec<HostRow>,
    /// Newest minute first.
    pub events_per_minute: Vec<HostMinuteRow>,
    pub losses_per_minute: Vec<LossMinuteRow>,
}
