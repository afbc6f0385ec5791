//! The GPU views (jobs, stragglers, hangs, mismatches, kernels, a rank's
//! timeline): their filter, their result rows, and their SQL, written once
//! for both backends with the few differences behind [`SqlDialect`].
//!
//! The diagnosis views read `collective_verdicts` (one row per collective,
//! not one per rank), so they stay fast for jobs of thousands of ranks; the
//! kernel view reads launches summed per batch (`kernel_launches`), and the
//! timeline reads the call tables within one job and rank or one process.

use crate::filter::TimeRange;
use crate::sql::{limit_clause, range_clauses, Sql, SqlArg, SqlDialect};
use crate::tables::row::{table_row, SqliteRow};
use crate::tables::CollectiveVerdictRow;

/// What a GPU view asks for. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuFilter {
    pub job: Option<String>,
    pub host: Option<String>,
    pub rank: Option<u32>,
    pub pid: Option<u32>,
    pub range: TimeRange,
    pub limit: u32,
}

table_row! {
    /// A training job as the collective join saw it.
    pub struct GpuJobRow {
        pub job: String,
        /// The largest communicator's size.
        pub ranks: u64,
        /// The most hosts one collective spanned.
        pub hosts: u64,
        pub communicators: u64,
        pub collectives: u64,
        pub stragglers: u64,
        pub hangs: u64,
        pub mismatches: u64,
        pub first_wall_ns: u64,
        pub last_wall_ns: u64,
    }
}

table_row! {
    /// A rank that arrived last (and late enough to count) at collectives.
    pub struct GpuStragglerRow {
        pub job: String,
        pub rank: i32,
        pub host: String,
        pub device: i32,
        pub times_last: u64,
        /// Collectives judged for the job in the range.
        pub collectives: u64,
        pub mean_late_ns: u64,
        pub max_late_ns: u64,
        pub last_seq: u64,
        pub last_wall_ns: u64,
        /// At the latest such collective: its rank there and the role.
        pub comm_rank: i32,
        pub role: String,
    }
}

table_row! {
    /// Launches of one kernel by one rank.
    pub struct GpuKernelRow {
        pub job: String,
        pub rank: i32,
        pub host: String,
        pub kernel: String,
        pub launches: u64,
        pub total_ns: u64,
        pub failed: u64,
        /// Of the latest launch, "x,y,z".
        pub grid: String,
        pub block: String,
    }
}

table_row! {
    /// One CUDA or NCCL call on a rank's timeline.
    pub struct GpuCallRow {
        pub wall_ns: u64,
        pub duration_ns: u64,
        pub host: String,
        pub pid: u32,
        pub rank: i32,
        pub device: i32,
        /// "nccl" or "cuda".
        pub library: String,
        /// The op or API name.
        pub call: String,
        pub kernel: String,
        pub communicator: u64,
        pub seq: u64,
        pub count: u64,
        pub datatype: i32,
        pub bytes: u64,
        pub result: i32,
        pub stream: u64,
        pub nranks: i32,
        pub peer: i32,
        pub grid: String,
        pub block: String,
        pub memcpy_kind: i32,
        pub job: String,
    }
}

impl SqlDialect {
    pub(crate) fn to_u64(self, expr: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("toUInt64({expr})"),
            SqlDialect::Sqlite => expr.to_string(),
        }
    }

    fn to_i32(self, expr: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("toInt32({expr})"),
            SqlDialect::Sqlite => expr.to_string(),
        }
    }

    /// "x,y,z" of three integer columns.
    fn triple(self, x: &str, y: &str, z: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("concat(toString({x}), ',', toString({y}), ',', toString({z}))"),
            SqlDialect::Sqlite => format!("({x} || ',' || {y} || ',' || {z})"),
        }
    }

    /// `value` of the row with the largest `by` in the group. SQLite takes
    /// bare columns from the row that holds the group's single `max()`.
    fn latest(self, value: &str, by: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("argMax({value}, {by})"),
            SqlDialect::Sqlite => value.to_string(),
        }
    }
}

/// The WHERE clause of a GPU table for `filter`: filters on columns the
/// table lacks do not apply.
fn gpu_where(filter: &GpuFilter, columns: &[&str], sql: &mut Sql) -> String {
    let mut clauses = vec!["1 = 1".to_string()];
    if let Some(job) = &filter.job {
        clauses.push("job = ?".into());
        sql.args.push(SqlArg::Str(job.clone()));
    }
    if let Some(host) = filter.host.as_ref().filter(|_| columns.contains(&"pid")) {
        clauses.push("host = ?".into());
        sql.args.push(SqlArg::Str(host.clone()));
    }
    if let Some(rank) = filter.rank.filter(|_| columns.contains(&"pid")) {
        clauses.push("rank = ?".into());
        sql.args.push(SqlArg::U64(rank.into()));
    }
    if let Some(pid) = filter.pid.filter(|_| columns.contains(&"pid")) {
        clauses.push("pid = ?".into());
        sql.args.push(SqlArg::U64(pid.into()));
    }
    range_clauses(&filter.range, "wall_ns", &mut clauses, sql);
    clauses.join(" AND ")
}

