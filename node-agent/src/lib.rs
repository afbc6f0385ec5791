//! Plumbline's node agent: loads the eBPF programs, drains their ring
//! buffers, keeps the process table and publishes `plumbline.v1` batches to a
//! sink (Kafka, the in-process channel, or stdout).
//!
//! The road: [`probes`] attach → [`capture`] drains records, applies them to
//! the [`process_table`] and encodes them ([`kernel_events`]) into batches →
//! [`delivery`] hands each batch to the sink until it is acknowledged.

pub mod capture;
pub mod config;
pub mod delivery;
pub mod kernel_counters;
pub mod kernel_events;
pub mod node;
pub mod probes;
pub mod proc_scan;
pub mod process_table;
pub mod stats;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use plumbline_transport::{kafka, stdout::StdoutSink, BatchSink};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::{AgentConfig, CaptureSettings, SinkConfig};
pub use stats::{AgentStats, StatsSnapshot};

/// How long shutdown waits for queued batches to be delivered.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The sink `[sink]` names; for Kafka, creates the topic when asked to.
pub async fn sink_from_config(config: &SinkConfig) -> anyhow::Result<Arc<dyn BatchSink>> {
    Ok(match config {
        SinkConfig::Kafka(k) => {
            if k.create_topic {
                kafka::spawn_topic_creation(k.topic_spec());
            }
            Arc::new(kafka::KafkaSink::new(k).context("creating the Kafka producer")?)
        }
        SinkConfig::Stdout => Arc::new(StdoutSink),
    })
}

/// Captures until `shutdown` is cancelled, then delivers what is queued
/// (for up to [`SHUTDOWN_GRACE`]). Returns the agent's counters.
pub async fn run(
    config: CaptureSettings<'_>,
    sink: Arc<dyn BatchSink>,
    shutdown: CancellationToken,
) -> anyhow::Result<StatsSnapshot> {
    let node = node::identity(config.node.host.as_deref()).context("reading the node's identity")?;
    let probes = probes::ProcessProbes::attach(config.capture)?;
    let stats = Arc::new(AgentStats::default());
    let counters = kernel_counters::KernelCounters::new(probes.counters, node::boot_ns());
    let mut capture =
        capture::Capture::new(node.clone(), counters, stats.clone(), config.capture.clone(), config.batch.clone());
    capture.seed_from_proc();
    tracing::info!(host = %node.host, boot_id = %node.boot_id, sink = sink.name(), "capturing");

    let (queue, queued) = mpsc::channel(config.batch.queue_batches);
    let give_up = CancellationToken::new();
    let mut delivery = tokio::spawn(delivery::deliver(sink, queued, stats.clone(), give_up.clone()));
    let result = capture::run_loop(capture, probes.ring, &queue, &shutdown).await;
    drop(queue);
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut delivery).await.is_err() {
        give_up.cancel();
        delivery.await.context("delivery task")?;
    }
    result?;
    let snapshot = stats.snapshot();
    tracing::info!(?snapshot, "agent stopped");
    Ok(snapshot)
}
