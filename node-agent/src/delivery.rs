//! Hands batches to the sink one at a time, in order, retrying what the sink
//! could not take yet. A batch is forgotten only once the sink confirmed it,
//! or when the sink refuses it for good, or when shutdown gives up: the last
//! two are counted as lost, never silent.

use std::{sync::Arc, time::Duration};

use plumbline_metrics::InternalEvent;
use plumbline_retry::Backoff;
use plumbline_transport::{BatchSink, OutgoingBatch, SinkError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::events::{BatchLost, BatchSent, SendRetried, Undelivered};
use crate::stats::AgentStats;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs until `queue` is closed and empty. `give_up` cancels retrying (at
/// the end of the shutdown grace period); what is left then is counted lost.
pub async fn deliver(
    sink: Arc<dyn BatchSink>,
    mut queue: mpsc::Receiver<OutgoingBatch>,
    stats: Arc<AgentStats>,
    give_up: CancellationToken,
) {
    while let Some(batch) = queue.recv().await {
        deliver_one(sink.as_ref(), &batch, &stats, &give_up).await;
    }
}

/// Sends `batch` until the sink takes it, refuses it for good, or `give_up`.
async fn deliver_one(sink: &dyn BatchSink, batch: &OutgoingBatch, stats: &AgentStats, give_up: &CancellationToken) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        if give_up.is_cancelled() {
            return BatchLost { batch, why: Undelivered::ShuttingDown { sink: sink.name() } }.emit(stats);
        }
        match sink.send(batch).await {
            Ok(()) => return BatchSent { batch }.emit(stats),
            Err(error @ SinkError::Fatal { .. }) => {
                return BatchLost { batch, why: Undelivered::Refused(&error) }.emit(stats);
            }
            Err(error @ SinkError::Retriable { .. }) => {
                SendRetried { error: &error, retry_in: backoff.next_delay() }.emit(stats);
                // Given up while waiting: said and counted at the top.
                backoff.wait(give_up).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;

    /// Refuses the first `failures` sends as retriable, then accepts.
    struct Flaky {
        failures: AtomicU32,
        accepted: AtomicU32,
    }

    #[async_trait]
    impl BatchSink for Flaky {
        async fn send(&self, _batch: &OutgoingBatch) -> Result<(), SinkError> {
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err(SinkError::Retriable { sink: "flaky", message: "broker down".into() });
            }
            self.accepted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        fn name(&self) -> &'static str {
            "flaky"
        }
    }

    fn batch() -> OutgoingBatch {
        OutgoingBatch { key: "h".into(), payload: Bytes::from_static(b"x"), events: 3 }
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_retried_until_the_sink_takes_it() {
        let sink = Arc::new(Flaky { failures: AtomicU32::new(4), accepted: AtomicU32::new(0) });
        let stats = Arc::new(AgentStats::default());
        let (tx, rx) = mpsc::channel(4);
        tx.send(batch()).await.unwrap();
        drop(tx);
        deliver(sink.clone(), rx, stats.clone(), CancellationToken::new()).await;
        assert_eq!(sink.accepted.load(Ordering::SeqCst), 1);
        let s = stats.snapshot();
        assert_eq!((s.batches_sent, s.events_sent, s.send_retries, s.batches_lost), (1, 3, 4, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn giving_up_at_shutdown_counts_the_batch_as_lost() {
        let sink = Arc::new(Flaky { failures: AtomicU32::new(u32::MAX), accepted: AtomicU32::new(0) });
        let stats = Arc::new(AgentStats::default());
        let (tx, rx) = mpsc::channel(4);
        tx.send(batch()).await.unwrap();
        drop(tx);
        let give_up = CancellationToken::new();
        let task = tokio::spawn(deliver(sink, rx, stats.clone(), give_up.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        give_up.cancel();
        task.await.unwrap();
        let s = stats.snapshot();
        assert_eq!((s.batches_sent, s.batches_lost, s.events_lost), (0, 1, 3));
    }
}
