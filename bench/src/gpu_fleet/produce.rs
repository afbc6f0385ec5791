//! Sending the job's batches at full speed. An agent has one batch in
//! flight at a time; a fleet has one per host, so up to `in_flight` go out
//! at once through the transport's sink (Kafka: zstd, idempotent, acked).

use std::time::{Duration, Instant};

use futures::{stream, StreamExt, TryStreamExt};
use plumbline_transport::{BatchSink, OutgoingBatch, SinkError};

/// What was sent, and how long it took until the last acknowledgement.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Produced {
    pub batches: u64,
    pub events: u64,
    /// Encoded batch bytes, before the transport compresses them.
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Sends every batch, retrying what the sink could not deliver yet as an
/// agent does; fails on a batch the sink refuses for good.
pub async fn produce(
    sink: &dyn BatchSink,
    batches: impl IntoIterator<Item = OutgoingBatch>,
    in_flight: usize,
) -> Result<Produced, SinkError> {
    let started = Instant::now();
    let mut produced = stream::iter(batches)
        .map(|batch| async move {
            send_until_accepted(sink, &batch).await?;
            Ok::<_, SinkError>((batch.events as u64, batch.payload.len() as u64))
        })
        .buffer_unordered(in_flight.max(1))
        .try_fold(Produced::default(), |mut total, (events, bytes)| async move {
            total.batches += 1;
            total.events += events;
            total.bytes += bytes;
            Ok(total)
        })
        .await?;
    produced.elapsed = started.elapsed();
    Ok(produced)
}

async fn send_until_accepted(sink: &dyn BatchSink, batch: &OutgoingBatch) -> Result<(), SinkError> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match sink.send(batch).await {
            Ok(()) => return Ok(()),
            Err(err @ SinkError::Fatal { .. }) => return Err(err),
            Err(err @ SinkError::Retriable { .. }) => {
                tracing::warn!(%err, retry_in = ?backoff, "batch not delivered yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
