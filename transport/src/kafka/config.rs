//! Configuration of the Kafka sink (agent) and source (aggregator).

use std::collections::BTreeMap;

use plumbline_config::{invalid, ConfigError};
use serde::{Deserialize, Serialize};

/// The control topic's default name.
pub const DEFAULT_CONTROL_TOPIC: &str = "plumbline.control";

const COMPRESSIONS: &[&str] = &["zstd", "lz4", "gzip", "snappy", "none"];

/// The agent's `[sink]` with `kind = "kafka"`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, comma separated. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// Topic the batches go to. Default `plumbline.events`.
    pub topic: String,
    /// `compression.type`: `zstd` (default), `lz4`, `gzip`, `snappy` or `none`.
    pub compression: String,
    /// Topic the agent reads policy updates from (quarantines): every
    /// partition, from their end when it starts, outside any consumer group.
    /// Default `plumbline.control`.
    pub control_topic: String,
    /// Create the topic at start when it is missing. Default `true`.
    pub create_topic: bool,
    /// Partitions of a topic created here. Default 6.
    pub topic_partitions: i32,
    /// Replication factor of a topic created here. Default 1.
    pub topic_replication: i32,
    /// Extra librdkafka settings passed through unchanged
    /// (`security.protocol`, `message.timeout.ms` ...); they win over ours.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for KafkaSinkConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "plumbline.events".into(),
            compression: "zstd".into(),
            control_topic: DEFAULT_CONTROL_TOPIC.into(),
            create_topic: true,
            topic_partitions: 6,
            topic_replication: 1,
            librdkafka: BTreeMap::new(),
        }
    }
}

impl KafkaSinkConfig {
    pub fn topic_spec(&self) -> super::TopicSpec {
        super::TopicSpec {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            partitions: self.topic_partitions,
            replication: self.topic_replication,
            librdkafka: self.librdkafka.clone(),
        }
    }

    /// The control topic: one partition (updates are few; all go to every node).
    pub fn control_spec(&self) -> super::TopicSpec {
        control_spec(&self.brokers, &self.control_topic, self.topic_replication, &self.librdkafka)
    }

    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        validate_topic(prefix, &self.topic_spec())?;
        validate_control_topic(prefix, &self.control_topic)?;
        if !COMPRESSIONS.contains(&self.compression.as_str()) {
            return Err(invalid(&format!("{prefix}.compression"), format!("must be one of {COMPRESSIONS:?}")));
        }
        Ok(())
    }
}

/// The aggregator's `[source]`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSourceConfig {
    /// Bootstrap brokers, comma separated. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// Topic to consume. Default `plumbline.events`.
    pub topic: String,
    /// Consumer group; aggregators in one group share the partitions.
    /// Default `plumbline-aggregator`.
    pub group_id: String,
    /// Topic the aggregator sends policy updates (quarantines) to, for every
    /// node agent. Default `plumbline.control`.
    pub control_topic: String,
    /// `session.timeout.ms`. A new member waits about half of it before its
    /// first message on some brokers. Default 6000.
    pub session_timeout_ms: u32,
    /// Create the topic at start when it is missing. Default `true`.
    pub create_topic: bool,
    /// Partitions of a topic created here. Default 6.
    pub topic_partitions: i32,
    /// Replication factor of a topic created here. Default 1.
    pub topic_replication: i32,
    /// Extra librdkafka settings passed through unchanged; they win over ours.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for KafkaSourceConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "plumbline.events".into(),
            group_id: "plumbline-aggregator".into(),
            control_topic: DEFAULT_CONTROL_TOPIC.into(),
            session_timeout_ms: 6000,
            create_topic: true,
            topic_partitions: 6,
            topic_replication: 1,
            librdkafka: BTreeMap::new(),
        }
    }
}

impl KafkaSourceConfig {
    pub fn topic_spec(&self) -> super::TopicSpec {
        super::TopicSpec {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            partitions: self.topic_partitions,
            replication: self.topic_replication,
            librdkafka: self.librdkafka.clone(),
        }
    }

    pub fn control_spec(&self) -> super::TopicSpec {
        control_spec(&self.brokers, &self.control_topic, self.topic_replication, &self.librdkafka)
    }

    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        validate_topic(prefix, &self.topic_spec())?;
        validate_control_topic(prefix, &self.control_topic)?;
        if self.group_id.is_empty() {
            return Err(invalid(&format!("{prefix}.group_id"), "must not be empty"));
        }
        if !(1000..=3_600_000).contains(&self.session_timeout_ms) {
            return Err(invalid(&format!("{prefix}.session_timeout_ms"), "must be between 1000 and 3600000"));
        }
        Ok(())
    }
}

fn control_spec(
    brokers: &str,
    topic: &str,
    replication: i32,
    librdkafka: &BTreeMap<String, String>,
) -> super::TopicSpec {
    super::TopicSpec {
        brokers: brokers.to_string(),
        topic: topic.to_string(),
        partitions: 1,
        replication,
        librdkafka: librdkafka.clone(),
    }
}

fn validate_control_topic(prefix: &str, topic: &str) -> Result<(), ConfigError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic.is_empty() || topic.len() > 249 || !topic.chars().all(legal) {
        return Err(invalid(&format!("{prefix}.control_topic"), "must be 1-249 characters of [a-zA-Z0-9._-]"));
    }
    Ok(())
}

fn validate_topic(prefix: &str, spec: &super::TopicSpec) -> Result<(), ConfigError> {
    if spec.brokers.trim().is_empty() {
        return Err(invalid(&format!("{prefix}.brokers"), "must name at least one broker"));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if spec.topic.is_empty() || spec.topic.len() > 249 || !spec.topic.chars().all(legal) {
        return Err(invalid(&format!("{prefix}.topic"), "must be 1-249 characters of [a-zA-Z0-9._-]"));
    }
    if spec.partitions < 1 {
        return Err(invalid(&format!("{prefix}.topic_partitions"), "must be at least 1"));
    }
    if spec.replication < 1 {
        return Err(invalid(&format!("{prefix}.topic_replication"), "must be at least 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        KafkaSinkConfig::default().validate("sink.kafka").unwrap();
        KafkaSourceConfig::default().validate("source.kafka").unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let config = KafkaSinkConfig { compression: "brotli".into(), ..Default::default() };
        assert!(config.validate("sink.kafka").unwrap_err().to_string().contains("sink.kafka.compression"));
        let config = KafkaSourceConfig { topic: "bad topic".into(), ..Default::default() };
        assert!(config.validate("source.kafka").unwrap_err().to_string().contains("source.kafka.topic"));
    }
}
