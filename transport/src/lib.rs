//! The seam between node agents and aggregators.
//!
//! An agent hands encoded batches to a [`BatchSink`]; an aggregator takes
//! them from a [`BatchSource`] and commits what it has stored. Both have a
//! Kafka implementation for fleets and an in-process channel for the
//! single-host default, side by side; the agent also has a stdout sink for a
//! quick look.

pub mod channel;
pub mod control;
pub mod kafka;
pub mod stdout;

use std::{fmt, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;

/// One encoded `EventBatch` on its way out.
#[derive(Debug, Clone)]
pub struct OutgoingBatch {
    /// Partitioning key: the node's host name, so one node's batches stay in order.
    pub key: String,
    pub payload: Bytes,
    pub events: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying the same batch later (broker down, queue full, timeout).
    #[error("{sink} could not deliver the batch yet: {message}")]
    Retriable { sink: &'static str, message: String },
    /// Retrying cannot help (batch too large, topic forbidden).
    #[error("{sink} refused the batch: {message}")]
    Fatal { sink: &'static str, message: String },
}

#[async_trait]
pub trait BatchSink: Send + Sync {
    /// Returns once the transport has accepted the batch for good (Kafka: the
    /// broker acknowledged it). Until then the caller keeps the batch.
    async fn send(&self, batch: &OutgoingBatch) -> Result<(), SinkError>;

    fn name(&self) -> &'static str;
}

/// Where a delivery came from, for commits and for dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Kafka { topic: String, partition: i32, offset: i64 },
    Channel { sequence: u64 },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Kafka { topic, partition, offset } => write!(f, "kafka:{topic}/{partition}@{offset}"),
            Origin::Channel { sequence } => write!(f, "channel:{sequence}"),
        }
    }
}

/// One payload received, not yet committed.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub payload: Bytes,
    pub key: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No more deliveries will come (the sending side is gone).
    #[error("the source is closed")]
    Closed,
    #[error("{source_name}: {message}")]
    Transport { source_name: &'static str, message: String },
}

/// How many deliveries one `recv` gathers: up to `max_deliveries` or
/// `max_bytes` of payload (whichever comes first), waiting at most `linger`
/// after the first for the rest.
#[derive(Debug, Clone, Copy)]
pub struct Gather {
    pub max_deliveries: usize,
    pub max_bytes: usize,
    pub linger: Duration,
}

impl Gather {
    /// Up to `max_deliveries`, any size.
    pub fn deliveries(max_deliveries: usize, linger: Duration) -> Self {
        Self { max_deliveries, max_bytes: usize::MAX, linger }
    }
}

/// How far behind one partition's consumer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The partition's high watermark minus the consumer's position.
    pub messages: i64,
}

/// What a source reports about itself for the aggregator's metrics. The
/// in-process channel has neither rebalances nor partitions: it reports
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// Partition assignments the consumer group has made since the source
    /// started (the first join counts).
    pub rebalances: u64,
    /// Per assigned partition, as of the client's latest statistics.
    pub lag: Vec<PartitionLag>,
}

#[async_trait]
pub trait BatchSource: Send + Sync {
    /// Waits for a delivery, then gathers more within `limits`.
    async fn recv(&self, limits: Gather) -> Result<Vec<Delivery>, SourceError>;

    /// Everything received up to and including `deliveries` has been stored:
    /// the transport may forget it. Called only after the store acknowledged.
    async fn commit(&self, deliveries: &[Delivery]) -> Result<(), SourceError>;

    fn name(&self) -> &'static str;

    /// Rebalances and lag so far; nothing for a source without them.
    fn status(&self) -> SourceStatus {
        SourceStatus::default()
    }
}

/// Waits for the first delivery from `next`, then takes more until a limit
/// or until the linger has passed. Shared by the sources so they batch
/// alike.
pub(crate) async fn gather<F, Fut, E>(limits: Gather, mut next: F) -> Result<Vec<Delivery>, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Delivery, E>>,
{
    let mut items = vec![next().await?];
    let mut bytes = items[0].payload.len();
    let deadline = tokio::time::Instant::now() + limits.linger;
    while items.len() < limits.max_deliveries && bytes < limits.max_bytes {
        match tokio::time::timeout_at(deadline, next()).await {
            Ok(Ok(item)) => {
                bytes += item.payload.len();
                items.push(item);
            }
            Ok(Err(err)) if items.is_empty() => return Err(err),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    Ok(items)
}
