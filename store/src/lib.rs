//! The seam between aggregators/query services and storage.
//!
//! [`Store`] is written by the aggregator and read by the query service. Two
//! implementations sit side by side: [`clickhouse::ClickHouseStore`] for fleets
//! and [`sqlite::SqliteStore`] for the single-host default. Table rows and
//! their DDL for both live together under [`tables`]; each backend holds its
//! own SQL for the reads, and a differential test keeps their answers equal.

pub mod activity;
pub mod clickhouse;
mod config;
mod dialect;
mod error;
pub mod gpu;
pub mod llm;
mod process_query;
pub mod sessions;
pub mod sqlite;
pub mod tables;

use std::sync::Arc;

use async_trait::async_trait;

pub use activity::{ActivityFilter, FileActivityRow, IpcUsageRow};
pub use config::{ClickHouseConfig, SqliteConfig, StoreConfig};
pub use error::StoreError;
pub use gpu::{GpuCallRow, GpuFilter, GpuJobRow, GpuKernelRow, GpuStragglerRow};
pub use llm::{AgentActivityRow, TokenUsageHourRow};
pub use process_query::{PipelineStats, ProcessFilter, ProcessRecord, TimeRange};
pub use sessions::{EffectFilter, SessionFilter, SessionFindingsRow, SessionRow};
pub use tables::{
    direction, edge_relation, file_op, finding_kind, ipc_kind, ipc_op, node_kind, to_json_column, transport,
    AgentProcessRow, CollectiveVerdictRow, ContainerRow, CudaCallRow, DeadLetterRow, DnsQueryRow, FileEventRow,
    FileWriteRow, FindingRow, IpcEventRow, KernelLaunchesRow, LlmCallRow, LlmFinding, LlmToolCall, LlmToolResult,
    LossMarkerRow, MissingRank, NcclCallRow, NetConnectionRow, NetFlowRow, ProcessEventKind, ProcessEventRow,
    RankValue, SessionEdgeRow, SessionNodeRow, SqliteRow, TlsStackRow,
};

/// Rows of one write, for all tables; written together or not at all as far
/// as the caller's commit is concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowSet {
    pub process_events: Vec<ProcessEventRow>,
    pub dead_letters: Vec<DeadLetterRow>,
    pub loss_markers: Vec<LossMarkerRow>,
    pub file_events: Vec<FileEventRow>,
    pub file_writes: Vec<FileWriteRow>,
    pub net_connections: Vec<NetConnectionRow>,
    pub net_flows: Vec<NetFlowRow>,
    pub dns_queries: Vec<DnsQueryRow>,
    pub ipc_events: Vec<IpcEventRow>,
    pub containers: Vec<ContainerRow>,
    pub llm_calls: Vec<LlmCallRow>,
    pub agent_processes: Vec<AgentProcessRow>,
    pub tls_stacks: Vec<TlsStackRow>,
    pub nccl_calls: Vec<NcclCallRow>,
    pub cuda_calls: Vec<CudaCallRow>,
    pub kernel_launches: Vec<KernelLaunchesRow>,
    pub collective_verdicts: Vec<CollectiveVerdictRow>,
    pub session_nodes: Vec<SessionNodeRow>,
    pub session_edges: Vec<SessionEdgeRow>,
    pub findings: Vec<FindingRow>,
}

/// Visits the tables whose rows map to both stores generically (all but
/// `process_events` and `dead_letters`, which each backend writes itself).
pub trait TableVisitor<'a> {
    type Error;

    fn visit<T>(&mut self, table: &'static str, rows: &'a [T]) -> Result<(), Self::Error>
    where
        T: SqliteRow + ::clickhouse::RowOwned + ::clickhouse::RowWrite + Send + Sync;
}