fn limit(filter: &GpuFilter, sql: &mut Sql) -> &'static str {
    limit_clause(filter.limit, sql)
}

/// `sum(CASE WHEN verdict = 'v' THEN 1 ELSE 0 END)`, as a u64.
fn count_verdict(d: SqlDialect, verdict: &str) -> String {
    d.to_u64(&format!("sum(CASE WHEN verdict = '{verdict}' THEN 1 ELSE 0 END)"))
}

/// Jobs, latest activity first.
pub fn gpu_jobs_sql(d: SqlDialect, filter: &GpuFilter) -> Sql {
    let mut sql = Sql::default();
    let where_ = gpu_where(filter, CollectiveVerdictRow::COLUMNS, &mut sql);
    // Aliases differ from the columns they aggregate: ClickHouse would read
    // the alias inside its own aggregate, and in the WHERE clause.
    sql.text = format!(
        "SELECT job, j_ranks AS ranks, j_hosts AS hosts, j_comms AS communicators, j_all AS collectives,
            j_stragglers AS stragglers, j_hangs AS hangs, j_mismatches AS mismatches,
            j_first AS first_wall_ns, j_last AS last_wall_ns
        FROM (
            SELECT job, {ranks} AS j_ranks, {hosts} AS j_hosts, {comms} AS j_comms, {all} AS j_all,
                {stragglers} AS j_stragglers, {hangs} AS j_hangs, {mismatches} AS j_mismatches,
                min(wall_ns) AS j_first, max(wall_ns) AS j_last
            FROM collective_verdicts{final_} WHERE {where_}
            GROUP BY job
        )
        ORDER BY last_wall_ns DESC, job{limit}",
        ranks = d.to_u64("max(nranks)"),
        hosts = d.to_u64("max(hosts)"),
        comms = d.to_u64("count(DISTINCT communicator)"),
        all = d.to_u64("count(*)"),
        stragglers = count_verdict(d, "straggler"),
        hangs = count_verdict(d, "hang"),
        mismatches = count_verdict(d, "mismatch"),
        final_ = d.final_(),
        limit = limit(filter, &mut sql),
    );
    sql
}

/// Ranks by how often they were the straggler on their own account (a
/// consequence, late because it waited for another rank, is left out),
/// then by how late on average. `collectives` is left 0: the job totals
/// come from [`gpu_jobs_sql`] (ClickHouse 18.16 joins only with a
/// strictness keyword SQLite lacks).
pub fn gpu_stragglers_sql(d: SqlDialect, filter: &GpuFilter) -> Sql {
    let mut sql = Sql::default();
    let where_ = gpu_where(filter, CollectiveVerdictRow::COLUMNS, &mut sql);
    sql.text = format!(
        "SELECT job, rank, s_host AS host, s_device AS device, times_last, collectives, mean_late_ns, max_late_ns,
            last_seq, s_last AS last_wall_ns, s_comm_rank AS comm_rank, s_role AS role
        FROM (
            SELECT job, rank, {host} AS s_host, {device} AS s_device, {times} AS times_last, {zero} AS collectives,
                {mean} AS mean_late_ns, {max_late} AS max_late_ns, {last_seq} AS last_seq,
                max(wall_ns) AS s_last, {comm_rank} AS s_comm_rank, {role} AS s_role
            FROM collective_verdicts{final_} WHERE {where_} AND verdict = 'straggler' AND cause_rank < 0
            GROUP BY job, rank
        )
        ORDER BY times_last DESC, mean_late_ns DESC, job, rank{limit}",
        host = d.latest("host", "wall_ns"),
        device = d.to_i32(&d.latest("device", "wall_ns")),
        comm_rank = d.to_i32(&d.latest("comm_rank", "wall_ns")),
        role = d.latest("role", "wall_ns"),
        times = d.to_u64("count(*)"),
        zero = d.u64_zero(),
        mean = d.to_u64("sum(late_ns) / count(*)"),
        max_late = d.to_u64("max(late_ns)"),
        last_seq = d.to_u64("max(seq)"),
        final_ = d.final_(),
        limit = limit(filter, &mut sql),
    );
    sql
}

/// Verdict rows of one kind (`hang`, `mismatch` ...), in communicator and
/// sequence order.
pub fn gpu_verdicts_sql(d: SqlDialect, filter: &GpuFilter, verdict: &str) -> Sql {
    let mut sql = Sql::default();
    let where_ = gpu_where(filter, CollectiveVerdictRow::COLUMNS, &mut sql);
    sql.args.push(SqlArg::Str(verdict.to_string()));
    sql.text = format!(
        "SELECT {} FROM collective_verdicts{} WHERE {where_} AND verdict = ? ORDER BY job, communicator, seq{}",
        CollectiveVerdictRow::COLUMNS.join(", "),
        d.final_(),
        limit(filter, &mut sql),
    );
    sql
}

