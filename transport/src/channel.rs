//! The in-process transport of the single-host default: a bounded flume
//! channel carrying encoded batches, so the aggregator decodes exactly what it
//! would read from Kafka.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::{gather, BatchSink, BatchSource, Delivery, Gather, Origin, OutgoingBatch, SinkError, SourceError};

/// A connected sink and source holding at most `capacity` batches in between.
pub fn pair(capacity: usize) -> (ChannelSink, ChannelSource) {
    let (sender, receiver) = flume::bounded(capacity);
    (ChannelSink { sender, sequence: AtomicU64::new(0) }, ChannelSource { receiver })
}

pub struct ChannelSink {
    sender: flume::Sender<Delivery>,
    sequence: AtomicU64,
}

#[async_trait]
impl BatchSink for ChannelSink {
    async fn send(&self, batch: &OutgoingBatch) -> Result<(), SinkError> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let delivery = Delivery {
            payload: batch.payload.clone(),
            key: Some(batch.key.clone()),
            origin: Origin::Channel { sequence },
        };
        self.sender
            .send_async(delivery)
            .await
            .map_err(|_| SinkError::Fatal { sink: "channel", message: "the aggregator has stopped".into() })
    }

    fn name(&self) -> &'static str {
        "channel"
    }
}

pub struct ChannelSource {
    receiver: flume::Receiver<Delivery>,
}

impl ChannelSource {
    /// Batches waiting in the channel.
    pub fn depth(&self) -> usize {
        self.receiver.len()
    }
}

#[async_trait]
impl BatchSource for ChannelSource {
    async fn recv(&self, limits: Gather) -> Result<Vec<Delivery>, SourceError> {
        let receiver = &self.receiver;
        gather(limits, || async { receiver.recv_async().await.map_err(|_| SourceError::Closed) }).await
    }

    /// In-process: a batch lives only as long as the process, so there is
    /// nothing to remember once it is stored.
    async fn commit(&self, _deliveries: &[Delivery]) -> Result<(), SourceError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "channel"
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use std::time::Duration;

    use super::*;

    fn batch(n: u8) -> OutgoingBatch {
        OutgoingBatch { key: "h".into(), payload: Bytes::from(vec![n]), events: 1 }
    }

    #[tokio::test]
    async fn a_gather_stops_once_past_its_bytes() {
        let (sink, source) = pair(8);
        for size in [3, 3, 3, 3] {
            sink.send(&OutgoingBatch { key: "h".into(), payload: Bytes::from(vec![0; size]), events: 1 })
                .await
                .unwrap();
        }
        let limits = Gather { max_deliveries: 10, max_bytes: 5, linger: Duration::from_millis(10) };
        assert_eq!(source.recv(limits).await.unwrap().len(), 2, "3 bytes, then 6: past 5");
        assert_eq!(source.recv(limits).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn batches_arrive_in_order_and_are_gathered_up_to_max() {
        let (sink, source) = pair(8);
        for n in 0..5 {
            sink.send(&batch(n)).await.unwrap();
        }
        let got = source.recv(Gather::deliveries(3, Duration::from_millis(10))).await.unwrap();
        assert_eq!(got.iter().map(|d| d.payload[0]).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(got[2].origin, Origin::Channel { sequence: 2 });
        let got = source.recv(Gather::deliveries(10, Duration::from_millis(10))).await.unwrap();
        assert_eq!(got.len(), 2);
    }

    #[tokio::test]
    async fn source_reports_closed_when_every_sink_is_gone() {
        let (sink, source) = pair(1);
        sink.send(&batch(1)).await.unwrap();
        drop(sink);
        assert_eq!(source.recv(Gather::deliveries(10, Duration::from_millis(10))).await.unwrap().len(), 1);
        assert!(matches!(
            source.recv(Gather::deliveries(10, Duration::from_millis(10))).await,
            Err(SourceError::Closed)
        ));
    }

    #[tokio::test]
    async fn sink_fails_once_the_source_is_gone() {
        let (sink, source) = pair(1);
        drop(source);
        assert!(matches!(sink.send(&batch(1)).await, Err(SinkError::Fatal { .. })));
    }
}
