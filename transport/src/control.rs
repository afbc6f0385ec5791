//! The control road, the other way round from batches: the aggregator
//! publishes a policy update (an encoded `EventBatch` of one control event)
//! and every node agent receives every update — no consumer group shares
//! them out. Kafka's control topic in a fleet ([`crate::kafka::KafkaControl`]),
//! a broadcast channel when everything runs in one process ([`pair`]).

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use crate::SinkError;

/// The aggregator's side.
#[async_trait]
pub trait ControlPublisher: Send + Sync {
    /// Returns once the transport took the update (Kafka: the broker
    /// acknowledged it). `key` is the node the update is mostly for.
    async fn publish(&self, key: &str, payload: Bytes) -> Result<(), SinkError>;

    fn name(&self) -> &'static str;
}

/// A node agent's side: every update published after it subscribed.
#[async_trait]
pub trait ControlSubscriber: Send {
    /// The next update; `None` once no more can come.
    async fn next(&mut self) -> Option<Bytes>;
}

/// The in-process control channel: one publisher, any number of
/// subscribers, each seeing every update.
#[derive(Clone)]
pub struct ChannelControl(broadcast::Sender<Bytes>);

/// Updates a subscriber has not taken yet before the oldest are dropped (and
/// the drop logged).
const CHANNEL_CAPACITY: usize = 1024;

pub fn pair() -> ChannelControl {
    ChannelControl(broadcast::channel(CHANNEL_CAPACITY).0)
}

impl ChannelControl {
    pub fn subscribe(&self) -> ChannelControlSubscriber {
        ChannelControlSubscriber(self.0.subscribe())
    }
}

#[async_trait]
impl ControlPublisher for ChannelControl {
    async fn publish(&self, _key: &str, payload: Bytes) -> Result<(), SinkError> {
        // No subscriber: no node to tell, as with a topic nobody reads.
        let _ = self.0.send(payload);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "channel"
    }
}

pub struct ChannelControlSubscriber(broadcast::Receiver<Bytes>);

#[async_trait]
impl ControlSubscriber for ChannelControlSubscriber {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            match self.0.recv().await {
                Ok(payload) => return Some(payload),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "control updates dropped: the node agent fell behind")
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_sees_every_update() {
        let control = pair();
        let (mut a, mut b) = (control.subscribe(), control.subscribe());
        for n in 0..3u8 {
            control.publish("h", Bytes::from(vec![n])).await.unwrap();
        }
        for sub in [&mut a, &mut b] {
            for n in 0..3u8 {
                assert_eq!(sub.next().await.unwrap().as_ref(), &[n]);
            }
        }
    }
}
