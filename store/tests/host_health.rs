//! Host health on both stores alike: each host's newest row (whatever the
//! range's start), its events and losses in the range, events per minute
//! and losses per minute by kind; a re-delivery changes nothing, and the
//! host filter holds. Needs PLUMBLINE_TEST_CLICKHOUSE (scripts/test.sh
//! starts one).

use std::sync::Arc;

mod support;

use plumbline_store::{
    clickhouse::ClickHouseStore, sqlite::SqliteStore, ActivityFilter, ClickHouseConfig, HostMinuteRow, HostRow,
    LossMarkerRow, LossMinuteRow, ProcessEventKind, RowSet, Store, TimeRange,
};
use support::*;

const MINUTE: u64 = 60 * SECOND;

async fn both_stores(rows: RowSet) -> Vec<(&'static str, Box<dyn Store>)> {
    let url = std::env::var("PLUMBLINE_TEST_CLICKHOUSE")
        .expect("PLUMBLINE_TEST_CLICKHOUSE is not set: run the tests with scripts/test.sh, which starts ClickHouse");
    let database = format!("plumbline_hosts_{}", uuid::Uuid::new_v4().simple());
    let clickhouse = ClickHouseStore::open(&ClickHouseConfig { url, database, ..Default::default() }).await.unwrap();
    let stores: Vec<(&str, Box<dyn Store>)> =
        vec![("clickhouse", Box::new(clickhouse)), ("sqlite", Box::new(SqliteStore::in_memory().await.unwrap()))];
    let rows = Arc::new(rows);
    for (_, store) in &stores {
        store.write(rows.clone()).await.unwrap();
        store.write(rows.clone()).await.unwrap();
    }
    stores
}

fn loss(host: &str, kind: &str, count: u64, at_ns: u64) -> LossMarkerRow {
    LossMarkerRow {
        host: host.into(),
        boot_id: "boot-1".into(),
        kind: kind.into(),
        reason: 1,
        cpu: 0,
        count,
        from_ns: at_ns,
        to_ns: at_ns + SECOND,
        from_wall_ns: WALL_OFFSET + at_ns,
        to_wall_ns: WALL_OFFSET + at_ns + SECOND,
    }
}

fn minute_of(ts_ns: u64) -> u64 {
    (WALL_OFFSET + ts_ns) / MINUTE * MINUTE
}

#[tokio::test(flavor = "multi_thread")]
async fn each_host_s_last_batch_and_its_events_and_losses_per_minute_are_the_same_on_both_stores() {
    // Times on the boot clock; minute 0 starts at `base`.
    let base = MINUTE - WALL_OFFSET % MINUTE;
    let at = |minute: u64, second: u64| base + minute * MINUTE + second * SECOND;
    let rows = RowSet {
        process_events: vec![
            row("host-a", 10, at(0, 1), ProcessEventKind::Exec, at(0, 1)),
            row("host-a", 11, at(0, 2), ProcessEventKind::Exec, at(0, 2)),
            row("host-a", 11, at(0, 2), ProcessEventKind::Exit, at(1, 30)),
            // host-b went quiet in minute 0.
            row("host-b", 20, at(0, 5), ProcessEventKind::Exec, at(0, 5)),
        ],
        loss_markers: vec![loss("host-a", "proc_exec", 3, at(1, 10)), loss("host-a", "file_open", 4, at(1, 20))],
        ..Default::default()
    };
    for (name, store) in both_stores(rows).await {
        let everything = ActivityFilter { limit: 10_000, ..Default::default() };
        let health = store.host_health(&everything).await.unwrap();
        assert_eq!(
            health.hosts,
            [
                HostRow { host: "host-b".into(), last_seen_wall_ns: WALL_OFFSET + at(0, 5), events: 1, lost: 0 },
                HostRow { host: "host-a".into(), last_seen_wall_ns: WALL_OFFSET + at(1, 30), events: 3, lost: 7 },
            ],
            "{name}: stalest first"
        );
        let minute = |m: u64| minute_of(at(m, 0));
        assert_eq!(
            health.events_per_minute,
            [
                HostMinuteRow { host: "host-a".into(), minute_wall_ns: minute(1), events: 1 },
                HostMinuteRow { host: "host-a".into(), minute_wall_ns: minute(0), events: 2 },
                HostMinuteRow { host: "host-b".into(), minute_wall_ns: minute(0), events: 1 },
            ],
            "{name}: newest minute first"
        );
        assert_eq!(
            health.losses_per_minute,
            [
                LossMinuteRow { host: "host-a".into(), kind: "file_open".into(), minute_wall_ns: minute(1), lost: 4 },
                LossMinuteRow { host: "host-a".into(), kind: "proc_exec".into(), minute_wall_ns: minute(1), lost: 3 },
            ],
            "{name}"
        );

        // A range starting in minute 1: host-b is still listed, with its
        // newest row and nothing in the range.
        let from_minute_1 = ActivityFilter {
            range: TimeRange { start_ns: Some(WALL_OFFSET + at(1, 0)), end_ns: None },
            ..everything.clone()
        };
        let health = store.host_health(&from_minute_1).await.unwrap();
        let b = health.hosts.iter().find(|h| h.host == "host-b").expect("host-b listed");
        assert_eq!((b.last_seen_wall_ns, b.events), (WALL_OFFSET + at(0, 5), 0), "{name}");
        let a = health.hosts.iter().find(|h| h.host == "host-a").unwrap();
        assert_eq!((a.events, a.lost), (1, 7), "{name}");
        assert!(health.events_per_minute.iter().all(|m| m.minute_wall_ns >= minute(1)), "{name}");

        // A range ending in minute 0: what came later is not seen yet.
        let until_minute_0 = ActivityFilter {
            range: TimeRange { start_ns: None, end_ns: Some(WALL_OFFSET + at(0, 30)) },
            ..everything.clone()
        };
        let health = store.host_health(&until_minute_0).await.unwrap();
        let a = health.hosts.iter().find(|h| h.host == "host-a").unwrap();
        assert_eq!((a.last_seen_wall_ns, a.events, a.lost), (WALL_OFFSET + at(0, 2), 2, 0), "{name}");
        assert!(health.losses_per_minute.is_empty(), "{name}");

        let only_b = ActivityFilter { host: Some("host-b".into()), ..everything.clone() };
        let health = store.host_health(&only_b).await.unwrap();
        assert_eq!(health.hosts.len(), 1, "{name}");
        assert!(health.events_per_minute.iter().all(|m| m.host == "host-b"), "{name}");
        assert!(health.losses_per_minute.is_empty(), "{name}");
    }
}
