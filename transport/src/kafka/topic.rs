//! Creates the topic when it is missing: brokers such as tansu do not create
//! topics on first use.

use std::{collections::BTreeMap, time::Duration};

use plumbline_retry::Backoff;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::KafkaError,
    types::RDKafkaErrorCode,
};

/// The topic a component needs, and how to create it.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub brokers: String,
    pub topic: String,
    pub partitions: i32,
    pub replication: i32,
    pub librdkafka: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("cannot reach Kafka at {brokers} to create topic {topic}")]
    Client {
        brokers: String,
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("creating topic {topic}: {code}")]
    Create { topic: String, code: RDKafkaErrorCode },
}

/// Creates the topic unless it exists.
pub async fn ensure_topic(spec: &TopicSpec) -> Result<(), TopicError> {
    let client_error = |source| TopicError::Client { brokers: spec.brokers.clone(), topic: spec.topic.clone(), source };
    let admin: AdminClient<DefaultClientContext> =
        super::client_config(&spec.brokers, &[], &spec.librdkafka).create().map_err(client_error)?;
    let new_topic = NewTopic::new(&spec.topic, spec.partitions, TopicReplication::Fixed(spec.replication));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics([&new_topic], &options).await.map_err(client_error)?;
    for result in results {
        match result {
            Ok(_) => {
                tracing::info!(topic = %spec.topic, partitions = spec.partitions, "created Kafka topic")
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Create { topic, code }),
        }
    }
    Ok(())
}

/// Keeps trying to create the topic in the background until it exists, so a
/// component started while its broker is down waits for it instead of
/// exiting; its producer or consumer retries meanwhile.
pub fn spawn_topic_creation(spec: TopicSpec) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            match ensure_topic(&spec).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(%err, retry_in = ?backoff.next_delay(), "topic not ensured yet");
                    backoff.sleep().await;
                }
            }
        }
    })
}
