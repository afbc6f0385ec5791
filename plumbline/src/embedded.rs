//! The single-host default: agent → in-process channel → aggregator →
//! embedded SQLite → query service, in one process, with no Kafka and no
//! ClickHouse. The same aggregator and query code as the fleet; only the two
//! seams (transport, store) use their local implementations.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use plumbline_aggregator::{pipeline::run_pipeline_with_control, AggregatorStats, PipelineConfig};
use plumbline_config::{ConfigError, Validate};
use plumbline_node_agent::{
    config::{BatchConfig, CaptureConfig, FilterConfig, MetricsConfig, NodeConfig},
    metrics::MoreMetrics,
    CaptureSettings,
};
use plumbline_query::{
    doors::{AccessConfig, TlsConfig},
    Doors,
};
use plumbline_store::{sqlite::SqliteStore, SqliteConfig, Store};
use plumbline_transport::channel;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Environment variables overriding `plumbline run`'s configuration.
pub const ENV_PREFIX: &str = "PLUMBLINE_RUN_";

/// `plumbline.toml`: the agent's sections, the aggregator's pipeline, the
/// SQLite file and the query service's address.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    pub node: NodeConfig,
    pub capture: CaptureConfig,
    pub filter: FilterConfig,
    pub batch: BatchConfig,
    pub metrics: MetricsConfig,
    pub pipeline: PipelineConfig,
    /// `[sqlite]`: the database file. Default `/var/lib/plumbline/plumbline.db`.
    pub sqlite: SqliteConfig,
    /// Address of the query service (gRPC and the dashboard). Default
    /// `127.0.0.1:50051`; anything but loopback needs `[access] token_file`.
    pub listen: SocketAddr,
    /// `[access]`: the token gRPC and the dashboard ask for.
    pub access: AccessConfig,
    /// `[tls]`: certificate files, to serve TLS on `listen`.
    pub tls: TlsConfig,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            node: NodeConfig::default(),
            capture: CaptureConfig::default(),
            filter: FilterConfig::default(),
            batch: BatchConfig::default(),
            metrics: MetricsConfig::default(),
            pipeline: PipelineConfig::default(),
            sqlite: SqliteConfig::default(),
            listen: plumbline_query::config::DEFAULT_LISTEN.parse().unwrap(),
            access: AccessConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl Validate for EmbeddedConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        plumbline_query::doors::check(self.listen, &self.access, &self.tls)?;
        self.capture.validate("capture")?;
        self.metrics.validate("metrics")?;
        self.batch.validate("batch")?;
        self.pipeline.validate("pipeline")
    }
}

pub async fn run(config: EmbeddedConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let doors = Doors::load(config.listen, &config.access, &config.tls)?;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&config.sqlite.path)
            .await
            .with_context(|| format!("opening {}", config.sqlite.path.display()))?,
    );
    let (listener, addr) =
        plumbline_query::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let stop_query = CancellationToken::new();
    let query_metrics = Arc::new(plumbline_query::QueryMetrics::default());
    let dashboard = plumbline_query::dashboard_url(addr, &doors);
    tracing::info!(%addr, db = %config.sqlite.path.display(), %dashboard, ?doors, "query service listening");
    let serve =
        plumbline_query::serve_doors(store.clone(), listener, doors, Arc::clone(&query_metrics), stop_query.clone());
    let query = tokio::spawn(serve);

    let (sink, source) = channel::pair(config.batch.queue_batches);
    // Quarantines go from the aggregator to the agent on a channel of their own.
    let control = plumbline_transport::control::pair();
    let (publisher, subscriber) = (Arc::new(control.clone()), Box::new(control.subscribe()));
    let aggregator_store = store.clone();
    let pipeline = config.pipeline.clone();
    let stats = Arc::new(AggregatorStats::default());
    let aggregator_stats = stats.clone();
    let more_metrics = MoreMetrics(Arc::new(move || {
        plumbline_metrics::join(&plumbline_aggregator::stats::render(&aggregator_stats), &query_metrics.render())
    }));
    let aggregator = tokio::spawn(async move {
        // Ends when the agent is gone and the channel is empty, so nothing
        // the agent sent is left unstored.
        let stop = CancellationToken::new();
        let result =
            run_pipeline_with_control(&source, aggregator_store, &pipeline, Arc::clone(&stats), &stop, Some(publisher))
                .await;
        tracing::info!(snapshot = ?stats.snapshot(), "aggregator stopped");
        result
    });

    let settings = CaptureSettings {
        node: &config.node,
        capture: &config.capture,
        filter: &config.filter,
        batch: &config.batch,
        metrics: &config.metrics,
        more_metrics: Some(&more_metrics),
    };
    let agent = plumbline_node_agent::run_with_control(settings, Arc::new(sink), Some(subscriber), shutdown).await;
    let aggregated = aggregator.await.context("aggregator task")?;
    stop_query.cancel();
    let served = query.await.context("query task")?;
    agent?;
    aggregated?;
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_named() {
        let err =
            plumbline_config::from_toml::<EmbeddedConfig>("[sqlite]\npaht = \"/tmp/x\"\n").unwrap_err().to_string();
        assert!(err.contains("paht"), "{err}");
    }
}
