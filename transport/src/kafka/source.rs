//! The aggregator's Kafka consumer: a consumer group with manual commits.
//! Offsets are committed only for deliveries the store has acknowledged, so a
//! crash re-delivers rather than loses (the store makes re-delivery harmless).

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::{
    consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    error::KafkaError,
    message::Message,
    statistics::Statistics,
    ClientContext, Offset, TopicPartitionList,
};

use super::{client_config, KafkaSourceConfig};
use crate::{gather, BatchSource, Delivery, Gather, Origin, PartitionLag, SourceError, SourceStatus};

/// The consumer's view of itself: partition assignments are logged and
/// counted (a rebalance is worth a line in an incident), and librdkafka's
/// periodic statistics give each assigned partition's lag.
#[derive(Default)]
struct ConsumerHealth {
    rebalances: AtomicU64,
    lag: Mutex<Vec<PartitionLag>>,
}

impl ClientContext for ConsumerHealth {
    fn stats(&self, statistics: Statistics) {
        *self.lag.lock().unwrap_or_else(|e| e.into_inner()) = partition_lag(&statistics);
    }
}

impl ConsumerContext for ConsumerHealth {
    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                self.rebalances.fetch_add(1, Relaxed);
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

/// High watermark minus position, per partition this consumer fetches. The
/// position is the offset after the last message handed to the pipeline;
/// before the first, the committed offset, or where fetching started (a
/// partition nothing was ever committed on). A partition whose offsets are
/// not known yet (negative: librdkafka's "invalid") is left out.
fn partition_lag(statistics: &Statistics) -> Vec<PartitionLag> {
    let mut lag = Vec::new();
    for (topic, t) in &statistics.topics {
        for (&partition, p) in &t.partitions {
            let position =
                [p.app_offset, p.committed_offset, p.next_offset].into_iter().find(|&o| o >= 0).unwrap_or(-1);
            // -1 is librdkafka's internal "unassigned" partition.
            if partition < 0 || p.fetch_state == "none" || p.hi_offset < 0 || position < 0 {
                continue;
            }
            lag.push(PartitionLag { topic: topic.clone(), partition, messages: (p.hi_offset - position).max(0) });
        }
    }
    lag.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    lag
}

pub struct KafkaSource {
    consumer: Arc<StreamConsumer<ConsumerHealth>>,
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
            // Each partition's lag comes from the client's statistics.
            ("statistics.interval.ms", "5000"),
        ];
        let consumer: StreamConsumer<ConsumerHealth> = client_config(&config.brokers, &defaults, &config.librdkafka)
            .create_with_context(ConsumerHealth::default())?;
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

    fn status(&self) -> SourceStatus {
        let health = self.consumer.context();
        SourceStatus {
            rebalances: health.rebalances.load(Relaxed),
            lag: health.lag.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::{
        mocking::MockCluster,
        statistics::{Partition, Topic},
    };

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
        assert!(second.status().rebalances >= 1, "joining the group is an assignment: {:?}", second.status());
    }

    #[test]
    fn lag_is_the_high_watermark_minus_the_position_of_each_fetched_partition() {
        let partition = |partition: i32, fetch_state: &str, app_offset: i64, committed_offset: i64, hi_offset: i64| {
            let next_offset = if partition == 4 { 12 } else { -1001 };
            let p = Partition {
                partition,
                fetch_state: fetch_state.into(),
                app_offset,
                committed_offset,
                next_offset,
                hi_offset,
                ..Default::default()
            };
            (partition, p)
        };
        let partitions = [
            partition(0, "active", 40, 30, 100),      // after the last message handed over
            partition(1, "active", -1001, 7, 10),     // nothing handed over yet: the committed offset
            partition(2, "none", 5, 5, 50),           // not fetched by this consumer
            partition(3, "active", -1001, -1001, 9),  // not known yet
            partition(4, "active", -1001, -1001, 12), // never committed: where fetching started
            partition(-1, "none", -1, -1, -1),        // librdkafka's unassigned partition
        ];
        let topic = Topic { topic: "t".into(), partitions: partitions.into_iter().collect(), ..Default::default() };
        let statistics = Statistics { topics: [("t".to_string(), topic)].into_iter().collect(), ..Default::default() };
        let lag = partition_lag(&statistics);
        let expected = [
            PartitionLag { topic: "t".into(), partition: 0, messages: 60 },
            PartitionLag { topic: "t".into(), partition: 1, messages: 3 },
            PartitionLag { topic: "t".into(), partition: 4, messages: 0 },
        ];
        assert_eq!(lag, expected);
    }
}
