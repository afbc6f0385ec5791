//! Creates the topic when it is missing: brokers such as tansu do not create
//! topics on first use.

use std::{collections::BTreeMap, time::Duration};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::KafkaError,
    types::RDKafkaErrorCode,
};

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
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
}

pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    passthrough: &BTreeMap<String, String>,
) -> Result<(), TopicError> {
    let client_error = |source| TopicError::Client {
        brokers: brokers.into(),
        topic: topic.into(),
        source,
    };
    let admin: AdminClient<DefaultClientContext> = super::client_config(brokers, &[], passthrough)
        .create()
        .map_err(client_error)?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(client_error)?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, partitions, "created Kafka topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Create { topic, code }),
        }
    }
    Ok(())
}
