//! The views of agent sessions (the sessions, one session's nodes and edges,
//! findings, the nodes of an effect), their filter, their result rows and
//! their SQL, written once for both backends.

use crate::filter::TimeRange;
use crate::sql::{limit_clause as limit, range_clauses, Sql, SqlArg, SqlDialect};
use crate::tables::row::{table_row, SqliteRow};
use crate::tables::{node_kind, FindingRow, SessionEdgeRow, SessionNodeRow};

/// What a session view asks for. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub session: Option<String>,
    pub agent: Option<String>,
    pub host: Option<String>,
    /// A finding kind (findings only).
    pub kind: Option<String>,
    pub range: TimeRange,
    pub limit: u32,
}

/// Which effect nodes an effect names (`plumb why`): a process, a file, a
/// connection. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectFilter {
    pub host: Option<String>,
    pub pid: Option<u32>,
    /// Looked for in the node's label: a path, an address.
    pub contains: Option<String>,
    /// Only the processes' starts (exec nodes): why a process ran.
    pub processes_only: bool,
    pub limit: u32,
}

table_row! {
    /// An agent session: its process, when it ran, what it did.
    pub struct SessionRow {
        pub session: String,
        pub agent: String,
        pub host: String,
        /// The session's process: the one that made its first LLM call.
        pub pid: u32,
        pub comm: String,
        pub first_wall_ns: u64,
        pub last_wall_ns: u64,
        pub llm_calls: u64,
        pub tool_calls: u64,
        /// Kernel effects in the session's process tree.
        pub effects: u64,
        pub tokens: u64,
    }
}

table_row! {
    /// How many findings a session has.
    pub struct SessionFindingsRow {
        pub session: String,
        pub findings: u64,
    }
}

const EFFECT_KINDS: [&str; 4] = [node_kind::EXEC, node_kind::FILE, node_kind::CONNECT, node_kind::LOOKUP];
/// What `why` answers for: the effects, and what a policy decided about
/// one (an attempt refused is not an effect, but its cause is asked for).
const WHY_KINDS: [&str; 5] =
    [node_kind::EXEC, node_kind::FILE, node_kind::CONNECT, node_kind::LOOKUP, node_kind::ENFORCEMENT];

fn session_where(filter: &SessionFilter, with_kind: bool, sql: &mut Sql) -> String {
    let mut clauses = vec!["1 = 1".to_string()];
    for (column, value) in [("session", &filter.session), ("agent", &filter.agent), ("host", &filter.host)] {
        if let Some(value) = value {
            clauses.push(format!("{column} = ?"));
            sql.args.push(SqlArg::Str(value.clone()));
        }
    }
    if let Some(kind) = filter.kind.as_ref().filter(|_| with_kind) {
        clauses.push("kind = ?".into());
        sql.args.push(SqlArg::Str(kind.clone()));
    }
    range_clauses(&filter.range, "wall_ns", &mut clauses, sql);
    clauses.join(" AND ")
}

/// Sessions with activity in the range, latest first.
pub fn sessions_sql(d: SqlDialect, filter: &SessionFilter) -> Sql {
    let mut sql = Sql::default();
    let where_ = session_where(filter, false, &mut sql);
    let count_kind = |kinds: &[&str]| {
        let list: Vec<String> = kinds.iter().map(|k| format!("'{k}'")).collect();
        d.to_u64(&format!("sum(CASE WHEN kind IN ({}) THEN 1 ELSE 0 END)", list.join(", ")))
    };
    // The session's process made its first LLM call, always node 1.
    let first = |column: &str| {
        match d {
        SqlDialect::ClickHouse => format!("argMin({column}, node)"),
        SqlDialect::Sqlite => format!(
            "(SELECT first.{column} FROM session_nodes AS first WHERE first.session = session_nodes.session AND first.node = 1)"
        ),
    }
    };
    sql.text = format!(
        "SELECT session, s_agent AS agent, s_host AS host, s_pid AS pid, s_comm AS comm, first_wall_ns, last_wall_ns,
            llm_calls, tool_calls, effects, s_tokens AS tokens FROM (
            SELECT session, max(agent) AS s_agent, {host} AS s_host, {pid} AS s_pid, {comm} AS s_comm,
                min(wall_ns) AS first_wall_ns, max(wall_ns) AS last_wall_ns, {calls} AS llm_calls,
                {tools} AS tool_calls, {effects} AS effects, {tokens} AS s_tokens
            FROM session_nodes{final_} WHERE {where_}
            GROUP BY session
        )
        ORDER BY last_wall_ns DESC, session{limit}",
        host = first("host"),
        pid = first("pid"),
        comm = first("comm"),
        calls = count_kind(&[node_kind::LLM_CALL]),
        tools = count_kind(&[node_kind::TOOL_CALL]),
        effects = count_kind(&EFFECT_KINDS),
        tokens = d.to_u64("sum(tokens)"),
        final_ = d.final_(),
        limit = limit(filter.limit, &mut sql),
    );
    sql
}

