//! Plumbline's aggregator: consumes event batches (Kafka, or the in-process
//! channel of the single-host default), turns them into rows and writes them
//! into the store, committing only what the store acknowledged.
//!
//! The road: [`pipeline`] receives deliveries → [`batch_rows`] decodes each
//! into rows (or a dead letter) → the store writes → the source commits.
//! [`metrics`] serves its counters to Prometheus.

mod activity_rows;
pub mod batch_rows;
pub mod claims;
pub mod collective_join;
mod collectives;
pub mod config;
pub mod events;
mod gpu_rows;
mod llm_rows;
pub mod metrics;
pub mod pipeline;
mod policy_rows;
pub mod quarantine;
pub mod session_graph;
mod sessions;
pub mod stats;

use anyhow::Context;
use plumbline_transport::kafka;
use tokio_util::sync::CancellationToken;

pub use config::{AggregatorConfig, GpuJoinConfig, PipelineConfig, SessionsConfig};
pub use stats::{AggregatorSnapshot, AggregatorStats};

/// The fleet aggregator: Kafka in, the configured store out, until `shutdown`.
pub async fn run(config: &AggregatorConfig, shutdown: CancellationToken) -> anyhow::Result<AggregatorSnapshot> {
    let Some(store) = plumbline_store::open_when_ready(&config.store, &shutdown).await? else {
        return Ok(AggregatorSnapshot::default());
    };
    let source_config = &config.source;
    if source_config.create_topic {
        kafka::spawn_topic_creation(source_config.topic_spec());
    }
    let source = kafka::KafkaSource::new(source_config).context("creating the Kafka consumer")?;
    tracing::info!(topic = %source_config.topic, group = %source_config.group_id, "consuming");
    let stats = std::sync::Arc::new(AggregatorStats::default());
    let exposition = stats.clone();
    let render = std::sync::Arc::new(move || stats::render(&exposition));
    plumbline_metrics::spawn(&config.metrics.listen, render, shutdown.clone()).context("metrics.listen")?;
    // Quarantines go out on the control topic, to every node agent.
    let control_spec = source_config.control_spec();
    if source_config.create_topic {
        kafka::spawn_topic_creation(control_spec.clone());
    }
    let control: std::sync::Arc<dyn plumbline_transport::control::ControlPublisher> = std::sync::Arc::new(
        kafka::KafkaControlPublisher::new(&control_spec).context("creating the control topic's producer")?,
    );
    pipeline::run_pipeline_with_control(&source, store, &config.pipeline, stats.clone(), &shutdown, Some(control))
        .await?;
    let snapshot = stats.snapshot();
    tracing::info!(?snapshot, "aggregator stopped");
    Ok(snapshot)
}
