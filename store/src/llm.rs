//! The LLM views (calls, agents, hourly token usage, TLS stacks): their
//! result rows and their SQL, written once for both backends with the few
//! differences behind [`SqlDialect`].

use crate::filter::ActivityFilter;
use crate::filter::TimeRange;
use crate::sql::{activity_where, limit, rows_by_key_sql, Sql, SqlArg, SqlDialect};
use crate::tables::row::table_row;
use crate::tables::{LlmCallRow, TlsStackRow, LLM_TABLES};

const HOUR_NS: u64 = 3_600_000_000_000;

table_row! {
    /// A process that is mapped to an agent, or that called LLM APIs without
    /// one (`agent` empty: discovered), with its calls in the range.
    pub struct AgentActivityRow {
        pub host: String,
        pub boot_id: String,
        pub pid: u32,
        pub process_start_key_ns: u64,
        pub comm: String,
        /// Empty for a discovered process.
        pub agent: String,
        pub rule: String,
        pub matched_on: String,
        pub llm_calls: u64,
        pub input_tokens: u64,
        pub output_tokens: u64,
        pub first_wall_ns: u64,
        pub last_wall_ns: u64,
        pub cgroup_id: u64,
    }
}

table_row! {
    /// Calls and tokens of one agent, provider and model in one hour.
    pub struct TokenUsageHourRow {
        /// Start of the hour, wall-clock ns.
        pub hour_wall_ns: u64,
        /// Empty for calls of discovered processes.
        pub agent: String,
        pub provider: String,
        pub model: String,
        pub calls: u64,
        pub input_tokens: u64,
        pub output_tokens: u64,
        pub cached_input_tokens: u64,
    }
}

impl SqlDialect {
    /// Start of the hour of a wall-clock ns column. Integer division, which
    /// every ClickHouse release has (18.16 lacks `toStartOfInterval`).
    fn hour(self, column: &str) -> String {
        match self {
            SqlDialect::ClickHouse => format!("intDiv({column}, {HOUR_NS}) * {HOUR_NS}"),
            SqlDialect::Sqlite => format!("({column} / {HOUR_NS}) * {HOUR_NS}"),
        }
    }
}

fn spec(name: &str) -> &'static crate::tables::TableSpec {
    LLM_TABLES.iter().find(|t| t.name == name).expect("an LLM table")
}

/// Calls newest first; `contains` looks at the agent, model and provider.
pub fn llm_calls_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    rows_by_key_sql::<LlmCallRow>(d, spec("llm_calls"), &["agent", "model", "provider"], filter)
}

/// TLS libraries found, newest first; `contains` looks at the library and
/// its file.
pub fn tls_stacks_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    rows_by_key_sql::<TlsStackRow>(d, spec("tls_stacks"), &["library", "path"], filter)
}

/// Calls, tokens in, out and cached per hour, agent, provider and model,
/// newest hour first; `contains` looks at the agent, model and provider.
pub fn token_usage_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    let mut sql = Sql::default();
    let where_ = activity_where(d, filter, &["agent", "model", "provider"], &mut sql);
    sql.text = format!(
        "SELECT hour_wall_ns, agent, provider, model, count(*) AS calls,
            sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
            sum(cached_input_tokens) AS cached_input_tokens
        FROM (
            SELECT {hour} AS hour_wall_ns, agent, provider, model, input_tokens, output_tokens, cached_input_tokens
            FROM llm_calls{final_} WHERE {where_}
        )
        GROUP BY hour_wall_ns, agent, provider, model
        ORDER BY hour_wall_ns DESC, agent, provider, model{limit}",
        hour = d.hour("wall_ns"),
        final_ = d.final_(),
        limit = limit(filter, &mut sql),
    );
    sql
}

/// Each process's latest mapping at or before the end of the range, in the
/// column order of the union in [`agents_sql`]. The mapping holds from when
/// it was made, so the start of the range does not cut it off.
fn latest_mappings(d: SqlDialect, filter: &ActivityFilter, sql: &mut Sql) -> String {
    let until_end = ActivityFilter { range: TimeRange { start_ns: None, ..filter.range }, ..filter.clone() };
    let where_ = activity_where(d, &until_end, &[], sql);
    match d {
        SqlDialect::ClickHouse => format!(
            // Aliases differ from the columns they aggregate: ClickHouse
            // would otherwise read the alias inside its own aggregate.
            "SELECT host, boot_id, pid, process_start_key_ns,
                argMax(comm, ts_ns) AS u_comm, argMax(agent, ts_ns) AS map_agent, argMax(rule, ts_ns) AS map_rule,
                argMax(matched_on, ts_ns) AS map_matched_on, '' AS call_agent, toUInt8(1) AS mapped,
                toUInt64(0) AS calls, toUInt64(0) AS tokens_in, toUInt64(0) AS tokens_out,
                min(wall_ns) AS first_wall, argMax(wall_ns, ts_ns) AS last_wall, argMax(wall_ns, ts_ns) AS map_wall,
                argMax(cgroup_id, ts_ns) AS u_cgroup
            FROM agent_processes FINAL WHERE {where_}
            GROUP BY host, boot_id, pid, process_start_key_ns"
        ),
        SqlDialect::Sqlite => format!(
            "SELECT a.host, a.boot_id, a.pid, a.process_start_key_ns,
                a.comm AS u_comm, a.agent AS map_agent, a.rule AS map_rule, a.matched_on AS map_matched_on,
                '' AS call_agent, 1 AS mapped, 0 AS calls, 0 AS tokens_in, 0 AS tokens_out,
                l.first_wall AS first_wall, a.wall_ns AS last_wall, a.wall_ns AS map_wall, a.cgroup_id AS u_cgroup
            FROM agent_processes a JOIN (
                SELECT host, boot_id, pid, process_start_key_ns, max(ts_ns) AS ts_ns, min(wall_ns) AS first_wall
                FROM agent_processes WHERE {where_}
                GROUP BY host, boot_id, pid, process_start_key_ns
            ) l ON a.host = l.host AND a.boot_id = l.boot_id AND a.pid = l.pid
                AND a.process_start_key_ns = l.process_start_key_ns AND a.ts_ns = l.ts_ns"
        ),
    }
}

