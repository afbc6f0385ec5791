//! The query API over a real gRPC connection, answered from a store holding a
//! known process world: listing filters, the tree with ancestors, pid reuse,
//! and errors mapped to gRPC codes.

use std::sync::Arc;

use plumbline_proto::v1::{
    query_service_client::QueryServiceClient, ListProcessesRequest, PipelineStatsRequest, ProcessTreeNode,
    ProcessTreeRequest,
};
use plumbline_store::{sqlite::SqliteStore, ProcessEventKind, ProcessEventRow, RowSet, Store, StoreWrite};
use tokio_util::sync::CancellationToken;

const S: u64 = 1_000_000_000;

fn row(pid: u32, ppid: u32, start: u64, kind: ProcessEventKind, ts: u64, argv: &[&str]) -> ProcessEventRow {
    ProcessEventRow {
        host: "node-1".into(),
        boot_id: "boot".into(),
        pid,
        start_key_ns: start,
        kind: kind as u8,
        ts_ns: ts,
        wall_ns: ts,
        start_wall_ns: start,
        ppid,
        uid: 0,
        gid: 0,
        comm: argv.first().map_or("", |a| a).into(),
        exe: argv.first().map_or("", |a| a).into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        argv_truncated: false,
        cgroup_id: 0,
        exit_code: 0,
        exit_signal: 0,
        core_dumped: false,
        errno: 0,
    }
}

/// init(1) → sshd(10) → bash(20) → { make(30) → cc(40), ls(31) };
/// pid 30 is reused later by an unrelated process under init.
fn world() -> Vec<ProcessEventRow> {
    use ProcessEventKind::*;
    vec![
        row(1, 0, S, Seen, 100 * S, &["init"]),
        row(10, 1, 2 * S, Seen, 100 * S, &["sshd"]),
        row(20, 10, 3 * S, Exec, 3 * S, &["bash"]),
        row(30, 20, 4 * S, Fork, 4 * S, &["bash"]),
        row(30, 20, 4 * S, Exec, 4 * S + 1, &["make", "all"]),
        row(40, 30, 5 * S, Exec, 5 * S, &["cc", "-c", "a.c"]),
        ProcessEventRow { exit_code: 1, ..row(40, 30, 5 * S, Exit, 6 * S, &["cc"]) },
        row(30, 20, 4 * S, Exit, 7 * S, &["make"]),
        row(31, 20, 8 * S, Exec, 8 * S, &["ls"]),
        row(30, 1, 9 * S, Exec, 9 * S, &["cron"]),
    ]
}

async fn serve() -> QueryServiceClient<tonic::transport::Channel> {
    let store = SqliteStore::in_memory().await.unwrap();
    store.write(Arc::new(RowSet { process_events: world(), ..Default::default() })).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let (listener, addr) = plumbline_query::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(plumbline_query::serve(store, listener, Default::default(), CancellationToken::new()));
    QueryServiceClient::connect(format!("http://{addr}")).await.unwrap()
}

fn pids(node: &ProcessTreeNode) -> Vec<u32> {
    node.children.iter().map(|c| c.process.as_ref().unwrap().pid).collect()
}

#[tokio::test]
async fn the_tree_of_bash_has_its_ancestors_and_descendants_and_ignores_a_reused_pid() {
    let mut client = serve().await;
    let tree = client
        .process_tree(ProcessTreeRequest { host: "node-1".into(), pid: 20, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let ancestors: Vec<u32> = tree.ancestors.iter().map(|p| p.pid).collect();
    assert_eq!(ancestors, vec![10, 1]);
    let root = tree.root.unwrap();
    assert_eq!(pids(&root), vec![30, 31], "children in start order");
    let make = &root.children[0];
    assert_eq!(make.process.as_ref().unwrap().argv, vec!["make", "all"]);
    assert_eq!(pids(make), vec![40], "cc is under make, and cron (a later pid 30) is not");
    assert_eq!(make.children[0].process.as_ref().unwrap().exit_code, 1);
}

#[tokio::test]
async fn the_most_recent_process_with_a_pid_is_the_tree_root_and_depth_is_bounded() {
    let mut client = serve().await;
    let tree = client
        .process_tree(ProcessTreeRequest { host: "node-1".into(), pid: 30, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tree.root.unwrap().process.unwrap().argv, vec!["cron"]);
    let shallow = client
        .process_tree(ProcessTreeRequest { host: "node-1".into(), pid: 1, max_depth: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let root = shallow.root.unwrap();
    assert_eq!(pids(&root), vec![10, 30]);
    assert!(root.children.iter().all(|c| c.children.is_empty()));
}

#[tokio::test]
async fn listing_filters_by_name_argv_and_parent() {
    let mut client = serve().await;
    let list = |request: ListProcessesRequest| {
        let mut client = client.clone();
        async move { client.list_processes(request).await.unwrap().into_inner().processes }
    };
    let by_name = list(ListProcessesRequest { name_contains: "cc".into(), ..Default::default() }).await;
    assert_eq!(by_name.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![40]);
    let by_argv = list(ListProcessesRequest { argv_contains: "a.c".into(), ..Default::default() }).await;
    assert_eq!(by_argv.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![40]);
    let children = list(ListProcessesRequest { ppid: 20, ..Default::default() }).await;
    assert_eq!(children.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![31, 30]);
    let stats = client.pipeline_stats(PipelineStatsRequest {}).await.unwrap().into_inner();
    assert_eq!((stats.process_events, stats.hosts), (10, vec!["node-1".to_string()]));
}

#[tokio::test]
async fn unknown_processes_and_incomplete_requests_get_grpc_error_codes() {
    let mut client = serve().await;
    let missing = client
        .process_tree(ProcessTreeRequest { host: "node-1".into(), pid: 999, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let no_host = client.process_tree(ProcessTreeRequest { pid: 1, ..Default::default() }).await.unwrap_err();
    assert_eq!(no_host.code(), tonic::Code::InvalidArgument);
    let backwards = client
        .list_processes(ListProcessesRequest {
            range: Some(plumbline_proto::v1::TimeRange { start_ns: 10, end_ns: 5 }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), tonic::Code::InvalidArgument);
}