/// One session's nodes in the order they happened.
pub fn session_nodes_sql(d: SqlDialect, session: &str, limit_rows: u32) -> Sql {
    let mut sql = Sql { args: vec![SqlArg::Str(session.to_string())], ..Default::default() };
    sql.text = format!(
        "SELECT {} FROM session_nodes{} WHERE session = ? ORDER BY wall_ns, node{}",
        SessionNodeRow::COLUMNS.join(", "),
        d.final_(),
        limit(limit_rows, &mut sql),
    );
    sql
}

/// One session's edges.
pub fn session_edges_sql(d: SqlDialect, session: &str) -> Sql {
    Sql {
        text: format!(
            "SELECT {} FROM session_edges{} WHERE session = ? ORDER BY wall_ns, from_node, to_node",
            SessionEdgeRow::COLUMNS.join(", "),
            d.final_()
        ),
        args: vec![SqlArg::Str(session.to_string())],
    }
}

/// Findings, latest first.
pub fn findings_sql(d: SqlDialect, filter: &SessionFilter) -> Sql {
    let mut sql = Sql::default();
    let where_ = session_where(filter, true, &mut sql);
    sql.text = format!(
        "SELECT {} FROM findings{} WHERE {where_} ORDER BY wall_ns DESC, session, kind, subject{}",
        FindingRow::COLUMNS.join(", "),
        d.final_(),
        limit(filter.limit, &mut sql),
    );
    sql
}

/// Findings per session (the filter's kind and range do not apply: a
/// session's count is all it has).
pub fn finding_counts_sql(d: SqlDialect, filter: &SessionFilter) -> Sql {
    let mut sql = Sql::default();
    let everything = SessionFilter { kind: None, range: crate::TimeRange::default(), ..filter.clone() };
    let where_ = session_where(&everything, false, &mut sql);
    sql.text = format!(
        "SELECT session, {} AS findings FROM findings{} WHERE {where_} GROUP BY session",
        d.to_u64("count(*)"),
        d.final_()
    );
    sql
}

/// Effect nodes (processes, files, connections, lookups, policy decisions)
/// an effect filter names, latest first.
pub fn effect_nodes_sql(d: SqlDialect, filter: &EffectFilter) -> Sql {
    let mut sql = Sql::default();
    let kinds: &[&str] = if filter.processes_only { &[node_kind::EXEC] } else { &WHY_KINDS };
    let kinds: Vec<String> = kinds.iter().map(|k| format!("'{k}'")).collect();
    let mut clauses = vec![format!("kind IN ({})", kinds.join(", "))];
    if let Some(host) = &filter.host {
        clauses.push("host = ?".into());
        sql.args.push(SqlArg::Str(host.clone()));
    }
    if let Some(pid) = filter.pid {
        clauses.push("pid = ?".into());
        sql.args.push(SqlArg::U64(pid.into()));
    }
    if let Some(contains) = &filter.contains {
        clauses.push(format!("{} > 0", d.position("label")));
        sql.args.push(SqlArg::Str(contains.clone()));
    }
    sql.text = format!(
        "SELECT {} FROM session_nodes{} WHERE {} ORDER BY wall_ns DESC, session, node{}",
        SessionNodeRow::COLUMNS.join(", "),
        d.final_(),
        clauses.join(" AND "),
        limit(filter.limit, &mut sql),
    );
    sql
}
