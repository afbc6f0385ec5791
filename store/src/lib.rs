//! The seam between aggregators/query services and storage.
//!
//! [`Store`] is written by the aggregator and read by the query service. Two
//! implementations sit side by side: [`clickhouse::ClickHouseStore`] for fleets
//! and [`sqlite::SqliteStore`] for the single-host default. Table rows and
//! their DDL for both live together under [`tables`]; each backend holds its
//! own SQL for the reads, and a differential test keeps their answers equal.

pub mod clickhouse;
mod config;
mod error;
mod process_query;
pub mod sqlite;
pub mod tables;

use std::sync::Arc;

use async_trait::async_trait;

pub use config::{ClickHouseConfig, SqliteConfig, StoreConfig};
pub use error::StoreError;
pub use process_query::{PipelineStats, ProcessFilter, ProcessRecord, TimeRange};
pub use tables::{DeadLetterRow, LossMarkerRow, ProcessEventKind, ProcessEventRow};

/// Rows of one write, for all tables; written together or not at all as far
/// as the caller's commit is concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowSet {
    pub process_events: Vec<ProcessEventRow>,
    pub loss_markers: Vec<LossMarkerRow>,
    pub dead_letters: Vec<DeadLetterRow>,
}

impl RowSet {
    pub fn is_empty(&self) -> bool {
        self.process_events.is_empty()
            && self.loss_markers.is_empty()
            && self.dead_letters.is_empty()
    }

    pub fn len(&self) -> usize {
        self.process_events.len() + self.loss_markers.len() + self.dead_letters.len()
    }

    pub fn extend(&mut self, other: RowSet) {
        self.process_events.extend(other.process_events);
        self.loss_markers.extend(other.loss_markers);
        self.dead_letters.extend(other.dead_letters);
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
    async fn list_processes(
        &self,
        filter: &ProcessFilter,
    ) -> Result<Vec<ProcessRecord>, StoreError>;

    async fn pipeline_stats(&self) -> Result<PipelineStats, StoreError>;
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
        StoreConfig::Clickhouse(config) => {
            Arc::new(clickhouse::ClickHouseStore::open(config).await?)
        }
        StoreConfig::Sqlite(config) => Arc::new(sqlite::SqliteStore::open(&config.path).await?),
    })
}
