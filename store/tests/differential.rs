//! The same rows written to ClickHouse (a real server) and to the embedded
//! SQLite store must answer every query the same. Needs
//! PLUMBLINE_TEST_CLICKHOUSE (scripts/test.sh starts one).

use std::sync::Arc;

mod support;

use plumbline_store::{
    clickhouse::ClickHouseStore, sqlite::SqliteStore, ActivityFilter, ClickHouseConfig, DeadLetterRow, LossMarkerRow,
    ProcessFilter, RowSet, Store, StoreRead, StoreWrite, TimeRange,
};
use support::*;

fn clickhouse_url() -> String {
    std::env::var("PLUMBLINE_TEST_CLICKHOUSE")
        .expect("PLUMBLINE_TEST_CLICKHOUSE is not set: run the tests with scripts/test.sh, which starts ClickHouse")
}

async fn both_stores(rows: &Arc<RowSet>) -> (ClickHouseStore, SqliteStore) {
    let database = format!("plumbline_diff_{}", uuid::Uuid::new_v4().simple());
    let config = ClickHouseConfig { url: clickhouse_url(), database, ..Default::default() };
    let clickhouse = ClickHouseStore::open(&config).await.unwrap();
    let sqlite = SqliteStore::in_memory().await.unwrap();
    for store in [&clickhouse as &dyn Store, &sqlite] {
        store.write(rows.clone()).await.unwrap();
        // A re-delivery of everything: both must de-duplicate.
        store.write(rows.clone()).await.unwrap();
    }
    (clickhouse, sqlite)
}

