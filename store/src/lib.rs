//! The seam between aggregators/query services and storage.
//!
//! The aggregator writes ([`StoreWrite`]: rows in, schema migrated at open);
//! the query service reads ([`StoreRead`]: the views). Two backends sit side
//! by side: [`clickhouse::ClickHouseStore`] for fleets and
//! [`sqlite::SqliteStore`] for the single-host default. Each table is
//! declared once under [`tables`] and rendered as DDL for both; each view is
//! written once ([`read`], over the SQL builder in `sql`) and runs on either
//! backend through [`read::Backend`]; a differential test keeps their
//! answers equal.

pub mod activity;
mod backend;
pub mod clickhouse;
mod config;
mod dialect;
mod error;
mod filter;
pub mod gpu;
pub mod gpu_arrivals;
pub mod hosts;
pub mod llm;
pub mod policy;
mod process_query;
pub mod quarantine;
pub mod read;
mod rows;
pub mod sessions;
pub mod sql;
pub mod sqlite;
pub mod tables;
mod write;

use std::sync::Arc;
use std::time::Duration;

use plumbline_retry::Backoff;

pub use activity::{FileActivityRow, IpcUsageRow};
pub use config::{ClickHouseConfig, SqliteConfig, StoreConfig};
pub use error::StoreError;
pub use filter::{ActivityFilter, TimeRange};
pub use gpu::{GpuCallRow, GpuFilter, GpuJobRow, GpuKernelRow, GpuStragglerRow};
pub use gpu_arrivals::{ArrivalCell, Bins, GpuArrivals, GpuArrivalsFilter, GpuCommunicatorRow};
pub use hosts::{HostHealthRows, HostMinuteRow, HostRow, LossMinuteRow};
pub use llm::{AgentActivityRow, TokenUsageHourRow};
pub use process_query::{PipelineStats, ProcessFilter, ProcessRecord};
pub use read::StoreRead;
pub use rows::{RowSet, TableVisitor};
pub use sessions::{EffectFilter, SessionFilter, SessionFindingsRow, SessionRow};
pub use tables::{
    decision, direction, edge_relation, enforcement_tier, family, file_op, finding_kind, ipc_kind, ipc_op, mechanism,
    node_kind, to_json_column, transport, AgentProcessRow, CollectiveVerdictRow, ContainerRow, CudaCallRow,
    DeadLetterRow, DnsQueryRow, EnforcementDecisionRow, FileEventRow, FileWriteRow, FindingRow, IpcEventRow,
    KernelLaunchesRow, LlmCallRow, LlmFinding, LlmToolCall, LlmToolResult, LossMarkerRow, MissingRank, NcclCallRow,
    NetConnectionRow, NetFlowRow, PolicyFamily, PolicyRole, PolicyStatusRow, ProcessEventKind, ProcessEventRow,
    QuarantineAckRow, QuarantineUpdateRow, RankValue, SessionEdgeRow, SessionNodeRow, SqliteRow, TlsStackRow,
};
pub use write::StoreWrite;

/// Both sides of a store, as a backend opens them.
pub trait Store: StoreWrite + StoreRead {}

impl<T: StoreWrite + StoreRead> Store for T {}

/// Opens the store, waiting while it is unreachable (a service started before
/// its ClickHouse is normal in a rollout). `None` when `shutdown` came first.
pub async fn open_when_ready(
    config: &StoreConfig,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Option<Arc<dyn Store>>, StoreError> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        match open(config).await {
            Ok(store) => {
                tracing::info!(store = %store.describe(), "store ready");
                return Ok(Some(store));
            }
            Err(err) if err.is_transient() => {
                tracing::warn!(%err, retry_in = ?backoff.next_delay(), "store unreachable; waiting");
                if !backoff.wait(shutdown).await {
                    return Ok(None);
                }
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
