//! Kafka transport (rdkafka, bundled librdkafka): the agent's producer sink
//! and the aggregator's consumer-group source.

mod config;
mod control;
mod sink;
mod source;
mod topic;

pub use config::{KafkaSinkConfig, KafkaSourceConfig};
pub use control::{KafkaControlPublisher, KafkaControlSubscriber};
pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use topic::{ensure_topic, spawn_topic_creation, TopicError, TopicSpec};

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// librdkafka settings: the brokers, our defaults for this kind of client,
/// then the operator's pass-through settings, which win.
fn client_config(brokers: &str, defaults: &[(&str, &str)], passthrough: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    config.set("client.id", "plumbline");
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    for (key, value) in passthrough {
        config.set(key, value);
    }
    config
}
