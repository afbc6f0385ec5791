//! The fleet store: ClickHouse over HTTP with the `clickhouse` crate.
//!
//! Schema validation in the crate is off: it relies on a format and a setting
//! that the 18.16 servers we test against lack. Row structs therefore must
//! match their columns by hand, which `tables/` keeps next to the DDL.

mod migrations;
mod process_sql;

use std::sync::Arc;

use async_trait::async_trait;
use clickhouse::Client;

pub use crate::dialect::{Capabilities, Dialect, ServerVersion};

use crate::activity::{self, Sql, SqlArg, SqlDialect};
use crate::gpu::{self, GpuCallRow, GpuFilter, GpuJobRow, GpuKernelRow, GpuStragglerRow};
use crate::llm;
use crate::sessions::{self, EffectFilter, SessionFilter, SessionFindingsRow, SessionRow};
use crate::tables::CollectiveVerdictRow;
use crate::tables::{FindingRow, SessionEdgeRow, SessionNodeRow};
use crate::{
    ActivityFilter, AgentActivityRow, ClickHouseConfig, ContainerRow, DnsQueryRow, FileActivityRow, IpcUsageRow,
    LlmCallRow, LossMarkerRow, NetConnectionRow, NetFlowRow, PipelineStats, ProcessFilter, ProcessRecord, RowSet,
    SqliteRow, Store, StoreError, TableVisitor, TlsStackRow, TokenUsageHourRow,
};

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

    /// Runs a view's SQL with its arguments bound in order.
    async fn fetch<T>(&self, sql: Sql) -> Result<Vec<T>, StoreError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let mut query = self.client.query(&sql.text);
        for arg in sql.args {
            query = match arg {
                SqlArg::Str(v) => query.bind(v),
                SqlArg::U64(v) => query.bind(v),
            };
        }
        Ok(query.fetch_all().await?)
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

/// The SQL `list_processes` sends for `filter`, values bound.
pub fn list_processes_sql(filter: &ProcessFilter) -> String {
    process_sql::list_query(&Client::default(), filter).sql_display().to_string()
}

type PendingInsert<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Collects one INSERT per generic table, to run in order.
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
impl Store for ClickHouseStore {
    fn describe(&self) -> String {
        format!("clickhouse {}", self.version)
    }

    async fn write(&self, rows: Arc<RowSet>) -> Result<(), StoreError> {
        let mut inserts = Inserts { store: self, pending: Vec::new() };
        inserts.pending.push(Box::pin(self.insert("process_events", &rows.process_events)));
        inserts.pending.push(Box::pin(self.insert("dead_letters", &rows.dead_letters)));
        rows.visit_tables(&mut inserts)?;
        futures::future::try_join_all(inserts.pending).await?;
        Ok(())
    }

    async fn list_processes(&self, filter: &ProcessFilter) -> Result<Vec<ProcessRecord>, StoreError> {
        process_sql::list(&self.client, filter).await
    }

    async fn list_file_activity(&self, filter: &ActivityFilter) -> Result<Vec<FileActivityRow>, StoreError> {
        self.fetch(activity::file_activity_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_connections(&self, filter: &ActivityFilter) -> Result<Vec<NetConnectionRow>, StoreError> {
        self.fetch(activity::connections_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_flows(&self, filter: &ActivityFilter) -> Result<Vec<NetFlowRow>, StoreError> {
        self.fetch(activity::flows_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_dns_queries(&self, filter: &ActivityFilter) -> Result<Vec<DnsQueryRow>, StoreError> {
        self.fetch(activity::dns_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_ipc_usage(&self, filter: &ActivityFilter) -> Result<Vec<IpcUsageRow>, StoreError> {
        self.fetch(activity::ipc_usage_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_containers(&self, filter: &ActivityFilter) -> Result<Vec<ContainerRow>, StoreError> {
        self.fetch(activity::containers_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_loss_markers(&self, filter: &ActivityFilter) -> Result<Vec<LossMarkerRow>, StoreError> {
        self.fetch(activity::losses_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_llm_calls(&self, filter: &ActivityFilter) -> Result<Vec<LlmCallRow>, StoreError> {
        self.fetch(llm::llm_calls_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_agents(&self, filter: &ActivityFilter) -> Result<Vec<AgentActivityRow>, StoreError> {
        self.fetch(llm::agents_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn token_usage(&self, filter: &ActivityFilter) -> Result<Vec<TokenUsageHourRow>, StoreError> {
        self.fetch(llm::token_usage_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_tls_stacks(&self, filter: &ActivityFilter) -> Result<Vec<TlsStackRow>, StoreError> {
        self.fetch(llm::tls_stacks_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_gpu_jobs(&self, filter: &GpuFilter) -> Result<Vec<GpuJobRow>, StoreError> {
        self.fetch(gpu::gpu_jobs_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn gpu_stragglers(&self, filter: &GpuFilter) -> Result<Vec<GpuStragglerRow>, StoreError> {
        self.fetch(gpu::gpu_stragglers_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_collective_verdicts(
        &self,
        filter: &GpuFilter,
        verdict: &str,
    ) -> Result<Vec<CollectiveVerdictRow>, StoreError> {
        self.fetch(gpu::gpu_verdicts_sql(SqlDialect::ClickHouse, filter, verdict)).await
    }

    async fn gpu_kernels(&self, filter: &GpuFilter) -> Result<Vec<GpuKernelRow>, StoreError> {
        self.fetch(gpu::gpu_kernels_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn gpu_timeline(&self, filter: &GpuFilter) -> Result<Vec<GpuCallRow>, StoreError> {
        self.fetch(gpu::gpu_timeline_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        self.fetch(sessions::sessions_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn session_nodes(&self, session: &str, limit: u32) -> Result<Vec<SessionNodeRow>, StoreError> {
        self.fetch(sessions::session_nodes_sql(SqlDialect::ClickHouse, session, limit)).await
    }

    async fn session_edges(&self, session: &str) -> Result<Vec<SessionEdgeRow>, StoreError> {
        self.fetch(sessions::session_edges_sql(SqlDialect::ClickHouse, session)).await
    }

    async fn finding_counts(&self, filter: &SessionFilter) -> Result<Vec<SessionFindingsRow>, StoreError> {
        self.fetch(sessions::finding_counts_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn list_findings(&self, filter: &SessionFilter) -> Result<Vec<FindingRow>, StoreError> {
        self.fetch(sessions::findings_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn effect_nodes(&self, filter: &EffectFilter) -> Result<Vec<SessionNodeRow>, StoreError> {
        self.fetch(sessions::effect_nodes_sql(SqlDialect::ClickHouse, filter)).await
    }

    async fn pipeline_stats(&self) -> Result<PipelineStats, StoreError> {
        // FINAL: count what queries see, after de-duplication of re-deliveries.
        let process_events = self.client.query("SELECT count() FROM process_events FINAL").fetch_one().await?;
        let dead_letters = self.client.query("SELECT count() FROM dead_letters FINAL").fetch_one().await?;
        let lost_events = self.client.query("SELECT sum(count) FROM loss_markers FINAL").fetch_one().await?;
        let hosts =
            self.client.query("SELECT DISTINCT host FROM process_events ORDER BY host LIMIT 10000").fetch_all().await?;
        Ok(PipelineStats { process_events, dead_letters, lost_events, hosts })
    }
}
