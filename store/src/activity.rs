//! The activity views (files, connections, DNS, IPC, containers, losses):
//! their result rows and their SQL, written once for both backends.

use crate::filter::{ActivityFilter, TimeRange};
use crate::sql::{activity_where, limit, rows_sql, Sql, SqlDialect};
use crate::tables::row::table_row;
use crate::tables::{ContainerRow, DnsQueryRow, EnforcementDecisionRow, LossMarkerRow, NetConnectionRow, NetFlowRow};

table_row! {
    /// Files touched by one process: opens, failures, unlinks, renames and
    /// bytes written, from `file_events` and `file_writes` together.
    pub struct FileActivityRow {
        pub host: String,
        pub boot_id: String,
        pub pid: u32,
        pub comm: String,
        pub path: String,
        pub opens: u64,
        pub failed_opens: u64,
        /// errno of a failed open (the largest when they differ).
        pub failed_errno: i64,
        pub unlinks: u64,
        pub renamed_to: String,
        pub bytes_written: u64,
        pub first_wall_ns: u64,
        pub last_wall_ns: u64,
        pub cgroup_id: u64,
    }
}

pub fn file_activity_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    let mut sql = Sql::default();
    let events_where = activity_where(d, filter, &["path", "target"], &mut sql);
    let writes_where = activity_where(d, filter, &["path"], &mut sql);
    let (u0, i0) = (d.u64_zero(), d.i64_zero());
    sql.text = format!(
        "SELECT host, boot_id, pid, max(comm) AS comm, path,
            sum(opens) AS opens, sum(failed) AS failed_opens, max(errno) AS failed_errno,
            sum(unlinks) AS unlinks, max(renamed_to) AS renamed_to, sum(written) AS bytes_written,
            min(first_wall) AS first_wall_ns, max(last_wall) AS last_wall_ns, max(cgroup_id) AS cgroup_id
        FROM (
            SELECT host, boot_id, pid, comm, path,
                CASE WHEN op = 1 AND result >= 0 THEN count ELSE {u0} END AS opens,
                CASE WHEN op = 1 AND result < 0 THEN count ELSE {u0} END AS failed,
                CASE WHEN op = 1 AND result < 0 THEN -result ELSE {i0} END AS errno,
                CASE WHEN op = 2 AND result = 0 THEN count ELSE {u0} END AS unlinks,
                CASE WHEN op = 3 AND result = 0 THEN target ELSE '' END AS renamed_to,
                {u0} AS written, wall_ns AS first_wall,
                CASE WHEN last_wall_ns > wall_ns THEN last_wall_ns ELSE wall_ns END AS last_wall, cgroup_id
            FROM file_events{final_} WHERE {events_where}
            UNION ALL
            SELECT host, boot_id, pid, comm, path, {u0}, {u0}, {i0}, {u0}, '', bytes,
                window_start_wall_ns, wall_ns, cgroup_id
            FROM file_writes{final_} WHERE {writes_where}
        )
        GROUP BY host, boot_id, pid, path
        ORDER BY last_wall_ns DESC, host, boot_id, pid, path{limit}",
        final_ = d.final_(),
        limit = limit(filter, &mut sql),
    );
    sql
}

/// Connects and accepts; `contains` looks at the remote address, its DNS
/// name and unix socket paths.
pub fn connections_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    rows_sql::<NetConnectionRow>(d, "net_connections", "wall_ns", &["remote_addr", "remote_name", "unix_path"], filter)
}

/// TCP connections at close (`filter.sock_ids`: those of listed connections).
pub fn flows_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    rows_sql::<NetFlowRow>(d, "net_flows", "wall_ns", &["remote_addr", "remote_name"], filter)
}

pub fn dns_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    rows_sql::<DnsQueryRow>(d, "dns_queries", "wall_ns", &["name"], filter)
}

pub fn containers_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    // When a container was described says nothing about when it ran.
    let filter = ActivityFilter { range: TimeRange::default(), ..filter.clone() };
    rows_sql::<ContainerRow>(d, "containers", "wall_ns", &["container_id", "pod_name", "cgroup_path"], &filter)
}

/// Workload policy decisions; `contains` looks at the address, the path and
/// the role.
pub fn enforcement_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    rows_sql::<EnforcementDecisionRow>(d, "enforcement_decisions", "wall_ns", &["remote_addr", "path", "role"], filter)
}

pub fn losses_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    rows_sql::<LossMarkerRow>(d, "loss_markers", "to_wall_ns", &["kind"], filter)
}

table_row! {
    /// One process's use of one IPC channel (or shared-memory operation),
    /// summed over the range.
    pub struct IpcUsageRow {
        pub host: String,
        pub boot_id: String,
        pub pid: u32,
        pub comm: String,
        pub kind: u8,
        pub op: u8,
        pub object_id: u64,
        pub name: String,
        pub peer_pid: u32,
        pub peer_object_id: u64,
        pub bytes_written: u64,
        pub bytes_read: u64,
        pub write_blocked_ns: u64,
        pub read_blocked_ns: u64,
        pub writes: u64,
        pub reads: u64,
        pub first_wall_ns: u64,
        pub last_wall_ns: u64,
    }
}

pub fn ipc_usage_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    let mut sql = Sql::default();
    let where_ = activity_where(d, filter, &["name"], &mut sql);
    sql.text = format!(
        "SELECT host, boot_id, pid, max(comm) AS comm, kind, op, object_id, max(name) AS name,
            max(peer_pid) AS peer_pid, max(peer_object_id) AS peer_object_id,
            sum(bytes_written) AS bytes_written, sum(bytes_read) AS bytes_read,
            sum(write_blocked_ns) AS write_blocked_ns, sum(read_blocked_ns) AS read_blocked_ns,
            sum(writes) AS writes, sum(reads) AS reads,
            min(window_start_wall_ns) AS first_wall_ns, max(wall_ns) AS last_wall_ns
        FROM (SELECT * FROM ipc_events{} WHERE {where_})
        GROUP BY host, boot_id, pid, kind, op, object_id
        ORDER BY last_wall_ns DESC, host, boot_id, pid, kind, op, object_id{}",
        d.final_(),
        limit(filter, &mut sql)
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::SqlArg;

    #[test]
    fn arguments_follow_placeholders_in_order() {
        let filter = ActivityFilter {
            host: Some("h".into()),
            pid: Some(7),
            contains: Some("x".into()),
            container: Some("abc".into()),
            limit: 5,
            ..Default::default()
        };
        let sql = dns_sql(SqlDialect::Sqlite, &filter);
        assert_eq!(sql.text.matches('?').count(), sql.args.len(), "{}", sql.text);
        assert_eq!(sql.args.first(), Some(&SqlArg::Str("h".into())));
        assert_eq!(sql.args.last(), Some(&SqlArg::U64(5)));
        let sql = file_activity_sql(SqlDialect::ClickHouse, &filter);
        assert_eq!(sql.text.matches('?').count(), sql.args.len(), "{}", sql.text);
    }
}
