//! The policy each node has in force is its latest status, on both stores
//! alike: a later status replaces an earlier one (a failed reload keeps the
//! roles in force), a re-delivery changes nothing, and the host and range
//! choose which statuses count. Needs PLUMBLINE_TEST_CLICKHOUSE
//! (scripts/test.sh starts one).

use std::sync::Arc;

use plumbline_store::{
    clickhouse::ClickHouseStore, enforcement_tier, sqlite::SqliteStore, to_json_column, ActivityFilter,
    ClickHouseConfig, PolicyFamily, PolicyRole, PolicyStatusRow, RowSet, Store, TimeRange,
};

const SECOND: u64 = 1_000_000_000;
const WALL: u64 = 1_700_000_000 * SECOND;

fn status(host: &str, at_s: u64, version: &str, reload_error: &str) -> PolicyStatusRow {
    let roles = [PolicyRole {
        name: "coder".into(),
        exec: Some(PolicyFamily { mode: "audit".into(), rules: "2 allowed".into() }),
        files: None,
        network: Some(PolicyFamily { mode: "enforce".into(), rules: "1 address rule(s)".into() }),
        llm: None,
    }];
    PolicyStatusRow {
        host: host.into(),
        boot_id: "boot-1".into(),
        ts_ns: at_s * SECOND,
        wall_ns: WALL + at_s * SECOND,
        tier: enforcement_tier::FALLBACK,
        bpf_lsm_listed: 0,
        policy_file: "/etc/plumbline/policy.toml".into(),
        policy_version: version.into(),
        reload_error: reload_error.into(),
        roles: to_json_column(&roles),
        caveats: vec!["exec: killed once it succeeded".into(), "files: io_uring opens not covered".into()],
    }
}

async fn both_stores(rows: RowSet) -> Vec<Box<dyn Store>> {
    let url = std::env::var("PLUMBLINE_TEST_CLICKHOUSE")
        .expect("PLUMBLINE_TEST_CLICKHOUSE is not set: run the tests with scripts/test.sh, which starts ClickHouse");
    let database = format!("plumbline_policy_{}", uuid::Uuid::new_v4().simple());
    let clickhouse = ClickHouseStore::open(&ClickHouseConfig { url, database, ..Default::default() }).await.unwrap();
    let stores: Vec<Box<dyn Store>> = vec![Box::new(clickhouse), Box::new(SqliteStore::in_memory().await.unwrap())];
    let rows = Arc::new(rows);
    for store in &stores {
        store.write(rows.clone()).await.unwrap();
        store.write(rows.clone()).await.unwrap();
    }
    stores
}

#[tokio::test(flavor = "multi_thread")]
async fn each_host_s_latest_status_is_its_policy_on_both_stores() {
    let broken = "roles[0].mode: unknown variant `sometimes`, expected `audit` or `enforce` (line 3)";
    let rows = RowSet {
        policy_status: vec![
            status("host-b", 5, "bbb", ""),
            status("host-a", 1, "aaa", ""),
            status("host-a", 61, "aaa", ""),
            status("host-a", 70, "aaa", broken),
        ],
        ..Default::default()
    };
    let all = ActivityFilter { limit: 100, ..Default::default() };
    for store in both_stores(rows).await {
        let what = store.describe();
        let nodes = store.list_policy(&all).await.unwrap();
        let seen: Vec<(&str, u64, &str)> =
            nodes.iter().map(|n| (n.host.as_str(), n.wall_ns - WALL, n.reload_error.as_str())).collect();
        assert_eq!(seen, [("host-a", 70 * SECOND, broken), ("host-b", 5 * SECOND, "")], "{what}");
        let roles = nodes[0].role_list().unwrap();
        assert_eq!(roles.len(), 1, "{what}: the roles in force stay listed beside the failed reload");
        assert_eq!(roles[0].exec.as_ref().map(|f| f.mode.as_str()), Some("audit"), "{what}");
        assert!(roles[0].files.is_none(), "{what}");
        assert_eq!(nodes[0].caveats.len(), 2, "{what}");
        assert_eq!(enforcement_tier::name(nodes[0].tier), "fallback", "{what}");

        let host_b = ActivityFilter { host: Some("host-b".into()), ..all.clone() };
        let nodes = store.list_policy(&host_b).await.unwrap();
        assert_eq!(nodes.iter().map(|n| n.host.as_str()).collect::<Vec<_>>(), ["host-b"], "{what}");

        let before_the_break =
            ActivityFilter { range: TimeRange { start_ns: None, end_ns: Some(WALL + 65 * SECOND) }, ..all.clone() };
        let nodes = store.list_policy(&before_the_break).await.unwrap();
        assert_eq!((nodes[0].wall_ns - WALL, nodes[0].reload_error.as_str()), (61 * SECOND, ""), "{what}");
    }
}