/// One row per process that is mapped to an agent or made LLM calls in the
/// range, newest activity first.
///
/// A mapped process is listed when it was mapped or made calls in the range
/// (without a range: always); its agent is its latest mapping's, or, with no
/// mapping on record, the agent its calls were attributed to. A process
/// whose latest mapping is empty (unmapped) and that made calls is
/// discovered. `contains` looks at the agent and the process name.
pub fn agents_sql(d: SqlDialect, filter: &ActivityFilter) -> Sql {
    let mut sql = Sql::default();
    let mappings = latest_mappings(d, filter, &mut sql);
    let calls_where = activity_where(d, filter, &[], &mut sql);
    let u0 = d.u64_zero();
    let calls = format!(
        "SELECT host, boot_id, pid, process_start_key_ns, max(comm), '', '', '', max(agent), {u8_0}, count(*),
            sum(input_tokens), sum(output_tokens), min(wall_ns), max(wall_ns), {u0}, max(cgroup_id)
        FROM llm_calls{final_} WHERE {calls_where}
        GROUP BY host, boot_id, pid, process_start_key_ns",
        u8_0 = match d {
            SqlDialect::ClickHouse => "toUInt8(0)",
            SqlDialect::Sqlite => "0",
        },
        final_ = d.final_(),
    );
    let mut outer = vec!["(llm_calls > 0 OR (agent != '' AND mapped_wall_ns >= ?))".to_string()];
    sql.args.push(SqlArg::U64(filter.range.start_ns.unwrap_or(0)));
    if let Some(needle) = &filter.contains {
        outer.push(format!("({} > 0 OR {} > 0)", d.position("agent"), d.position("comm")));
        sql.args.extend([SqlArg::Str(needle.clone()), SqlArg::Str(needle.clone())]);
    }
    sql.text = format!(
        "SELECT host, boot_id, pid, process_start_key_ns, comm, agent, rule, matched_on, llm_calls,
            input_tokens, output_tokens, first_wall_ns, last_wall_ns, cgroup_id
        FROM (
            SELECT host, boot_id, pid, process_start_key_ns, max(u_comm) AS comm,
                CASE WHEN max(mapped) = 1 THEN max(map_agent) ELSE max(call_agent) END AS agent,
                max(map_rule) AS rule, max(map_matched_on) AS matched_on,
                sum(calls) AS llm_calls, sum(tokens_in) AS input_tokens, sum(tokens_out) AS output_tokens,
                min(first_wall) AS first_wall_ns, max(last_wall) AS last_wall_ns, max(map_wall) AS mapped_wall_ns,
                max(u_cgroup) AS cgroup_id
            FROM (
                {mappings}
                UNION ALL
                {calls}
            )
            GROUP BY host, boot_id, pid, process_start_key_ns
        )
        WHERE {outer}
        ORDER BY last_wall_ns DESC, host, boot_id, pid, process_start_key_ns{limit}",
        outer = outer.join(" AND "),
        limit = limit(filter, &mut sql),
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_follow_placeholders_in_order_in_both_dialects() {
        let filter = ActivityFilter {
            host: Some("h".into()),
            pid: Some(7),
            contains: Some("x".into()),
            container: Some("abc".into()),
            range: TimeRange { start_ns: Some(10), end_ns: Some(20) },
            limit: 5,
            ..Default::default()
        };
        for d in [SqlDialect::ClickHouse, SqlDialect::Sqlite] {
            for sql in [
                llm_calls_sql(d, &filter),
                tls_stacks_sql(d, &filter),
                token_usage_sql(d, &filter),
                agents_sql(d, &filter),
            ] {
                assert_eq!(sql.text.matches('?').count(), sql.args.len(), "{}", sql.text);
                assert_eq!(sql.args.first(), Some(&SqlArg::Str("h".into())));
                assert_eq!(sql.args.last(), Some(&SqlArg::U64(5)));
            }
        }
    }

    #[test]
    fn a_mapping_made_before_the_range_still_names_the_agent() {
        let filter = ActivityFilter {
            range: TimeRange { start_ns: Some(10), end_ns: Some(20) },
            limit: 5,
            ..Default::default()
        };
        let sql = agents_sql(SqlDialect::Sqlite, &filter);
        // Mappings: until the end only; calls: the whole range; listing: mapped since the start.
        let bounds: Vec<&SqlArg> = sql.args.iter().collect();
        assert_eq!(bounds, [&SqlArg::U64(20), &SqlArg::U64(10), &SqlArg::U64(20), &SqlArg::U64(10), &SqlArg::U64(5)]);
    }
}
