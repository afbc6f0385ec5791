//! The aggregator's configuration (`aggregator.toml`, env prefix
//! `PLUMBLINE_AGGREGATOR_`).

use plumbline_config::{invalid, ConfigError, Validate};
use plumbline_store::StoreConfig;
use plumbline_transport::kafka::KafkaSourceConfig;
use serde::{Deserialize, Serialize};

use crate::collective_join::JoinSettings;

pub const ENV_PREFIX: &str = "PLUMBLINE_AGGREGATOR_";

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// `[source]`: the Kafka topic and consumer group.
    pub source: KafkaSourceConfig,
    /// `[store]`: where rows go.
    pub store: StoreConfig,
    pub pipeline: PipelineConfig,
}

impl Validate for AggregatorConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.source.validate("source")?;
        self.store.validate("store")?;
        self.pipeline.validate("pipeline")
    }
}

/// `[pipeline]`: how deliveries are grouped into store writes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Deliveries (agent batches) per store write. Default 64.
    pub max_batches: usize,
    /// How long to wait for more deliveries once one arrived. Default 200.
    pub linger_ms: u64,
    /// `[pipeline.gpu]`: how NCCL collectives are judged across ranks.
    pub gpu: GpuJoinConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { max_batches: 64, linger_ms: 200, gpu: GpuJoinConfig::default() }
    }
}

/// `[pipeline.gpu]`: when the collective join calls a rank a straggler and a
/// collective hung. One aggregator must see every rank of a communicator:
/// node agents key NCCL batches by communicator, so Kafka puts them on one
/// partition.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuJoinConfig {
    /// The last rank is a straggler when it arrived at least this long after
    /// the median rank ... Default 5.
    pub straggler_min_ms: u64,
    /// ... and at least this many times the median rank's distance from the
    /// median. Default 4.
    pub straggler_spread_factor: u64,
    /// Ranks still missing this long after a collective's first call reached
    /// the aggregator make it a hang. Default 30000.
    pub hang_after_ms: u64,
    /// How often open collectives are checked for hangs. Default 1000.
    pub hang_check_interval_ms: u64,
    /// The largest clock offset between hosts that the join estimates and
    /// takes out; a whole host uniformly late by less looks like an offset.
    /// 0 turns the correction off. Default 100.
    pub clock_skew_max_ms: u64,
}

impl Default for GpuJoinConfig {
    fn default() -> Self {
        let settings = JoinSettings::default();
        Self {
            straggler_min_ms: settings.straggler_min_ns / 1_000_000,
            straggler_spread_factor: settings.straggler_spread_factor,
            hang_after_ms: settings.hang_after_ns / 1_000_000,
            hang_check_interval_ms: 1000,
            clock_skew_max_ms: settings.clock_skew_max_ns / 1_000_000,
        }
    }
}

impl GpuJoinConfig {
    pub fn settings(&self) -> JoinSettings {
        JoinSettings {
            straggler_min_ns: self.straggler_min_ms * 1_000_000,
            straggler_spread_factor: self.straggler_spread_factor,
            hang_after_ns: self.hang_after_ms * 1_000_000,
            clock_skew_max_ns: self.clock_skew_max_ms * 1_000_000,
        }
    }
}

impl PipelineConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.max_batches == 0 {
            return Err(invalid(&format!("{prefix}.max_batches"), "must be above 0"));
        }
        if self.gpu.hang_after_ms == 0 {
            return Err(invalid(&format!("{prefix}.gpu.hang_after_ms"), "must be above 0"));
        }
        if self.gpu.hang_check_interval_ms == 0 {
            return Err(invalid(&format!("{prefix}.gpu.hang_check_interval_ms"), "must be above 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_read_kafka_and_write_clickhouse() {
        let config: AggregatorConfig = plumbline_config::from_toml("").unwrap();
        assert_eq!(config.source.group_id, "plumbline-aggregator");
        assert!(matches!(config.store, StoreConfig::Clickhouse(_)));
    }

    #[test]
    fn store_keys_sit_under_store_and_unknown_ones_are_named() {
        let config: AggregatorConfig =
            plumbline_config::from_toml("[store]\nkind = \"sqlite\"\npath = \"/tmp/x.db\"\n").unwrap();
        assert!(matches!(config.store, StoreConfig::Sqlite(ref s) if s.path.to_str() == Some("/tmp/x.db")));
        let err = plumbline_config::from_toml::<AggregatorConfig>("[store]\nkind = \"clickhouse\"\nurll = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
    }
}
