//! The fleet store: ClickHouse over HTTP with the `clickhouse` crate.
//!
//! Schema validation in the crate is off: it relies on a format and a setting
//! that the 18.16 servers we test against lack. Row structs therefore must
//! match their columns by hand, which `tables/` keeps next to the DDL.

mod migrations;

use std::sync::Arc;

use async_trait::async_trait;
use clickhouse::Client;

pub use crate::dialect::{Capabilities, Dialect, ServerVersion};

use crate::read::Backend;
use crate::sql::{Sql, SqlArg, SqlDialect};
use crate::tables::row::ViewRow;
use crate::{ClickHouseConfig, PipelineStats, ProcessFilter, RowSet, SqliteRow, StoreError, StoreWrite, TableVisitor};

pub struct ClickHouseStore {
    client: Client,
    version: ServerVersion,
    migrated_at_open: Vec<u32>,
}

impl ClickHouseStore {
    /// Connects, creates the database when missing and applies migrations.
    pub async fn open(config: &ClickHouseConfig) -> Result<Self, StoreError> {
        let server = Client::default()
            .with_url(&config.url)
            .with_user(&config.user)
            .with_password(&config.password)
            .with_validation(false);
        let version_text: String = server.query("SELECT version()").fetch_one().await?;
        let version = ServerVersion::parse(&version_text)?;
        server.query(&format!("CREATE DATABASE IF NOT EXISTS {}", config.database)).execute().await?;
        let client = server.with_database(&config.database);
        let dialect = Dialect { capabilities: Capabilities::of(version), retention_days: config.retention_days };
        if !dialect.capabilities.ttl && config.retention_days > 0 {
            tracing::warn!(%version, "this ClickHouse cannot expire rows (TTL needs 19.6); retention_days is not enforced");
        }
        let migrated_at_open = migrations::migrate(&client, &dialect, &version_text).await?;
        Ok(Self { client, version, migrated_at_open })
    }

    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// Ids of the migrations this open applied (empty when up to date).
    pub fn migrated_at_open(&self) -> &[u32] {
        &self.migrated_at_open
    }

    async fn insert<T>(&self, table: &str, rows: &[T]) -> Result<(), StoreError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        let mut insert = self.client.insert::<T>(table).await?;
        for row in rows {
            insert.write(row).await?;
        }
        let t1 = t0.elapsed();
        insert.end().await?;
        tracing::debug!(table, rows = rows.len(), write = ?t1, end = ?(t0.elapsed() - t1), "INSERT");
        Ok(())
    }
}

/// Every statement of every migration, as rendered for `version`: what
/// `open` would run on an empty database of that server.
pub fn schema_ddl(version: ServerVersion, retention_days: u32) -> Vec<String> {
    let dialect = Dialect { capabilities: Capabilities::of(version), retention_days };
    crate::tables::MIGRATIONS.iter().flat_map(|m| (m.clickhouse)(&dialect)).collect()
}

/// A view's SQL with its arguments bound in order.
fn bound(client: &Client, sql: Sql) -> clickhouse::query::Query {
    let mut query = client.query(&sql.text);
    for arg in sql.args {
        query = match arg {
            SqlArg::Str(v) => query.bind(v),
            SqlArg::U64(v) => query.bind(v),
        };
    }
    query
}

/// The SQL `list_processes` sends for `filter`, values bound.
pub fn list_processes_sql(filter: &ProcessFilter) -> String {
    let sql = crate::process_query::list_sql(SqlDialect::ClickHouse, filter);
    bound(&Client::default(), sql).sql_display().to_string()
}

type PendingInsert<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Collects one INSERT per table, to run together.
struct Inserts<'a> {
    store: &'a ClickHouseStore,
    pending: Vec<PendingInsert<'a>>,
}

impl<'a> TableVisitor<'a> for Inserts<'a> {
    type Error = StoreError;

    fn visit<T>(&mut self, table: &'static str, rows: &'a [T]) -> Result<(), StoreError>
    where
        T: SqliteRow + clickhouse::RowOwned + clickhouse::RowWrite + Send + Sync,
    {
        self.pending.push(Box::pin(self.store.insert(table, rows)));
        Ok(())
    }
}

#[async_trait]
impl StoreWrite for ClickHouseStore {
    async fn write(&self, rows: Arc<RowSet>) -> Result<(), StoreError> {
        let mut inserts = Inserts { store: self, pending: Vec::new() };
        rows.visit_tables(&mut inserts)?;
        futures::future::try_join_all(inserts.pending).await?;
        Ok(())
    }
}

#[async_trait]
impl Backend for ClickHouseStore {
    fn describe(&self) -> String {
        format!("clickhouse {}", self.version)
    }

    fn dialect(&self) -> SqlDialect {
        SqlDialect::ClickHouse
    }

    async fn fetch<T: ViewRow>(&self, sql: Sql) -> Result<Vec<T>, StoreError> {
        Ok(bound(&self.client, sql).fetch_all().await?)
    }

    async fn count_pipeline(&self) -> Result<PipelineStats, StoreError> {
        // FINAL: count what queries see, after de-duplication of re-deliveries.
        let process_events = self.client.query("SELECT count() FROM process_events FINAL").fetch_one().await?;
        let dead_letters = self.client.query("SELECT count() FROM dead_letters FINAL").fetch_one().await?;
        let lost_events = self.client.query("SELECT sum(count) FROM loss_markers FINAL").fetch_one().await?;
        let hosts =
            self.client.query("SELECT DISTINCT host FROM process_events ORDER BY host LIMIT 10000").fetch_all().await?;
        Ok(PipelineStats { process_events, dead_letters, lost_events, hosts })
    }
}