fn filters(hosts: &[&str]) -> Vec<ProcessFilter> {
    let base = ProcessFilter { limit: 10_000, ..Default::default() };
    let mut filters = vec![
        base.clone(),
        ProcessFilter { limit: 7, ..base.clone() },
        ProcessFilter { name_contains: Some("py".into()), ..base.clone() },
        ProcessFilter { name_contains: Some("sh".into()), ..base.clone() },
        ProcessFilter { argv_contains: Some("run-3".into()), ..base.clone() },
        ProcessFilter { argv_contains: Some("tests/".into()), name_contains: Some("pytest".into()), ..base.clone() },
        ProcessFilter { argv_contains: Some("marker-1".into()), ..base.clone() },
        ProcessFilter { pid: Some(200), ..base.clone() },
        ProcessFilter { pid: Some(400), ..base.clone() },
        ProcessFilter { ppids: vec![100, 1], ..base.clone() },
        ProcessFilter { range: TimeRange { start_ns: Some(WALL_OFFSET + 40 * SECOND), end_ns: None }, ..base.clone() },
        ProcessFilter { range: TimeRange { start_ns: None, end_ns: Some(WALL_OFFSET + 30 * SECOND) }, ..base.clone() },
        ProcessFilter {
            range: TimeRange { start_ns: Some(WALL_OFFSET + 20 * SECOND), end_ns: Some(WALL_OFFSET + 25 * SECOND) },
            ..base.clone()
        },
    ];
    for host in hosts {
        filters.push(ProcessFilter { host: Some(host.to_string()), ..base.clone() });
        filters.push(ProcessFilter { host: Some(host.to_string()), boot_id: Some("boot-1".into()), ..base.clone() });
        filters.push(ProcessFilter { host: Some(host.to_string()), ppids: vec![1000, 1010, 1020], ..base.clone() });
    }
    filters
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_and_sqlite_answer_every_process_query_the_same() {
    let mut process_events = known_world();
    process_events.extend(generated_world(42, 600));
    let rows = Arc::new(RowSet {
        process_events,
        loss_markers: vec![LossMarkerRow {
            host: "gpu-01".into(),
            boot_id: "boot-1".into(),
            kind: "proc_exec".into(),
            reason: 1,
            cpu: 1,
            count: 17,
            from_ns: 1,
            to_ns: 2,
            from_wall_ns: 3,
            to_wall_ns: 4,
        }],
        dead_letters: vec![DeadLetterRow {
            origin: "kafka:t/0@5".into(),
            payload_hash: u64::MAX - 1,
            received_wall_ns: 9,
            error: "bad".into(),
            key: "gpu-01".into(),
            payload: vec![0xff, 0x00, 0x01],
        }],
        ..Default::default()
    });
    let (clickhouse, sqlite) = both_stores(&rows).await;

    let hosts = ["host-a", "host-b", "gpu-01", "gpu-02", "cpu-01"];
    let mut compared = 0;
    for filter in filters(&hosts) {
        let expected = sqlite.list_processes(&filter).await.unwrap();
        let actual = clickhouse.list_processes(&filter).await.unwrap();
        assert_eq!(actual, expected, "answers differ for {filter:?}");
        compared += expected.len();
    }
    assert!(compared > 1000, "the filters must select real rows ({compared})");

    let (a, b) = (clickhouse.pipeline_stats().await.unwrap(), sqlite.pipeline_stats().await.unwrap());
    assert_eq!(a, b);
    assert_eq!((a.dead_letters, a.lost_events), (1, 17));
    assert_eq!(a.hosts, vec!["cpu-01", "gpu-01", "gpu-02", "host-a", "host-b"]);
}

fn activity_filters() -> Vec<ActivityFilter> {
    let base = ActivityFilter { limit: 10_000, ..Default::default() };
    vec![
        base.clone(),
        ActivityFilter { limit: 5, ..base.clone() },
        ActivityFilter { host: Some("gpu-01".into()), ..base.clone() },
        ActivityFilter { pid: Some(2010), ..base.clone() },
        ActivityFilter { contains: Some("stdio".into()), ..base.clone() },
        ActivityFilter { contains: Some("api-1".into()), ..base.clone() },
        ActivityFilter { contains: Some("run/".into()), ..base.clone() },
        ActivityFilter { container: Some("abc".into()), ..base.clone() },
        ActivityFilter { container: Some("trainer-1-0".into()), ..base.clone() },
        ActivityFilter {
            range: TimeRange { start_ns: Some(WALL_OFFSET + 50 * SECOND), end_ns: Some(WALL_OFFSET + 150 * SECOND) },
            ..base.clone()
        },
        ActivityFilter { sock_ids: vec![1, 2, 3], ..base.clone() },
    ]
}

/// Every activity view's answer from both stores, for one filter.
async fn compare_activity(clickhouse: &dyn Store, sqlite: &dyn Store, filter: &ActivityFilter) -> usize {
    macro_rules! same {
        ($method:ident) => {{
            let expected = sqlite.$method(filter).await.unwrap();
            let actual = clickhouse.$method(filter).await.unwrap();
            assert_eq!(actual, expected, "{} differs for {filter:?}", stringify!($method));
            expected.len()
        }};
    }
    same!(list_file_activity)
        + same!(list_connections)
        + same!(list_flows)
        + same!(list_dns_queries)
        + same!(list_ipc_usage)
        + same!(list_containers)
        + same!(list_loss_markers)
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_and_sqlite_answer_every_activity_view_the_same() {
    let rows = Arc::new(generated_activity(11, 2000));
    let (clickhouse, sqlite) = both_stores(&rows).await;
    let mut compared = 0;
    for filter in activity_filters() {
        compared += compare_activity(&clickhouse, &sqlite, &filter).await;
    }
    assert!(compared > 3000, "the filters must select real rows ({compared})");
}

fn llm_filters() -> Vec<ActivityFilter> {
    let base = ActivityFilter { limit: 10_000, ..Default::default() };
    let hours = |from: u64, to: u64| TimeRange {
        start_ns: Some(WALL_OFFSET + from * 3600 * SECOND),
        end_ns: Some(WALL_OFFSET + to * 3600 * SECOND),
    };
    vec![
        base.clone(),
        ActivityFilter { limit: 5, ..base.clone() },
        ActivityFilter { host: Some("gpu-02".into()), ..base.clone() },
        ActivityFilter { pid: Some(3010), ..base.clone() },
        ActivityFilter { pid: Some(3001), ..base.clone() },
        ActivityFilter { contains: Some("coder".into()), ..base.clone() },
        ActivityFilter { contains: Some("gpt-4o".into()), ..base.clone() },
        ActivityFilter { contains: Some("anthropic".into()), ..base.clone() },
        ActivityFilter { contains: Some("python".into()), ..base.clone() },
        ActivityFilter { contains: Some("libssl".into()), ..base.clone() },
        ActivityFilter { container: Some("trainer-1-0".into()), ..base.clone() },
        ActivityFilter { range: hours(2, 4), ..base.clone() },
        ActivityFilter { range: hours(3, 4), host: Some("cpu-01".into()), ..base.clone() },
        // Few calls, and processes mapped in the window that made none.
        ActivityFilter {
            range: TimeRange { start_ns: Some(WALL_OFFSET + 1000 * SECOND), end_ns: Some(WALL_OFFSET + 1900 * SECOND) },
            ..base.clone()
        },
        ActivityFilter { range: TimeRange { start_ns: Some(WALL_OFFSET + 5 * 3600 * SECOND), end_ns: None }, ..base },
    ]
}

/// Every LLM view's answer from both stores, for one filter.
async fn compare_llm(clickhouse: &dyn Store, sqlite: &dyn Store, filter: &ActivityFilter) -> usize {
    macro_rules! same {
        ($method:ident) => {{
            let expected = sqlite.$method(filter).await.unwrap();
            let actual = clickhouse.$method(filter).await.unwrap();
            assert_eq!(actual, expected, "{} differs for {filter:?}", stringify!($method));
            expected.len()
        }};
    }
    same!(list_llm_calls) + same!(list_agents) + same!(token_usage) + same!(list_tls_stacks)
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_and_sqlite_answer_every_llm_view_the_same() {
    let mut rows = generated_llm(23, 1500);
    // The containers the `container` filter resolves through.
    rows.containers = generated_activity(11, 0).containers;
    let (clickhouse, sqlite) = both_stores(&Arc::new(rows)).await;
    let mut compared = 0;
    for filter in llm_filters() {
        compared += compare_llm(&clickhouse, &sqlite, &filter).await;
    }
    assert!(compared > 3000, "the filters must select real rows ({compared})");
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_an_existing_clickhouse_database_again_applies_no_migration_twice() {
    let database = format!("plumbline_migrate_{}", uuid::Uuid::new_v4().simple());
    let config = ClickHouseConfig { url: clickhouse_url(), database, ..Default::default() };
    let first = ClickHouseStore::open(&config).await.unwrap();
    let every: Vec<u32> = plumbline_store::tables::MIGRATIONS.iter().map(|m| m.id).collect();
    assert_eq!(first.migrated_at_open(), every);
    first.write(Arc::new(RowSet { process_events: known_world(), ..Default::default() })).await.unwrap();
    let second = ClickHouseStore::open(&config).await.unwrap();
    assert!(second.migrated_at_open().is_empty());
    let all = ProcessFilter { limit: 100, ..Default::default() };
    assert_eq!(
        second.list_processes(&all).await.unwrap().len(),
        7,
        "host-a: 100, 200, 300, 400 twice, 500; host-b: 100"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_and_sqlite_answer_every_session_view_the_same() {
    use plumbline_store::{EffectFilter, SessionFilter};
    let (clickhouse, sqlite) = both_stores(&Arc::new(generated_sessions(40))).await;
    let mut compared = 0;
    let filters = [
        SessionFilter { limit: 1000, ..Default::default() },
        SessionFilter { agent: Some("agent-1".into()), limit: 1000, ..Default::default() },
        SessionFilter {
            host: Some("host-2".into()),
            kind: Some("reasoning_loop".into()),
            limit: 5,
            ..Default::default()
        },
        SessionFilter { session: Some(format!("s{:012x}", 5)), limit: 1000, ..Default::default() },
    ];
    for filter in &filters {
        let (expected, actual) =
            (sqlite.list_sessions(filter).await.unwrap(), clickhouse.list_sessions(filter).await.unwrap());
        assert_eq!(actual, expected, "sessions for {filter:?}");
        compared += expected.len();
        let (expected, actual) =
            (sqlite.list_findings(filter).await.unwrap(), clickhouse.list_findings(filter).await.unwrap());
        assert_eq!(actual, expected, "findings for {filter:?}");
        compared += expected.len();
        let sorted = |mut rows: Vec<plumbline_store::SessionFindingsRow>| {
            rows.sort_by(|a, b| a.session.cmp(&b.session));
            rows
        };
        let expected = sorted(sqlite.finding_counts(filter).await.unwrap());
        assert_eq!(sorted(clickhouse.finding_counts(filter).await.unwrap()), expected, "counts for {filter:?}");
        compared += expected.len();
    }
    let all = sqlite.list_sessions(&filters[0]).await.unwrap();
    assert_eq!(all.len(), 40);
    let first = all.iter().find(|s| s.session == format!("s{:012x}", 5)).unwrap();
    assert_eq!(
        (first.pid, first.comm.as_str(), first.llm_calls, first.tool_calls, first.effects, first.tokens),
        (105, "comm-0", 2, 1, 4, 210)
    );
    let session = format!("s{:012x}", 5);
    assert_eq!(
        clickhouse.session_nodes(&session, 100).await.unwrap(),
        sqlite.session_nodes(&session, 100).await.unwrap()
    );
    assert_eq!(sqlite.session_nodes(&session, 100).await.unwrap().len(), 8);
    assert_eq!(clickhouse.session_edges(&session).await.unwrap(), sqlite.session_edges(&session).await.unwrap());
    for filter in [
        EffectFilter { pid: Some(9005), processes_only: true, limit: 10, ..Default::default() },
        EffectFilter { contains: Some("/tmp/file-7-3".into()), limit: 10, ..Default::default() },
    ] {
        let expected = sqlite.effect_nodes(&filter).await.unwrap();
        assert_eq!(clickhouse.effect_nodes(&filter).await.unwrap(), expected, "{filter:?}");
        assert_eq!(expected.len(), 1, "{filter:?}");
        compared += expected.len();
    }
    assert!(compared > 80, "the filters select real rows ({compared})");
}

/// A database made before migration 7 (GPU ranks, roles and causes) gains
/// its columns on open; rows written before read as unknown.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_before_the_gpu_rank_columns_is_upgraded_on_open() {
    use plumbline_store::clickhouse::{Capabilities, Dialect, ServerVersion};
    use plumbline_store::tables::MIGRATIONS;
    let database = format!("plumbline_upgrade_{}", uuid::Uuid::new_v4().simple());
    let server = clickhouse::Client::default().with_url(clickhouse_url()).with_validation(false);
    let version: String = server.query("SELECT version()").fetch_one().await.unwrap();
    let dialect =
        Dialect { capabilities: Capabilities::of(ServerVersion::parse(&version).unwrap()), retention_days: 0 };
    server.query(&format!("CREATE DATABASE {database}")).execute().await.unwrap();
    let old = server.clone().with_database(&database);
    old.query(
        "CREATE TABLE schema_migrations (id UInt32, name String, applied_wall_ns UInt64, server_version String)
         ENGINE = ReplacingMergeTree ORDER BY id",
    )
    .execute()
    .await
    .unwrap();
    for migration in MIGRATIONS.iter().filter(|m| m.id < 7) {
        for statement in (migration.clickhouse)(&dialect) {
            old.query(&statement).execute().await.unwrap();
        }
        old.query(&format!("INSERT INTO schema_migrations VALUES ({}, 'old', 0, '')", migration.id))
            .execute()
            .await
            .unwrap();
    }
    old.query(
        "INSERT INTO collective_verdicts (job, communicator, seq, verdict, rank) VALUES ('old-job', 1, 2, 'straggler', 5)",
    )
    .execute()
    .await
    .unwrap();
    let config = ClickHouseConfig { url: clickhouse_url(), database, ..Default::default() };
    let store = ClickHouseStore::open(&config).await.unwrap();
    // Migration 7 and every one after it.
    let since_7: Vec<u32> = MIGRATIONS.iter().map(|m| m.id).filter(|&id| id >= 7).collect();
    assert_eq!(store.migrated_at_open(), since_7);
    let rows = generated_gpu(5, 20);
    store.write(Arc::new(rows)).await.unwrap();
    let (cause_rank, comm_rank): (i32, i32) = old
        .query("SELECT cause_rank, comm_rank FROM collective_verdicts WHERE job = 'old-job'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!((cause_rank, comm_rank), (-1, -1), "rows from before read as unknown");
    let global: u64 = old.query("SELECT count() FROM nccl_calls WHERE rank_in_job = 1").fetch_one().await.unwrap();
    assert!(global > 0);

    // The same on SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_wall_ns INTEGER NOT NULL);",
            )
            .unwrap();
        for migration in MIGRATIONS.iter().filter(|m| m.id < 7) {
            for statement in (migration.sqlite)() {
                connection.execute_batch(&statement).unwrap();
            }
            connection.execute("INSERT INTO schema_migrations VALUES (?1, 'old', 0)", [migration.id]).unwrap();
        }
    }
    let sqlite = SqliteStore::open(&path).await.unwrap();
    sqlite.write(Arc::new(generated_gpu(5, 20))).await.unwrap();
    drop(sqlite);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let global: i64 =
        connection.query_row("SELECT count(*) FROM nccl_calls WHERE rank_in_job = 1", [], |r| r.get(0)).unwrap();
    assert!(global > 0);
}
