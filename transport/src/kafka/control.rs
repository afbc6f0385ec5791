//! The control topic: the aggregator produces policy updates to it, and each
//! node agent reads all of its partitions by itself (assigned, not
//! subscribed in a group: a group would share the partitions out between
//! nodes, and every node must see every update). A node reads from the end
//! of each partition as it was when it subscribed: updates are about
//! processes running now.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::{
    consumer::{Consumer, StreamConsumer},
    message::Message,
    producer::{FutureProducer, FutureRecord},
    Offset, TopicPartitionList,
};

use super::{client_config, TopicSpec};
use crate::{
    control::{ControlPublisher, ControlSubscriber},
    SinkError,
};

/// The aggregator's producer to the control topic.
pub struct KafkaControlPublisher {
    producer: FutureProducer,
    topic: String,
}

impl KafkaControlPublisher {
    pub fn new(spec: &TopicSpec) -> Result<Self, rdkafka::error::KafkaError> {
        // Updates are small and urgent: no linger.
        let defaults = [("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "0")];
        let producer = client_config(&spec.brokers, &defaults, &spec.librdkafka).create()?;
        Ok(Self { producer, topic: spec.topic.clone() })
    }
}

#[async_trait]
impl ControlPublisher for KafkaControlPublisher {
    async fn publish(&self, key: &str, payload: Bytes) -> Result<(), SinkError> {
        let record = FutureRecord::to(&self.topic).key(key).payload(payload.as_ref());
        match self.producer.send(record, Duration::from_secs(5)).await {
            Ok(_) => Ok(()),
            Err((err, _)) => Err(SinkError::Retriable { sink: "kafka control", message: err.to_string() }),
        }
    }

    fn name(&self) -> &'static str {
        "kafka"
    }
}

/// A node agent's reader of every partition of the control topic.
pub struct KafkaControlSubscriber {
    spec: TopicSpec,
    node: String,
    consumer: Option<StreamConsumer>,
}

impl KafkaControlSubscriber {
    /// Creates the topic if it is missing, then assigns all its partitions
    /// from their current end. When the broker cannot be reached yet, that
    /// is tried again (with a growing pause) when the first update is read.
    pub async fn new(spec: &TopicSpec, node: &str) -> Self {
        let mut subscriber = Self { spec: spec.clone(), node: node.to_string(), consumer: None };
        match assign(&subscriber.spec, &subscriber.node).await {
            Ok(consumer) => {
                tracing::info!(topic = %spec.topic, "reading the control topic");
                subscriber.consumer = Some(consumer);
            }
            Err(err) => tracing::warn!(err = format!("{err:#}"), "the control topic cannot be read yet"),
        }
        subscriber
    }
}

async fn assign(spec: &TopicSpec, node: &str) -> anyhow::Result<StreamConsumer> {
    super::ensure_topic(spec).await?;
    // A group id of its own (librdkafka wants one); nothing is committed and
    // no group coordination takes place, since partitions are assigned.
    let group = format!("plumbline-control-{node}-{}", std::process::id());
    let defaults = [
        ("group.id", group.as_str()),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("fetch.wait.max.ms", "10"),
        ("fetch.error.backoff.ms", "50"),
    ];
    let consumer: StreamConsumer = client_config(&spec.brokers, &defaults, &spec.librdkafka).create()?;
    let topic = spec.topic.clone();
    let consumer = tokio::task::spawn_blocking(move || -> anyhow::Result<StreamConsumer> {
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(!partitions.is_empty(), "the control topic {topic} has no partitions");
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            // The end as it is now: an update produced after this returns is
            // read, whenever the first fetch happens.
            let (_, high) = consumer.fetch_watermarks(&topic, partition, Duration::from_secs(10))?;
            list.add_partition_offset(&topic, partition, Offset::Offset(high))?;
        }
        consumer.assign(&list)?;
        Ok(consumer)
    })
    .await??;
    Ok(consumer)
}

#[async_trait]
impl ControlSubscriber for KafkaControlSubscriber {
    async fn next(&mut self) -> Option<Bytes> {
        let mut pause = Duration::from_millis(500);
        while self.consumer.is_none() {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(30));
            match assign(&self.spec, &self.node).await {
                Ok(consumer) => {
                    tracing::info!(topic = %self.spec.topic, "reading the control topic");
                    self.consumer = Some(consumer);
                }
                Err(err) => tracing::warn!(err = format!("{err:#}"), "the control topic cannot be read yet"),
            }
        }
        let consumer = self.consumer.as_ref().expect("assigned above");
        loop {
            match consumer.recv().await {
                Ok(message) => match message.payload() {
                    Some(payload) => return Some(Bytes::copy_from_slice(payload)),
                    None => continue,
                },
                Err(err) => {
                    tracing::warn!(%err, "reading the control topic failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}