impl RowSet {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.process_events.len()
            + self.dead_letters.len()
            + self.loss_markers.len()
            + self.file_events.len()
            + self.file_writes.len()
            + self.net_connections.len()
            + self.net_flows.len()
            + self.dns_queries.len()
            + self.ipc_events.len()
            + self.containers.len()
            + self.llm_calls.len()
            + self.agent_processes.len()
            + self.tls_stacks.len()
            + self.nccl_calls.len()
            + self.cuda_calls.len()
            + self.kernel_launches.len()
            + self.collective_verdicts.len()
            + self.session_nodes.len()
            + self.session_edges.len()
            + self.findings.len()
    }

    pub fn extend(&mut self, other: RowSet) {
        self.process_events.extend(other.process_events);
        self.dead_letters.extend(other.dead_letters);
        self.loss_markers.extend(other.loss_markers);
        self.file_events.extend(other.file_events);
        self.file_writes.extend(other.file_writes);
        self.net_connections.extend(other.net_connections);
        self.net_flows.extend(other.net_flows);
        self.dns_queries.extend(other.dns_queries);
        self.ipc_events.extend(other.ipc_events);
        self.containers.extend(other.containers);
        self.llm_calls.extend(other.llm_calls);
        self.agent_processes.extend(other.agent_processes);
        self.tls_stacks.extend(other.tls_stacks);
        self.nccl_calls.extend(other.nccl_calls);
        self.cuda_calls.extend(other.cuda_calls);
        self.kernel_launches.extend(other.kernel_launches);
        self.collective_verdicts.extend(other.collective_verdicts);
        self.session_nodes.extend(other.session_nodes);
        self.session_edges.extend(other.session_edges);
        self.findings.extend(other.findings);
    }

    /// Each generic table's rows; a table is named like its field.
    pub fn visit_tables<'a, V: TableVisitor<'a>>(&'a self, visitor: &mut V) -> Result<(), V::Error> {
        visitor.visit("loss_markers", &self.loss_markers)?;
        visitor.visit("file_events", &self.file_events)?;
        visitor.visit("file_writes", &self.file_writes)?;
        visitor.visit("net_connections", &self.net_connections)?;
        visitor.visit("net_flows", &self.net_flows)?;
        visitor.visit("dns_queries", &self.dns_queries)?;
        visitor.visit("ipc_events", &self.ipc_events)?;
        visitor.visit("containers", &self.containers)?;
        visitor.visit("llm_calls", &self.llm_calls)?;
        visitor.visit("agent_processes", &self.agent_processes)?;
        visitor.visit("tls_stacks", &self.tls_stacks)?;
        visitor.visit("nccl_calls", &self.nccl_calls)?;
        visitor.visit("cuda_calls", &self.cuda_calls)?;
        visitor.visit("kernel_launches", &self.kernel_launches)?;
        visitor.visit("collective_verdicts", &self.collective_verdicts)?;
        visitor.visit("session_nodes", &self.session_nodes)?;
        visitor.visit("session_edges", &self.session_edges)?;
        visitor.visit("findings", &self.findings)
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// "clickhouse 18.16.1", "sqlite 3.46.0".
    fn describe(&self) -> String;

    /// Writes every row. Idempotent: writing the same rows again (a
    /// re-delivery after a crash) leaves what queries see unchanged. The rows
    /// are shared, not copied, with a backend that writes on another thread.
    async fn write(&self, rows: Arc<RowSet>) -> Result<(), StoreError>;

    /// Processes matching `filter`, newest start first.
    async fn list_processes(&self, filter: &ProcessFilter) -> Result<Vec<ProcessRecord>, StoreError>;

    async fn pipeline_stats(&self) -> Result<PipelineStats, StoreError>;

    async fn list_file_activity(&self, filter: &ActivityFilter) -> Result<Vec<FileActivityRow>, StoreError>;

    async fn list_connections(&self, filter: &ActivityFilter) -> Result<Vec<NetConnectionRow>, StoreError>;

    async fn list_flows(&self, filter: &ActivityFilter) -> Result<Vec<NetFlowRow>, StoreError>;

    async fn list_dns_queries(&self, filter: &ActivityFilter) -> Result<Vec<DnsQueryRow>, StoreError>;

    async fn list_ipc_usage(&self, filter: &ActivityFilter) -> Result<Vec<IpcUsageRow>, StoreError>;

    async fn list_containers(&self, filter: &ActivityFilter) -> Result<Vec<ContainerRow>, StoreError>;

    async fn list_loss_markers(&self, filter: &ActivityFilter) -> Result<Vec<LossMarkerRow>, StoreError>;

    /// LLM calls, newest first.
    async fn list_llm_calls(&self, filter: &ActivityFilter) -> Result<Vec<LlmCallRow>, StoreError>;

    /// Processes mapped to agents or discovered calling LLM APIs, with their calls.
    async fn list_agents(&self, filter: &ActivityFilter) -> Result<Vec<AgentActivityRow>, StoreError>;

    /// Calls and tokens per hour, agent, provider and model.
    async fn token_usage(&self, filter: &ActivityFilter) -> Result<Vec<TokenUsageHourRow>, StoreError>;

    async fn list_tls_stacks(&self, filter: &ActivityFilter) -> Result<Vec<TlsStackRow>, StoreError>;

    /// Training jobs with their collectives judged, latest first.
    async fn list_gpu_jobs(&self, filter: &GpuFilter) -> Result<Vec<GpuJobRow>, StoreError>;

    /// Ranks by how often and how late they were the last to arrive.
    async fn gpu_stragglers(&self, filter: &GpuFilter) -> Result<Vec<GpuStragglerRow>, StoreError>;

    /// Judged collectives of one verdict ("hang", "mismatch" ...).
    async fn list_collective_verdicts(
        &self,
        filter: &GpuFilter,
        verdict: &str,
    ) -> Result<Vec<CollectiveVerdictRow>, StoreError>;

    async fn gpu_kernels(&self, filter: &GpuFilter) -> Result<Vec<GpuKernelRow>, StoreError>;

    /// NCCL and CUDA calls of a rank or process, oldest first.
    async fn gpu_timeline(&self, filter: &GpuFilter) -> Result<Vec<GpuCallRow>, StoreError>;

    /// Agent sessions with activity in the range, latest first.
    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError>;

    /// One session's nodes (LLM calls, tool calls and results, effects) in
    /// time order, at most `limit`.
    async fn session_nodes(&self, session: &str, limit: u32) -> Result<Vec<SessionNodeRow>, StoreError>;

    /// One session's edges.
    async fn session_edges(&self, session: &str) -> Result<Vec<SessionEdgeRow>, StoreError>;

    /// How many findings each session matching `filter` has.
    async fn finding_counts(&self, filter: &SessionFilter) -> Result<Vec<SessionFindingsRow>, StoreError>;

    /// Findings about agent sessions, latest first.
    async fn list_findings(&self, filter: &SessionFilter) -> Result<Vec<FindingRow>, StoreError>;

    /// Effect nodes (processes, files, connections, lookups) matching
    /// `filter`, latest first.
    async fn effect_nodes(&self, filter: &EffectFilter) -> Result<Vec<SessionNodeRow>, StoreError>;
}

/// Opens the store, waiting while it is unreachable (a service started before
/// its ClickHouse is normal in a rollout). `None` when `shutdown` came first.
pub async fn open_when_ready(
    config: &StoreConfig,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Option<Arc<dyn Store>>, StoreError> {
    let mut backoff = std::time::Duration::from_millis(200);
    loop {
        match open(config).await {
            Ok(store) => {
                tracing::info!(store = %store.describe(), "store ready");
                return Ok(Some(store));
            }
            Err(err) if err.is_transient() => {
                tracing::warn!(%err, retry_in = ?backoff, "store unreachable; waiting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return Ok(None),
                }
                backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
            }
            Err(err) => return Err(err),
        }
    }
}

/// Opens the configured store, creating or migrating its schema.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config {
        StoreConfig::Clickhouse(config) => Arc::new(clickhouse::ClickHouseStore::open(config).await?),
        StoreConfig::Sqlite(config) => Arc::new(sqlite::SqliteStore::open(&config.path).await?),
    })
}

/// Nanoseconds since the Unix epoch, now: when a row was written or judged.
pub fn now_wall_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