/// Kernels per rank by launches, from the launches summed per batch
/// (`kernel_launches`).
pub fn gpu_kernels_sql(d: SqlDialect, filter: &GpuFilter) -> Sql {
    let mut sql = Sql::default();
    let where_ = gpu_where(filter, crate::tables::KernelLaunchesRow::COLUMNS, &mut sql);
    let latest_ts = match d {
        SqlDialect::ClickHouse => "",
        // The one max() whose row the bare host, grid and block come from.
        SqlDialect::Sqlite => ", max(last_ts_ns) AS latest_ts",
    };
    // Aliases differ from the columns they aggregate: ClickHouse would
    // otherwise read the alias inside its own aggregate.
    sql.text = format!(
        "SELECT job, rank, k_host AS host, kernel, k_launches AS launches, k_total AS total_ns, k_failed AS failed,
            grid, block FROM (
            SELECT job, rank, {host} AS k_host, kernel, {launches} AS k_launches, {total} AS k_total,
                {failed} AS k_failed, {grid} AS grid, {block} AS block{latest_ts}
            FROM kernel_launches{final_} WHERE {where_}
            GROUP BY job, rank, kernel
        )
        ORDER BY launches DESC, total_ns DESC, job, rank, kernel{limit}",
        host = d.latest("host", "last_ts_ns"),
        launches = d.to_u64("sum(launches)"),
        total = d.to_u64("sum(total_ns)"),
        failed = d.to_u64("sum(failed)"),
        grid = d.latest(&d.triple("grid_x", "grid_y", "grid_z"), "last_ts_ns"),
        block = d.latest(&d.triple("block_x", "block_y", "block_z"), "last_ts_ns"),
        final_ = d.final_(),
        limit = limit(filter, &mut sql),
    );
    sql
}

/// A rank's (or a process's) NCCL and CUDA calls, oldest first.
pub fn gpu_timeline_sql(d: SqlDialect, filter: &GpuFilter) -> Sql {
    let mut sql = Sql::default();
    let nccl_where = gpu_where(filter, crate::tables::NcclCallRow::COLUMNS, &mut sql);
    let cuda_where = gpu_where(filter, crate::tables::CudaCallRow::COLUMNS, &mut sql);
    let (empty, zero_u64, zero_i32) = match d {
        SqlDialect::ClickHouse => ("''", "toUInt64(0)", "toInt32(0)"),
        SqlDialect::Sqlite => ("''", "0", "0"),
    };
    let u64_zero = d.u64_zero();
    sql.text = format!(
        "SELECT {columns} FROM (
            SELECT wall_ns, duration_ns, host, pid, rank, device, 'nccl' AS library, op AS call, {empty} AS kernel,
                communicator, seq, count, datatype, {zero_u64} AS bytes, result, stream, nranks, peer,
                {empty} AS grid, {empty} AS block, {zero_i32} AS memcpy_kind, job, ts_ns
            FROM nccl_calls{final_} WHERE {nccl_where}
            UNION ALL
            SELECT wall_ns, duration_ns, host, pid, rank, device, 'cuda' AS library, api AS call, kernel,
                {u64_zero} AS communicator, {u64_zero} AS seq, {u64_zero} AS count, {zero_i32} AS datatype, bytes,
                result, stream, {zero_i32} AS nranks, {zero_i32} AS peer, {grid} AS grid, {block} AS block,
                memcpy_kind, job, ts_ns
            FROM cuda_calls{final_} WHERE {cuda_where}
        )
        ORDER BY wall_ns, host, pid, ts_ns, library, call{limit}",
        columns = GpuCallRow::COLUMNS.join(", "),
        grid = d.triple("grid_x", "grid_y", "grid_z"),
        block = d.triple("block_x", "block_y", "block_z"),
        final_ = d.final_(),
        limit = limit(filter, &mut sql),
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_follow_placeholders_in_order_in_both_dialects() {
        let filter = GpuFilter {
            job: Some("j".into()),
            host: Some("h".into()),
            rank: Some(3),
            pid: Some(9),
            range: TimeRange { start_ns: Some(10), end_ns: Some(20) },
            limit: 5,
        };
        for d in [SqlDialect::ClickHouse, SqlDialect::Sqlite] {
            for sql in [
                gpu_jobs_sql(d, &filter),
                gpu_stragglers_sql(d, &filter),
                gpu_verdicts_sql(d, &filter, "hang"),
                gpu_kernels_sql(d, &filter),
                gpu_timeline_sql(d, &filter),
            ] {
                assert_eq!(sql.text.matches('?').count(), sql.args.len(), "{}", sql.text);
                assert_eq!(sql.args.first(), Some(&SqlArg::Str("j".into())));
                assert_eq!(sql.args.last(), Some(&SqlArg::U64(5)));
            }
        }
    }
}
