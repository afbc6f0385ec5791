//! The aggregator's configuration (`aggregator.toml`, env prefix
//! `PLUMBLINE_AGGREGATOR_`).

use plumbline_config::{invalid, ConfigError, Validate};
use plumbline_store::StoreConfig;
use plumbline_transport::kafka::KafkaSourceConfig;
use serde::{Deserialize, Serialize};

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
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { max_batches: 64, linger_ms: 200 }
    }
}

impl PipelineConfig {
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.max_batches == 0 {
            return Err(invalid(&format!("{prefix}.max_batches"), "must be above 0"));
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
