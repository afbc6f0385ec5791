//! The schema and queries as rendered for a current ClickHouse release
//! (26.9, with LowCardinality, codecs and TTL) must create the tables and
//! answer like the embedded store. Runs on chdb (ClickHouse in process);
//! needs PLUMBLINE_TEST_PYTHON with chdb installed (scripts/test.sh).

use std::sync::Arc;

mod support;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use plumbline_store::{
    clickhouse::{list_processes_sql, schema_ddl, ServerVersion},
    sqlite::SqliteStore,
    ActivityFilter, ProcessFilter, RowSet, StoreRead, StoreWrite, TimeRange,
};
use serde_json::{json, Value};
use support::*;

fn chdb(request: &Value) -> Value {
    let python = std::env::var("PLUMBLINE_TEST_PYTHON")
        .expect("PLUMBLINE_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs chdb");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb_check.py");
    let mut child = Command::new(python).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "chdb_check.py failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// ClickHouse answers booleans as 0/1 and names folded columns with a
/// trailing `_`; this makes both sides alike.
fn normalize(row: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (key, value) in row.as_object().unwrap() {
        let value = match value {
            Value::Bool(b) => json!(u8::from(*b)),
            other => other.clone(),
        };
        out.insert(key.trim_end_matches('_').to_string(), value);
    }
    Value::Object(out)
}

#[tokio::test]
async fn the_schema_for_current_clickhouse_creates_and_answers_like_the_embedded_store() {
    // The rows are from 2023: a retention of a century keeps them (with 30
    // days, the TTL would rightly drop them at insert).
    let ddl = schema_ddl(ServerVersion(26, 9, 0), 36_500);
    assert!(ddl.iter().any(|s| s.contains("LowCardinality(String)")), "{ddl:?}");
    assert!(ddl.iter().any(|s| s.contains("CODEC(")), "{ddl:?}");
    assert!(ddl.iter().any(|s| s.contains("TTL day + toIntervalDay(36500)")), "{ddl:?}");

    let mut rows = known_world();
    rows.extend(generated_world(9, 300));
    let filters = [
        ProcessFilter { limit: 10_000, ..Default::default() },
        ProcessFilter { argv_contains: Some("marker-1".into()), limit: 10, ..Default::default() },
        ProcessFilter {
            host: Some("gpu-01".into()),
            name_contains: Some("py".into()),
            limit: 50,
            ..Default::default()
        },
        ProcessFilter { ppids: vec![100, 1], limit: 10_000, ..Default::default() },
        ProcessFilter {
            range: TimeRange { start_ns: Some(WALL_OFFSET + 20 * SECOND), end_ns: Some(WALL_OFFSET + 40 * SECOND) },
            limit: 10_000,
            ..Default::default()
        },
    ];
    let response = chdb(&json!({
        "ddl": ddl,
        "inserts": { "process_events": rows },
        "queries": filters.iter().map(list_processes_sql).collect::<Vec<_>>(),
    }));
    assert!(response["server"].as_str().unwrap().starts_with("26."), "{}", response["server"]);

    let sqlite = SqliteStore::in_memory().await.unwrap();
    sqlite.write(Arc::new(RowSet { process_events: rows, ..Default::default() })).await.unwrap();
    for (filter, answer) in filters.iter().zip(response["answers"].as_array().unwrap()) {
        let expected: Vec<Value> = sqlite
            .list_processes(filter)
            .await
            .unwrap()
            .iter()
            .map(|r| normalize(&serde_json::to_value(r).unwrap()))
            .collect();
        let actual: Vec<Value> = answer.as_array().unwrap().iter().map(normalize).collect();
        assert!(!expected.is_empty(), "{filter:?} selects something");
        if actual != expected {
            let first =
                actual.iter().zip(&expected).position(|(a, e)| a != e).unwrap_or(actual.len().min(expected.len()));
            panic!(
                "answers differ for {filter:?}: {} rows vs {} expected; first difference at {first}:\n{:?}\nvs\n{:?}",
                actual.len(),
                expected.len(),
                actual.get(first),
                expected.get(first)
            );
        }
    }
}

/// The first difference between two answers, for a readable failure.
fn assert_same_answer(what: &str, actual: &[Value], expected: &[Value]) {
    if actual != expected {
        let first = actual.iter().zip(expected).position(|(a, e)| a != e).unwrap_or(actual.len().min(expected.len()));
        panic!(
            "{what}: {} rows vs {} expected; first difference at {first}:\n{:?}\nvs\n{:?}",
            actual.len(),
            expected.len(),
            actual.get(first),
            expected.get(first)
        );
    }
}

#[tokio::test]
async fn the_activity_views_on_current_clickhouse_answer_like_the_embedded_store() {
    use plumbline_store::{activity, sql::SqlDialect::ClickHouse};

    let rows = generated_activity(5, 800);
    let filters = [
        ActivityFilter { limit: 10_000, ..Default::default() },
        ActivityFilter { host: Some("gpu-02".into()), contains: Some("api".into()), limit: 50, ..Default::default() },
        ActivityFilter { container: Some("trainer-2-1".into()), limit: 10_000, ..Default::default() },
    ];
    type View = fn(plumbline_store::sql::SqlDialect, &ActivityFilter) -> plumbline_store::sql::Sql;
    let views: [(&str, View); 7] = [
        ("file activity", activity::file_activity_sql),
        ("connections", activity::connections_sql),
        ("flows", activity::flows_sql),
        ("dns", activity::dns_sql),
        ("ipc", activity::ipc_usage_sql),
        ("containers", activity::containers_sql),
        ("losses", activity::losses_sql),
    ];
    let mut queries = Vec::new();
    for filter in &filters {
        for (_, view) in &views {
            queries.push(inline_args(&view(ClickHouse, filter)));
        }
    }
    let response = chdb(&json!({
        "ddl": schema_ddl(ServerVersion(26, 9, 0), 36_500),
        "inserts": {
            "file_events": rows.file_events, "file_writes": rows.file_writes,
            "net_connections": rows.net_connections, "net_flows": rows.net_flows,
            "dns_queries": rows.dns_queries, "ipc_events": rows.ipc_events,
            "containers": rows.containers, "loss_markers": rows.loss_markers,
        },
        "queries": queries,
    }));

    let sqlite = SqliteStore::in_memory().await.unwrap();
    sqlite.write(Arc::new(rows)).await.unwrap();
    let mut answers = response["answers"].as_array().unwrap().iter();
    let mut compared = 0;
    for filter in &filters {
        for (name, _) in &views {
            let expected: Vec<Value> = match *name {
                "file activity" => json_rows(sqlite.list_file_activity(filter).await),
                "connections" => json_rows(sqlite.list_connections(filter).await),
                "flows" => json_rows(sqlite.list_flows(filter).await),
                "dns" => json_rows(sqlite.list_dns_queries(filter).await),
                "ipc" => json_rows(sqlite.list_ipc_usage(filter).await),
                "containers" => json_rows(sqlite.list_containers(filter).await),
                _ => json_rows(sqlite.list_loss_markers(filter).await),
            };
            let actual: Vec<Value> = answers.next().unwrap().as_array().unwrap().iter().map(normalize).collect();
            assert_same_answer(&format!("{name} for {filter:?}"), &actual, &expected);
            compared += expected.len();
        }
    }
    assert!(compared > 1000, "the views select real rows ({compared})");
}

#[tokio::test]
async fn the_llm_views_on_current_clickhouse_answer_like_the_embedded_store() {
    use plumbline_store::llm;

    let mut rows = generated_llm(3, 600);
    rows.containers = generated_activity(5, 0).containers;
    let filters = [
        ActivityFilter { limit: 10_000, ..Default::default() },
        ActivityFilter { host: Some("gpu-01".into()), contains: Some("coder".into()), limit: 50, ..Default::default() },
        ActivityFilter { container: Some("trainer-2-1".into()), limit: 10_000, ..Default::default() },
        ActivityFilter {
            range: TimeRange { start_ns: Some(WALL_OFFSET + 1000 * SECOND), end_ns: Some(WALL_OFFSET + 9000 * SECOND) },
            limit: 10_000,
            ..Default::default()
        },
    ];
    type View = fn(plumbline_store::sql::SqlDialect, &ActivityFilter) -> plumbline_store::sql::Sql;
    let views: [(&str, View); 4] = [
        ("llm calls", llm::llm_calls_sql),
        ("agents", llm::agents_sql),
        ("token usage", llm::token_usage_sql),
        ("tls stacks", llm::tls_stacks_sql),
    ];
    let mut queries = Vec::new();
    for filter in &filters {
        for (_, view) in &views {
            queries.push(inline_args(&view(plumbline_store::sql::SqlDialect::ClickHouse, filter)));
        }
    }
    let response = chdb(&json!({
        "ddl": schema_ddl(ServerVersion(26, 9, 0), 36_500),
        "inserts": {
            "llm_calls": rows.llm_calls, "agent_processes": rows.agent_processes,
            "tls_stacks": rows.tls_stacks, "containers": rows.containers,
        },
        "queries": queries,
    }));

    let sqlite = SqliteStore::in_memory().await.unwrap();
    sqlite.write(Arc::new(rows)).await.unwrap();
    let mut answers = response["answers"].as_array().unwrap().iter();
    let mut compared = 0;
    for filter in &filters {
        for (name, _) in &views {
            let expected: Vec<Value> = match *name {
                "llm calls" => json_rows(sqlite.list_llm_calls(filter).await),
                "agents" => json_rows(sqlite.list_agents(filter).await),
                "token usage" => json_rows(sqlite.token_usage(filter).await),
                _ => json_rows(sqlite.list_tls_stacks(filter).await),
            };
            let actual: Vec<Value> = answers.next().unwrap().as_array().unwrap().iter().map(normalize).collect();
            assert_same_answer(&format!("{name} for {filter:?}"), &actual, &expected);
            compared += expected.len();
        }
    }
    assert!(compared > 1000, "the views select real rows ({compared})");
}

fn json_rows<T: serde::Serialize>(rows: Result<Vec<T>, plumbline_store::StoreError>) -> Vec<Value> {
    rows.unwrap().iter().map(|r| normalize(&serde_json::to_value(r).unwrap())).collect()
}

/// The SQL with its arguments written in, as the clickhouse crate binds them.
fn inline_args(sql: &plumbline_store::sql::Sql) -> String {
    let mut query = clickhouse::Client::default().query(&sql.text);
    for arg in &sql.args {
        query = match arg {
            plumbline_store::sql::SqlArg::Str(v) => query.bind(v.as_str()),
            plumbline_store::sql::SqlArg::U64(v) => query.bind(*v),
        };
    }
    query.sql_display().to_string()
}

#[tokio::test]
async fn the_gpu_views_on_current_clickhouse_answer_like_the_embedded_store() {
    use plumbline_store::{gpu, sql::SqlDialect::ClickHouse, GpuFilter};

    let rows = generated_gpu(7, 300);
    let job = |limit| GpuFilter { job: Some("llama".into()), limit, ..Default::default() };
    let filters = [
        job(10_000),
        GpuFilter { rank: Some(13), ..job(10_000) },
        GpuFilter { host: Some("gpu-01".into()), pid: Some(5009), ..job(50) },
        GpuFilter {
            range: TimeRange {
                start_ns: Some(WALL_OFFSET + 10_005 * SECOND),
                end_ns: Some(WALL_OFFSET + 10_020 * SECOND),
            },
            rank: Some(2),
            ..job(10_000)
        },
    ];
    let views = ["jobs", "stragglers", "hangs", "mismatches", "kernels", "timeline"];
    let mut queries = Vec::new();
    for filter in &filters {
        queries.extend(
            [
                gpu::gpu_jobs_sql(ClickHouse, filter),
                gpu::gpu_stragglers_sql(ClickHouse, filter),
                gpu::gpu_verdicts_sql(ClickHouse, filter, "hang"),
                gpu::gpu_verdicts_sql(ClickHouse, filter, "mismatch"),
                gpu::gpu_kernels_sql(ClickHouse, filter),
                gpu::gpu_timeline_sql(ClickHouse, filter),
            ]
            .iter()
            .map(inline_args),
        );
    }
    let response = chdb(&json!({
        "ddl": schema_ddl(ServerVersion(26, 9, 0), 36_500),
        "inserts": {
            "nccl_calls": rows.nccl_calls, "cuda_calls": rows.cuda_calls,
            "collective_verdicts": rows.collective_verdicts, "kernel_launches": rows.kernel_launches,
        },
        "queries": queries,
    }));

    let sqlite = SqliteStore::in_memory().await.unwrap();
    sqlite.write(Arc::new(rows)).await.unwrap();
    let mut answers = response["answers"].as_array().unwrap().iter();
    let mut compared = 0;
    for filter in &filters {
        for name in views {
            let expected: Vec<Value> = match name {
                "jobs" => json_rows(sqlite.list_gpu_jobs(filter).await),
                "stragglers" => json_rows(sqlite.gpu_stragglers(filter).await),
                "hangs" => json_rows(sqlite.list_collective_verdicts(filter, "hang").await),
                "mismatches" => json_rows(sqlite.list_collective_verdicts(filter, "mismatch").await),
                "kernels" => json_rows(sqlite.gpu_kernels(filter).await),
                _ => json_rows(sqlite.gpu_timeline(filter).await),
            };
            let actual: Vec<Value> = answers.next().unwrap().as_array().unwrap().iter().map(normalize).collect();
            assert_same_answer(&format!("{name} for {filter:?}"), &actual, &expected);
            compared += expected.len();
        }
    }
    assert!(compared > 1000, "the views select real rows ({compared})");
}

#[tokio::test]
async fn the_session_views_on_current_clickhouse_answer_like_the_embedded_store() {
    use plumbline_store::{sessions, sql::SqlDialect::ClickHouse, EffectFilter, SessionFilter};

    let rows = generated_sessions(40);
    let session = format!("s{:012x}", 5);
    let filters = [
        SessionFilter { limit: 1000, ..Default::default() },
        SessionFilter { agent: Some("agent-1".into()), limit: 1000, ..Default::default() },
        SessionFilter {
            host: Some("host-2".into()),
            kind: Some("reasoning_loop".into()),
            limit: 5,
            ..Default::default()
        },
    ];
    let effects = [
        EffectFilter { pid: Some(9005), processes_only: true, limit: 10, ..Default::default() },
        EffectFilter { contains: Some("/tmp/file-7-3".into()), limit: 10, ..Default::default() },
    ];
    let mut queries = Vec::new();
    for filter in &filters {
        queries.push(inline_args(&sessions::sessions_sql(ClickHouse, filter)));
        queries.push(inline_args(&sessions::findings_sql(ClickHouse, filter)));
    }
    queries.push(inline_args(&sessions::session_nodes_sql(ClickHouse, &session, 100)));
    queries.push(inline_args(&sessions::session_edges_sql(ClickHouse, &session)));
    for filter in &effects {
        queries.push(inline_args(&sessions::effect_nodes_sql(ClickHouse, filter)));
    }
    let response = chdb(&json!({
        "ddl": schema_ddl(ServerVersion(26, 9, 0), 36_500),
        "inserts": {
            "session_nodes": rows.session_nodes, "session_edges": rows.session_edges, "findings": rows.findings,
        },
        "queries": queries,
    }));

    let sqlite = SqliteStore::in_memory().await.unwrap();
    sqlite.write(Arc::new(rows)).await.unwrap();
    let mut expected: Vec<(String, Vec<Value>)> = Vec::new();
    for filter in &filters {
        expected.push((format!("sessions for {filter:?}"), json_rows(sqlite.list_sessions(filter).await)));
        expected.push((format!("findings for {filter:?}"), json_rows(sqlite.list_findings(filter).await)));
    }
    expected.push(("nodes".into(), json_rows(sqlite.session_nodes(&session, 100).await)));
    expected.push(("edges".into(), json_rows(sqlite.session_edges(&session).await)));
    for filter in &effects {
        expected.push((format!("effects for {filter:?}"), json_rows(sqlite.effect_nodes(filter).await)));
    }
    let answers = response["answers"].as_array().unwrap();
    assert_eq!(answers.len(), expected.len());
    let mut compared = 0;
    for (answer, (what, expected)) in answers.iter().zip(&expected) {
        let actual: Vec<Value> = answer.as_array().unwrap().iter().map(normalize).collect();
        assert_same_answer(what, &actual, expected);
        compared += expected.len();
    }
    assert!(compared > 60, "the views select real rows ({compared})");
}
