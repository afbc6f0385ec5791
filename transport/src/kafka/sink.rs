//! The agent's Kafka producer: idempotent, compressed, keyed by host; a
//! batch counts as sent only once the broker acknowledged it.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::{
    error::KafkaError,
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
};

use super::{client_config, KafkaSinkConfig};
use crate::{BatchSink, OutgoingBatch, SinkError};

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaSink {
    pub fn new(config: &KafkaSinkConfig) -> Result<Self, KafkaError> {
        let defaults = [
            ("compression.type", config.compression.as_str()),
            // No duplicates or reordering from producer retries.
            ("enable.idempotence", "true"),
            ("acks", "all"),
            // Batches are already large; a short linger adds little latency.
            ("linger.ms", "5"),
        ];
        let producer = client_config(&config.brokers, &defaults, &config.librdkafka).create()?;
        Ok(Self { producer, topic: config.topic.clone() })
    }
}

#[async_trait]
impl BatchSink for KafkaSink {
    async fn send(&self, batch: &OutgoingBatch) -> Result<(), SinkError> {
        let record = FutureRecord::to(&self.topic).key(&batch.key).payload(batch.payload.as_ref());
        match self.producer.send(record, Duration::from_secs(5)).await {
            Ok(_) => Ok(()),
            Err((err, _)) => Err(classify(err)),
        }
    }

    fn name(&self) -> &'static str {
        "kafka"
    }
}

/// Errors that no retry of the same batch can fix; everything else is
/// retried, since losing data is worse than waiting.
fn classify(err: KafkaError) -> SinkError {
    let fatal = matches!(
        err,
        KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
        )
    );
    let message = err.to_string();
    if fatal {
        SinkError::Fatal { sink: "kafka", message }
    } else {
        SinkError::Retriable { sink: "kafka", message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_batches_are_fatal_and_outages_are_retried() {
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(matches!(classify(too_large), SinkError::Fatal { .. }));
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert!(matches!(classify(timed_out), SinkError::Retriable { .. }));
    }
}
