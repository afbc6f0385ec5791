//! Processes, folded from their lifecycle rows in `process_events`: what a
//! read asks for, what it answers, and its SQL. The two dialects fold
//! differently (ClickHouse picks a column's latest value with argMax, SQLite
//! with a correlated subquery on the primary key) but filter, order and
//! bind alike; the differential test keeps their answers equal.

use crate::filter::TimeRange;
use crate::sql::{Sql, SqlArg, SqlDialect};
use crate::tables::row::table_row;
use crate::tables::ProcessEventKind;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFilter {
    pub host: Option<String>,
    pub boot_id: Option<String>,
    pub pid: Option<u32>,
    pub start_key_ns: Option<u64>,
    /// Processes whose parent is one of these pids (empty: any parent).
    pub ppids: Vec<u32>,
    /// Processes alive at some point of the range.
    pub range: TimeRange,
    /// Substring of comm or executable path (case-sensitive).
    pub name_contains: Option<String>,
    /// Substring of any argument (case-sensitive).
    pub argv_contains: Option<String>,
    pub limit: u32,
}

table_row! {
    /// One process, folded from all its lifecycle rows.
    ///
    /// Field order is the column order of both dialects' SELECT.
    pub struct ProcessRecord {
        pub host: String,
        pub boot_id: String,
        pub pid: u32,
        pub start_key_ns: u64,
        pub ppid: u32,
        pub start_wall_ns: u64,
        pub uid: u32,
        pub comm: String,
        pub exe: String,
        pub argv: Vec<String>,
        pub cgroup_id: u64,
        pub exited: bool,
        pub exit_code: i32,
        pub exit_signal: u32,
        pub exit_wall_ns: u64,
        pub seen_running: bool,
        pub exec_count: u64,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineStats {
    pub process_events: u64,
    pub dead_letters: u64,
    pub lost_events: u64,
    pub hosts: Vec<String>,
}

/// The processes matching `filter`, newest start first.
pub(crate) fn list_sql(d: SqlDialect, filter: &ProcessFilter) -> Sql {
    let mut sql = Sql::default();
    let mut rows_where = vec![match d {
        SqlDialect::ClickHouse => "kind != 'exec_failed'".to_string(),
        SqlDialect::Sqlite => format!("kind != {}", ProcessEventKind::ExecFailed as u8),
    }];
    let mut equal = |column: &str, arg: Option<SqlArg>| {
        if let Some(arg) = arg {
            rows_where.push(format!("{column} = ?"));
            sql.args.push(arg);
        }
    };
    equal("host", filter.host.clone().map(SqlArg::Str));
    equal("boot_id", filter.boot_id.clone().map(SqlArg::Str));
    equal("pid", filter.pid.map(|pid| SqlArg::U64(pid.into())));
    equal("start_key_ns", filter.start_key_ns.map(SqlArg::U64));
    let rows_where = rows_where.join(" AND ");

    // Folded columns are named with a trailing `_` in ClickHouse, so that
    // they never shadow the columns they aggregate.
    let folded = |column: &str| match d {
        SqlDialect::ClickHouse => format!("{column}_"),
        SqlDialect::Sqlite => column.to_string(),
    };
    let mut process_where = Vec::new();
    if !filter.ppids.is_empty() {
        process_where.push(format!("{} IN ({})", folded("ppid"), vec!["?"; filter.ppids.len()].join(", ")));
        sql.args.extend(filter.ppids.iter().map(|&ppid| SqlArg::U64(ppid.into())));
    }
    if let Some(end) = filter.range.end_ns {
        process_where.push(format!("{} <= ?", folded("start_wall_ns")));
        sql.args.push(SqlArg::U64(end));
    }
    if let Some(start) = filter.range.start_ns {
        process_where.push(format!("(NOT {} OR {} >= ?)", folded("exited"), folded("exit_wall_ns")));
        sql.args.push(SqlArg::U64(start));
    }
    if let Some(name) = &filter.name_contains {
        let (comm, exe) = (folded("comm"), folded("exe"));
        process_where.push(format!("({} > 0 OR {} > 0)", d.position(&comm), d.position(&exe)));
        sql.args.extend([SqlArg::Str(name.clone()), SqlArg::Str(name.clone())]);
    }
    if let Some(arg) = &filter.argv_contains {
        process_where.push(match d {
            SqlDialect::ClickHouse => "arrayExists(a -> position(a, ?) > 0, argv_)".to_string(),
            SqlDialect::Sqlite => {
                "EXISTS (SELECT 1 FROM json_each(f.argv) WHERE instr(json_each.value, ?) > 0)".to_string()
            }
        });
        sql.args.push(SqlArg::Str(arg.clone()));
    }
    let process_where = if process_where.is_empty() { "1".to_string() } else { process_where.join(" AND ") };
    let select = match d {
        SqlDialect::ClickHouse => clickhouse_fold(&rows_where, &process_where),
        SqlDialect::Sqlite => sqlite_fold(&rows_where, &process_where),
    };
    sql.text = format!(
        "{select}\nORDER BY {} DESC, host, boot_id, pid, start_key_ns{}",
        folded("start_wall_ns"),
        crate::sql::limit_clause(filter.limit, &mut sql)
    );
    sql
}

fn clickhouse_fold(rows_where: &str, process_where: &str) -> String {
    format!(
        "SELECT host, boot_id, pid, start_key_ns,
            if(countIf(kind != 'exit') > 0, argMinIf(ppid, ts_ns, kind != 'exit'), any(ppid)) AS ppid_,
            min(start_wall_ns) AS start_wall_ns_,
            argMaxIf(uid, ts_ns, kind != 'exit') AS uid_,
            argMax(comm, ts_ns) AS comm_,
            argMaxIf(exe, ts_ns, kind IN ('exec', 'seen')) AS exe_,
            argMaxIf(argv, ts_ns, kind IN ('exec', 'seen')) AS argv_,
            argMax(cgroup_id, ts_ns) AS cgroup_id_,
            countIf(kind = 'exit') > 0 AS exited_,
            anyIf(exit_code, kind = 'exit') AS exit_code_,
            anyIf(exit_signal, kind = 'exit') AS exit_signal_,
            maxIf(wall_ns, kind = 'exit') AS exit_wall_ns_,
            countIf(kind = 'seen') > 0 AS seen_running_,
            uniqExactIf(ts_ns, kind = 'exec') AS exec_count_
        FROM process_events
        WHERE {rows_where}
        GROUP BY host, boot_id, pid, start_key_ns
        HAVING {process_where}"
    )
}

/// Rows of the same process as the outer `p`.
const SAME_PROCESS: &str =
    "e.host = p.host AND e.boot_id = p.boot_id AND e.pid = p.pid AND e.start_key_ns = p.start_key_ns";

fn sqlite_fold(rows_where: &str, process_where: &str) -> String {
    use ProcessEventKind::{Exec, ExecFailed, Exit, Seen};
    let (exec, seen, exit, failed) = (Exec as u8, Seen as u8, Exit as u8, ExecFailed as u8);
    let pick = |column: &str, condition: &str, order: &str| {
        format!("(SELECT {column} FROM process_events e WHERE {SAME_PROCESS} AND {condition} ORDER BY e.ts_ns {order} LIMIT 1)")
    };
    format!(
        "WITH p AS (
            SELECT host, boot_id, pid, start_key_ns,
                min(start_wall_ns) AS start_wall_ns,
                sum(kind = {exit}) > 0 AS exited,
                max(CASE WHEN kind = {exit} THEN wall_ns ELSE 0 END) AS exit_wall_ns,
                sum(kind = {seen}) > 0 AS seen_running,
                count(DISTINCT CASE WHEN kind = {exec} THEN ts_ns END) AS exec_count
            FROM process_events WHERE {rows_where}
            GROUP BY host, boot_id, pid, start_key_ns
        ), f AS (
            SELECT p.*,
                coalesce({ppid_first}, {ppid_exit}, 0) AS ppid,
                coalesce({uid}, 0) AS uid,
                coalesce({comm}, '') AS comm,
                coalesce({exe}, '') AS exe,
                coalesce({argv}, '[]') AS argv,
                coalesce({cgroup_id}, 0) AS cgroup_id,
                coalesce({exit_code}, 0) AS exit_code,
                coalesce({exit_signal}, 0) AS exit_signal
            FROM p
        )
        SELECT host, boot_id, pid, start_key_ns, ppid, start_wall_ns, uid, comm, exe, argv, cgroup_id,
            exited, exit_code, exit_signal, exit_wall_ns, seen_running, exec_count
        FROM f WHERE {process_where}",
        ppid_first = pick("e.ppid", &format!("e.kind NOT IN ({exit}, {failed})"), "ASC"),
        ppid_exit = pick("e.ppid", &format!("e.kind = {exit}"), "ASC"),
        uid = pick("e.uid", &format!("e.kind NOT IN ({exit}, {failed})"), "DESC"),
        comm = pick("e.comm", &format!("e.kind != {failed}"), "DESC"),
        exe = pick("e.exe", &format!("e.kind IN ({exec}, {seen})"), "DESC"),
        argv = pick("e.argv", &format!("e.kind IN ({exec}, {seen})"), "DESC"),
        cgroup_id = pick("e.cgroup_id", &format!("e.kind != {failed}"), "DESC"),
        exit_code = pick("e.exit_code", &format!("e.kind = {exit}"), "ASC"),
        exit_signal = pick("e.exit_signal", &format!("e.kind = {exit}"), "ASC"),
    )
}
