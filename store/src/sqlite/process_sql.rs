//! Folding `process_events` rows into processes, in SQLite SQL: the twin of
//! `clickhouse/process_sql.rs`, kept equal by the differential test. Where
//! ClickHouse has argMax, SQLite picks the row with a correlated subquery on
//! the primary key.

use rusqlite::{types::Value, Connection};

use crate::{ProcessFilter, ProcessRecord, StoreError};

/// Rows of the same process as the outer `p`.
const SAME_PROCESS: &str =
    "e.host = p.host AND e.boot_id = p.boot_id AND e.pid = p.pid AND e.start_key_ns = p.start_key_ns";

pub(crate) fn list(connection: &Connection, filter: &ProcessFilter) -> Result<Vec<ProcessRecord>, StoreError> {
    let mut args: Vec<Value> = Vec::new();
    let mut inner_where = String::from("kind != 5");
    if let Some(host) = &filter.host {
        inner_where.push_str(" AND host = ?");
        args.push(Value::Text(host.clone()));
    }
    if let Some(boot_id) = &filter.boot_id {
        inner_where.push_str(" AND boot_id = ?");
        args.push(Value::Text(boot_id.clone()));
    }
    if let Some(pid) = filter.pid {
        inner_where.push_str(" AND pid = ?");
        args.push(Value::Integer(pid.into()));
    }
    if let Some(start_key_ns) = filter.start_key_ns {
        inner_where.push_str(" AND start_key_ns = ?");
        args.push(Value::Integer(start_key_ns as i64));
    }
    let pick = |column: &str, condition: &str, order: &str| {
        format!("(SELECT {column} FROM process_events e WHERE {SAME_PROCESS} AND {condition} ORDER BY e.ts_ns {order} LIMIT 1)")
    };
    let mut sql = format!(
        "WITH p AS (
            SELECT host, boot_id, pid, start_key_ns,
                min(start_wall_ns) AS start_wall_ns,
                sum(kind = 4) > 0 AS exited,
                max(CASE WHEN kind = 4 THEN wall_ns ELSE 0 END) AS exit_wall_ns,
                sum(kind = 2) > 0 AS seen_running,
                count(DISTINCT CASE WHEN kind = 1 THEN ts_ns END) AS exec_count
            FROM process_events WHERE {inner_where}
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
        FROM f WHERE 1",
        ppid_first = pick("e.ppid", "e.kind NOT IN (4, 5)", "ASC"),
        ppid_exit = pick("e.ppid", "e.kind = 4", "ASC"),
        uid = pick("e.uid", "e.kind NOT IN (4, 5)", "DESC"),
        comm = pick("e.comm", "e.kind != 5", "DESC"),
        exe = pick("e.exe", "e.kind IN (1, 2)", "DESC"),
        argv = pick("e.argv", "e.kind IN (1, 2)", "DESC"),
        cgroup_id = pick("e.cgroup_id", "e.kind != 5", "DESC"),
        exit_code = pick("e.exit_code", "e.kind = 4", "ASC"),
        exit_signal = pick("e.exit_signal", "e.kind = 4", "ASC"),
    );
    if !filter.ppids.is_empty() {
        let marks = vec!["?"; filter.ppids.len()].join(", ");
        sql.push_str(&format!(" AND ppid IN ({marks})"));
        args.extend(filter.ppids.iter().map(|&p| Value::Integer(p.into())));
    }
    if let Some(end) = filter.range.end_ns {
        sql.push_str(" AND start_wall_ns <= ?");
        args.push(Value::Integer(end as i64));
    }
    if let Some(start) = filter.range.start_ns {
        sql.push_str(" AND (NOT exited OR exit_wall_ns >= ?)");
        args.push(Value::Integer(start as i64));
    }
    if let Some(name) = &filter.name_contains {
        sql.push_str(" AND (instr(comm, ?) > 0 OR instr(exe, ?) > 0)");
        args.push(Value::Text(name.clone()));
        args.push(Value::Text(name.clone()));
    }
    if let Some(arg) = &filter.argv_contains {
        sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(f.argv) WHERE instr(json_each.value, ?) > 0)");
        args.push(Value::Text(arg.clone()));
    }
    sql.push_str(" ORDER BY start_wall_ns DESC, host, boot_id, pid, start_key_ns LIMIT ?");
    args.push(Value::Integer(filter.limit.into()));

    let mut statement = connection.prepare(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(args), |r| {
        Ok((
            ProcessRecord {
                host: r.get(0)?,
                boot_id: r.get(1)?,
                pid: r.get(2)?,
                start_key_ns: r.get::<_, i64>(3)? as u64,
                ppid: r.get(4)?,
                start_wall_ns: r.get::<_, i64>(5)? as u64,
                uid: r.get(6)?,
                comm: r.get(7)?,
                exe: r.get(8)?,
                argv: Vec::new(),
                cgroup_id: r.get::<_, i64>(10)? as u64,
                exited: r.get(11)?,
                exit_code: r.get(12)?,
                exit_signal: r.get(13)?,
                exit_wall_ns: r.get::<_, i64>(14)? as u64,
                seen_running: r.get(15)?,
                exec_count: r.get::<_, i64>(16)? as u64,
            },
            r.get::<_, String>(9)?,
        ))
    })?;
    rows.map(|row| {
        let (mut record, argv) = row?;
        record.argv = serde_json::from_str(&argv)
            .map_err(|e| StoreError::Malformed(format!("argv of pid {}: {e}", record.pid)))?;
        Ok(record)
    })
    .collect()
}
