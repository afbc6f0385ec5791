//! What the store tests of the aggregator share: a fresh store of each kind.

use std::sync::Arc;

use plumbline_store::{clickhouse::ClickHouseStore, sqlite::SqliteStore, ClickHouseConfig, Store};

/// A ClickHouse database of its own (named `plumbline_<what>_...`), so runs
/// and tests never share rows.
pub async fn clickhouse(what: &str) -> Arc<dyn Store> {
    let url = std::env::var("PLUMBLINE_TEST_CLICKHOUSE")
        .expect("PLUMBLINE_TEST_CLICKHOUSE is not set: run the tests with scripts/test.sh, which starts ClickHouse");
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let database = format!("plumbline_{what}_{}_{nanos}_{n}", std::process::id());
    Arc::new(ClickHouseStore::open(&ClickHouseConfig { url, database, ..Default::default() }).await.unwrap())
}

/// A fresh store of each kind.
pub async fn stores(what: &str) -> Vec<(&'static str, Arc<dyn Store>)> {
    vec![("sqlite", Arc::new(SqliteStore::in_memory().await.unwrap())), ("clickhouse", clickhouse(what).await)]
}
