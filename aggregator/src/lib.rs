//! Plumbline's aggregator: consumes event batches (Kafka, or the in-process
//! channel of the single-host default), turns them into rows and writes them
//! into the store, committing only what the store acknowledged.
//!
//! The road: [`pipeline`] receives deliveries → [`batch_rows`] decodes each
//! into rows (or a dead letter) → the store writes → the source commits.

pub mod batch_rows;
pub mod config;
pub mod pipeline;
pub mod stats;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use plumbline_store::{Store, StoreConfig};
use plumbline_transport::kafka;
use tokio_util::sync::CancellationToken;

pub use config::{AggregatorConfig, PipelineConfig};
pub use stats::{AggregatorSnapshot, AggregatorStats};

/// Opens the store, waiting for it while it is unreachable (an aggregator
/// started before its ClickHouse is normal in a rollout). `None` on shutdown.
pub async fn open_store(config: &StoreConfig, shutdown: &CancellationToken) -> anyhow::Result<Option<Arc<dyn Store>>> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match plumbline_store::open(config).await {
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
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(err) => return Err(err).context("opening the store"),
        }
    }
}

/// The fleet aggregator: Kafka in, the configured store out, until `shutdown`.
pub async fn run(config: &AggregatorConfig, shutdown: CancellationToken) -> anyhow::Result<AggregatorSnapshot> {
    let Some(store) = open_store(&config.store, &shutdown).await? else {
        return Ok(AggregatorSnapshot::default());
    };
    let source_config = &config.source;
    if source_config.create_topic {
        kafka::ensure_topic(
            &source_config.brokers,
            &source_config.topic,
            source_config.topic_partitions,
            source_config.topic_replication,
            &source_config.librdkafka,
        )
        .await?;
    }
    let mut source = kafka::KafkaSource::new(source_config).context("creating the Kafka consumer")?;
    tracing::info!(topic = %source_config.topic, group = %source_config.group_id, "consuming");
    let stats = AggregatorStats::default();
    pipeline::run_pipeline(&mut source, store.as_ref(), &config.pipeline, &stats, &shutdown).await?;
    let snapshot = stats.snapshot();
    tracing::info!(?snapshot, "aggregator stopped");
    Ok(snapshot)
}
