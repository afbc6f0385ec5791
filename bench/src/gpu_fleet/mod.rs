//! A fleet of GPU hosts running one training job, played into Kafka exactly
//! as their node agents would send it: hosts × 8 ranks, one process per
//! rank, each step's NCCL calls (one all-reduce over every rank, or 3-D
//! parallel: tensor groups inside hosts, data groups across them, pipeline
//! sends and receives between stages) and kernel launches, each host on its
//! own boot clock, and heartbeats after the last step. Faults can be played
//! in: a straggler rank, ranks that hang, a rank calling with a different
//! count or datatype, a host whose agent goes silent, clock skew between
//! hosts, and ordinary jitter.

mod batches;
mod job;
mod produce;
mod schedule;

pub use batches::JobBatches;
pub use job::{
    seed_of, Hang, JobSpec, Mismatch, MismatchField, Parallel, Silent, SpecError, Straggler, COUNT, DATATYPE,
    GPUS_PER_HOST,
};
pub use produce::{produce, Produced};
pub use schedule::{Group, Schedule};

use plumbline_transport::kafka::{self, KafkaSink, KafkaSinkConfig};

/// Batches one sender keeps in flight: a fleet's hosts send at once.
pub const IN_FLIGHT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    #[error("job spec: {0}")]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Topic(#[from] kafka::TopicError),
    #[error("creating the Kafka producer: {0}")]
    Producer(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Sink(#[from] plumbline_transport::SinkError),
}

/// Plays the whole job into `topic` (created when missing) with the agent's
/// producer settings; returns once the broker acknowledged every batch.
pub async fn play_into_kafka(spec: &JobSpec, brokers: &str, topic: &str) -> Result<Produced, PlayError> {
    spec.validate()?;
    let config = KafkaSinkConfig { brokers: brokers.to_string(), topic: topic.to_string(), ..Default::default() };
    kafka::ensure_topic(&config.topic_spec()).await?;
    let sink = KafkaSink::new(&config)?;
    Ok(produce(&sink, JobBatches::new(spec), IN_FLIGHT).await?)
}
