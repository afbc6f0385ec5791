//! Folding `process_events` rows into processes, in ClickHouse SQL.
//! The SQLite twin is `sqlite/process_sql.rs`; the differential test keeps
//! their answers equal.

use clickhouse::{query::Query, Client};

use crate::{ProcessFilter, ProcessRecord, StoreError};

/// A bound value, applied in the order the SQL names them.
enum Arg {
    Str(String),
    U32(u32),
    U64(u64),
    U32s(Vec<u32>),
}

pub(crate) async fn list(client: &Client, filter: &ProcessFilter) -> Result<Vec<ProcessRecord>, StoreError> {
    Ok(list_query(client, filter).fetch_all().await?)
}

/// The ListProcesses query with its values bound.
pub(crate) fn list_query(client: &Client, filter: &ProcessFilter) -> Query {
    let mut args = Vec::new();
    let mut sql = String::from(
        // Aliases end in `_` so they never shadow the columns they aggregate.
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
        WHERE kind != 'exec_failed'",
    );
    if let Some(host) = &filter.host {
        sql.push_str(" AND host = ?");
        args.push(Arg::Str(host.clone()));
    }
    if let Some(boot_id) = &filter.boot_id {
        sql.push_str(" AND boot_id = ?");
        args.push(Arg::Str(boot_id.clone()));
    }
    if let Some(pid) = filter.pid {
        sql.push_str(" AND pid = ?");
        args.push(Arg::U32(pid));
    }
    if let Some(start_key_ns) = filter.start_key_ns {
        sql.push_str(" AND start_key_ns = ?");
        args.push(Arg::U64(start_key_ns));
    }
    sql.push_str(" GROUP BY host, boot_id, pid, start_key_ns HAVING 1");
    if !filter.ppids.is_empty() {
        sql.push_str(" AND has(?, ppid_)");
        args.push(Arg::U32s(filter.ppids.clone()));
    }
    if let Some(end) = filter.range.end_ns {
        sql.push_str(" AND start_wall_ns_ <= ?");
        args.push(Arg::U64(end));
    }
    if let Some(start) = filter.range.start_ns {
        sql.push_str(" AND (NOT exited_ OR exit_wall_ns_ >= ?)");
        args.push(Arg::U64(start));
    }
    if let Some(name) = &filter.name_contains {
        sql.push_str(" AND (position(comm_, ?) > 0 OR position(exe_, ?) > 0)");
        args.push(Arg::Str(name.clone()));
        args.push(Arg::Str(name.clone()));
    }
    if let Some(arg) = &filter.argv_contains {
        sql.push_str(" AND arrayExists(a -> position(a, ?) > 0, argv_)");
        args.push(Arg::Str(arg.clone()));
    }
    sql.push_str(" ORDER BY start_wall_ns_ DESC, host, boot_id, pid, start_key_ns LIMIT ?");
    args.push(Arg::U32(filter.limit));

    let mut query = client.query(&sql);
    for arg in args {
        query = match arg {
            Arg::Str(v) => query.bind(v),
            Arg::U32(v) => query.bind(v),
            Arg::U64(v) => query.bind(v),
            Arg::U32s(v) => query.bind(v),
        };
    }
    query
}
