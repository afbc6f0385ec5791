//! How lifecycle rows fold into processes, on the embedded store (the
//! differential test then holds ClickHouse to the same answers).

use std::sync::Arc;

mod support;

use plumbline_store::{sqlite::SqliteStore, ProcessFilter, RowSet, StoreRead, StoreWrite, TimeRange};
use support::*;

async fn store_with(rows: Vec<plumbline_store::ProcessEventRow>) -> SqliteStore {
    let store = SqliteStore::in_memory().await.unwrap();
    store.write(Arc::new(RowSet { process_events: rows, ..Default::default() })).await.unwrap();
    store
}

fn all() -> ProcessFilter {
    ProcessFilter { limit: 100, ..Default::default() }
}

#[tokio::test]
async fn exec_and_exit_fold_into_one_process_with_parent_argv_and_exit_code() {
    let store = store_with(known_world()).await;
    let filter = ProcessFilter { argv_contains: Some("marker-1".into()), ..all() };
    let found = store.list_processes(&filter).await.unwrap();
    assert_eq!(found.len(), 1);
    let p = &found[0];
    assert_eq!((p.host.as_str(), p.pid, p.ppid), ("host-a", 200, 100));
    assert_eq!(p.argv, vec!["/bin/sh", "-c", "exit 7", "marker-1"]);
    assert_eq!(p.exe, "/bin/sh");
    assert_eq!(p.comm, "sh");
    assert!(p.exited);
    assert_eq!((p.exit_code, p.exit_signal), (7, 0));
    assert_eq!(p.exit_wall_ns, 3 * SECOND + WALL_OFFSET);
    assert_eq!(p.exec_count, 1);
    assert!(!p.seen_running);
}

#[tokio::test]
async fn the_latest_exec_names_the_process_and_a_signal_is_reported() {
    let store = store_with(known_world()).await;
    let found = store.list_processes(&ProcessFilter { pid: Some(300), ..all() }).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].exe, "/usr/bin/cc");
    assert_eq!(found[0].argv, vec!["cc", "-c", "x.c"]);
    assert_eq!(found[0].exec_count, 2);
    assert_eq!(found[0].exit_signal, 9);
    assert_eq!(found[0].uid, 1000, "exit rows do not override the uid");
}

#[tokio::test]
async fn a_reused_pid_is_two_processes_newest_first() {
    let store = store_with(known_world()).await;
    let found = store.list_processes(&ProcessFilter { pid: Some(400), ..all() }).await.unwrap();
    assert_eq!(found.len(), 2);
    assert!(found[0].start_key_ns > found[1].start_key_ns);
    assert!(!found[0].exited && found[1].exited);
}

#[tokio::test]
async fn seen_processes_and_processes_known_only_by_their_exit_are_listed() {
    let store = store_with(known_world()).await;
    let bash =
        store.list_processes(&ProcessFilter { pid: Some(100), host: Some("host-a".into()), ..all() }).await.unwrap();
    assert!(bash[0].seen_running);
    assert_eq!(bash[0].argv, vec!["bash", "--login"]);
    let sleep = store.list_processes(&ProcessFilter { pid: Some(500), ..all() }).await.unwrap();
    assert_eq!((sleep[0].comm.as_str(), sleep[0].exit_code, sleep[0].ppid), ("sleep", 3, 1));
}

#[tokio::test]
async fn children_by_parent_and_alive_in_range() {
    let store = store_with(known_world()).await;
    let children =
        store.list_processes(&ProcessFilter { ppids: vec![100], host: Some("host-a".into()), ..all() }).await.unwrap();
    let pids: Vec<u32> = children.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![400, 400, 200]);
    // Alive between 5.5 s and 6.5 s: bash (never exits), 300 (exits at 6 s), 500 (exits at 10 s); 200 exited at 3 s.
    let range = TimeRange { start_ns: Some(5_500_000_000 + WALL_OFFSET), end_ns: Some(6_500_000_000 + WALL_OFFSET) };
    let alive = store.list_processes(&ProcessFilter { range, host: Some("host-a".into()), ..all() }).await.unwrap();
    let mut pids: Vec<u32> = alive.iter().map(|p| p.pid).collect();
    pids.sort();
    assert_eq!(pids, vec![100, 300, 500]);
}

#[tokio::test]
async fn failed_execs_do_not_rename_the_process() {
    let store = store_with(known_world()).await;
    let found = store.list_processes(&ProcessFilter { name_contains: Some("nope".into()), ..all() }).await.unwrap();
    assert!(found.is_empty());
}

#[tokio::test]
async fn writing_the_same_rows_twice_changes_nothing() {
    let rows = Arc::new(RowSet { process_events: generated_world(7, 200), ..Default::default() });
    let store = SqliteStore::in_memory().await.unwrap();
    store.write(rows.clone()).await.unwrap();
    let once = store.list_processes(&all()).await.unwrap();
    let stats_once = store.pipeline_stats().await.unwrap();
    store.write(rows.clone()).await.unwrap();
    assert_eq!(store.list_processes(&all()).await.unwrap(), once);
    assert_eq!(store.pipeline_stats().await.unwrap(), stats_once);
    assert_eq!(stats_once.process_events, rows.process_events.len() as u64);
}
