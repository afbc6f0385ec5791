//! The aggregator's Kafka consumer: a consumer group with manual commits.
//! Offsets are committed only for deliveries the store has acknowledged, so a
//! crash re-delivers rather than loses (the store makes re-delivery harmless).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::{
    consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    error::KafkaError,
    message::Message,
    ClientContext, Offset, TopicPartitionList,
};

use super::{client_config, KafkaSourceConfig};
use crate::{gather, BatchSource, Delivery, Gather, Origin, SourceError};

/// Logs partition assignments: a rebalance is worth a line in an incident.
struct RebalanceLogger;

impl ClientContext for RebalanceLogger {}

impl ConsumerContext for RebalanceLogger {
    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(partitions = ?partitions(list), "Kafka partitions assigned")
            }
            Rebalance::Revoke(list) => {
                tracing::info!(partitions = ?partitions(list), "Kafka partitions revoked")
            }
            Rebalance::Error(err) => tracing::warn!(%err, "Kafka rebalance failed"),
        }
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<String> {
    list.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect()
}

pub struct KafkaSource {
    consumer: Arc<StreamConsumer<RebalanceLogger>>,
}

impl KafkaSource {
    pub fn new(config: &KafkaSourceConfig) -> Result<Self, KafkaError> {
        let session_timeout = config.session_timeout_ms.to_string();
        let defaults = [
            ("group.id", config.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", session_timeout.as_str()),
        ];
        let consumer: StreamConsumer<RebalanceLogger> =
            client_config(&config.brokers, &defaults, &config.librdkafka).create_with_context(RebalanceLogger)?;
        consumer.subscribe(&[config.topic.as_str()])?;
        Ok(Self { consumer: Arc::new(consumer) })
    }
}

#[async_trait]
impl BatchSource for KafkaSource {
    async fn recv(&self, limits: Gather) -> Result<Vec<Delivery>, SourceError> {
        let consumer = &self.consumer;
        gather(limits, || async {
            loop {
                match consumer.recv().await {
                    Ok(message) => {
                        return Ok::<_, SourceError>(Delivery {
                            payload: Bytes::copy_from_slice(message.payload().unwrap_or_default()),
                            key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                            origin: Origin::Kafka {
                                topic: message.topic().to_string(),
                                partition: message.partition(),
                                offset: message.offset(),
                            },
                        });
                    }
                    // The client reconnects by itself; an error here is
                    // informational and the next recv may well succeed.
                    Err(err) => {
                        tracing::warn!(%err, "Kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        })
        .await
    }

    async fn commit(&self, deliveries: &[Delivery]) -> Result<(), SourceError> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for delivery in deliveries {
            if let Origin::Kafka { topic, partition, offset } = &delivery.origin {
                let entry = next.entry((topic.as_str(), *partition)).or_insert(offset + 1);
                *entry = (*entry).max(offset + 1);
            }
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(|e| SourceError::Transport { source_name: "kafka", message: e.to_string() })?;
        }
        let consumer = Arc::clone(&self.consumer);
        tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
            .await
            .map_err(|e| SourceError::Transport { source_name: "kafka", message: e.to_string() })?
            .map_err(|e| SourceError::Transport { source_name: "kafka", message: format!("commit failed: {e}") })
    }

    fn name(&self) -> &'static str {
        "kafka"
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::mocking::MockCluster;

    use super::*;
    use crate::kafka::{KafkaSink, KafkaSinkConfig};
    use crate::{BatchSink, OutgoingBatch};

    /// librdkafka's in-process mock broker: enough to check our commit
    /// arithmetic; the real-broker path is covered end to end.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_new_consumer_resumes_after_the_last_committed_delivery() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("t", 1, 1).unwrap();
        let brokers = cluster.bootstrap_servers();
        let sink =
            KafkaSink::new(&KafkaSinkConfig { brokers: brokers.clone(), topic: "t".into(), ..Default::default() })
                .unwrap();
        for n in 0..3u8 {
            let batch = OutgoingBatch { key: "h".into(), payload: Bytes::from(vec![n]), events: 1 };
            sink.send(&batch).await.unwrap();
        }
        let config = KafkaSourceConfig { brokers, topic: "t".into(), group_id: "g".into(), ..Default::default() };

        let first = KafkaSource::new(&config).unwrap();
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend(first.recv(Gather::deliveries(3, Duration::from_millis(100))).await.unwrap());
        }
        assert_eq!(got.iter().map(|d| d.payload[0]).collect::<Vec<_>>(), vec![0, 1, 2]);
        first.commit(&got[..2]).await.unwrap();
        drop(first);

        let second = KafkaSource::new(&config).unwrap();
        let resumed = second.recv(Gather::deliveries(1, Duration::from_millis(100))).await.unwrap();
        assert_eq!(resumed[0].payload[0], 2, "resumes after the committed offset, not before or beyond");
        assert_eq!(resumed[0].key.as_deref(), Some("h"));
    }
}
