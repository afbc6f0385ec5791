//! The aggregator's road: receive deliveries, turn them into rows, write them,
//! and only then commit. A crash before the commit re-delivers; the store
//! makes a re-delivery harmless. Undecodable payloads and rows the store
//! refuses are set aside as dead letters, so the rest keeps flowing.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use plumbline_metrics::InternalEvent;
use plumbline_retry::Backoff;
use plumbline_store::{now_wall_ns, RowSet, StoreError, StoreWrite};
use plumbline_transport::{control::ControlPublisher, BatchSource, Delivery, Gather, SourceError};
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    batch_rows::{dead_letter, delivery_rows, DeliveryRows, Sender},
    collectives::CollectiveStage,
    config::PipelineConfig,
    events::{CommitFailed, DeadLettered, Judged, Received, SourceReported, StoreRetried, StoreWritten},
    quarantine::QuarantineStage,
    sessions::SessionStage,
    stats::AggregatorStats,
};

/// The stages that derive rows from the rows going by: the collective join
/// and the causal graph of agent sessions.
struct Stages {
    collectives: CollectiveStage,
    sessions: SessionStage,
    quarantine: QuarantineStage,
}

impl Stages {
    /// Rows derived from `rows` (verdicts, session nodes, edges, findings).
    fn derive(&mut self, rows: &RowSet, senders: &[Sender], now_wall_ns: u64, stats: &AggregatorStats) -> RowSet {
        let mut derived = self.sessions.observe(rows, senders, stats);
        derived.quarantine_updates = self.quarantine.judge(&derived.findings, &self.sessions);
        derived.collective_verdicts = self.collectives.judge(rows, senders, now_wall_ns);
        count_derived(&derived, stats);
        derived
    }

    /// Rows judged on the timer: hangs, turns whose time is up. The join's
    /// gauges are refreshed here too, off the write path.
    fn tick(&mut self, now_wall_ns: u64, stats: &AggregatorStats) -> RowSet {
        let mut derived = self.sessions.tick();
        derived.quarantine_updates = self.quarantine.judge(&derived.findings, &self.sessions);
        derived.collective_verdicts = self.collectives.stuck(now_wall_ns);
        self.collectives.report(stats);
        AggregatorStats::set(&stats.sessions_open, self.sessions.open_sessions() as u64);
        count_derived(&derived, stats);
        derived
    }
}

fn count_derived(derived: &RowSet, stats: &AggregatorStats) {
    Judged { collective_verdicts: derived.collective_verdicts.len(), findings: derived.findings.len() }.emit(stats);
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A store write of deliveries' rows, running while the next deliveries are
/// received and turned into rows.
type Writing = JoinHandle<anyhow::Result<Written>>;

/// Deliveries whose rows a write took; `stored` is false when shutdown came
/// first.
struct Written {
    deliveries: Vec<Delivery>,
    stored: bool,
}

/// Runs until the source closes (the in-process channel) or `shutdown`.
///
/// One write is in flight at a time: while the store takes one set of
/// deliveries, the next set is received, decoded and judged. Offsets are
/// committed in order, each set's after its rows were stored.
pub async fn run_pipeline(
    source: &dyn BatchSource,
    store: Arc<dyn StoreWrite>,
    config: &PipelineConfig,
    stats: Arc<AggregatorStats>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    run_pipeline_with_control(source, store, config, stats, shutdown, None).await
}

/// [`run_pipeline`], sending the quarantines `[[pipeline.quarantine]]` calls
/// for on `control` (none: they are stored, and no node hears of them).
pub async fn run_pipeline_with_control(
    source: &dyn BatchSource,
    store: Arc<dyn StoreWrite>,
    config: &PipelineConfig,
    stats: Arc<AggregatorStats>,
    shutdown: &CancellationToken,
    control: Option<Arc<dyn ControlPublisher>>,
) -> anyhow::Result<()> {
    let limits = Gather {
        max_deliveries: config.max_batches,
        max_bytes: config.max_bytes,
        linger: Duration::from_millis(config.linger_ms),
    };
    let mut stages = Stages {
        collectives: CollectiveStage::new(&config.gpu),
        sessions: SessionStage::new(&config.sessions),
        quarantine: QuarantineStage::new(&config.quarantine, control),
    };
    let mut hang_check = tokio::time::interval(Duration::from_millis(config.gpu.hang_check_interval_ms));
    hang_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut writing: Option<Writing> = None;
    loop {
        // The receive runs across hang checks and the write's end, never
        // dropped half-way: a source gathering deliveries would lose those
        // it already took.
        let receiving = source.recv(limits);
        tokio::pin!(receiving);
        let deliveries = loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    finish(source, writing.take(), &stats).await?;
                    return Ok(());
                }
                written = async { writing.as_mut().expect("polled only while writing").await }, if writing.is_some() => {
                    writing = None;
                    if !commit(source, written, &stats).await? {
                        return Ok(());
                    }
                }
                _ = hang_check.tick() => {
                    SourceReported(source.status()).emit(&stats);
                    let derived = stages.tick(now_wall_ns(), &stats);
                    if !derived.is_empty() && !store_derived(derived, store.as_ref(), &stats, shutdown).await? {
                        return Ok(());
                    }
                }
                received = &mut receiving => break received,
            }
        };
        let deliveries = match deliveries {
            Ok(deliveries) => deliveries,
            Err(SourceError::Closed) => {
                finish(source, writing.take(), &stats).await?;
                return Ok(());
            }
            Err(err) => {
                tracing::warn!(%err, "receiving failed; retrying");
                tokio::time::sleep(FIRST_BACKOFF).await;
                continue;
            }
        };
        let rows = delivered_rows(&deliveries, &mut stages, &stats);
        if !finish(source, writing.take(), &stats).await? {
            return Ok(()); // shutting down before the rows were stored: no commit
        }
        let write = store_deliveries(deliveries, rows, Arc::clone(&store), Arc::clone(&stats), shutdown.clone());
        writing = Some(tokio::spawn(write));
    }
}

/// Waits for the write in flight, if any, and commits it. False when
/// shutdown interrupted the write.
async fn finish(source: &dyn BatchSource, writing: Option<Writing>, stats: &AggregatorStats) -> anyhow::Result<bool> {
    match writing {
        Some(write) => commit(source, write.await, stats).await,
        None => Ok(true),
    }
}

/// Commits a finished write's deliveries. False when the write was
/// interrupted by shutdown (nothing to commit); an error when it failed.
async fn commit(
    source: &dyn BatchSource,
    written: Result<anyhow::Result<Written>, JoinError>,
    stats: &AggregatorStats,
) -> anyhow::Result<bool> {
    let written = written.map_err(|err| anyhow::anyhow!("the store write failed: {err}"))??;
    if !written.stored {
        return Ok(false);
    }
    if let Err(error) = source.commit(&written.deliveries).await {
        CommitFailed { error: &error }.emit(stats);
    }
    Ok(true)
}

/// Writes rows derived outside a delivery's (hangs, judged turns). False
/// when shutdown interrupted it.
async fn store_derived(
    derived: RowSet,
    store: &dyn StoreWrite,
    stats: &AggregatorStats,
    shutdown: &CancellationToken,
) -> anyhow::Result<bool> {
    let rows = Arc::new(derived);
    write_retrying(store, &rows, stats, shutdown).await.map_err(stopping)
}

/// The rows of a set of deliveries, and those the stages derived from them.
struct DeliveredRows {
    /// Every row, the derived included.
    all: RowSet,
    derived: RowSet,
    /// When they were decoded: dead letters of a re-decode carry the same.
    now: u64,
}

/// Decodes every delivery and feeds the rows to the stages, once: a
/// delivery re-decoded after a refused write does not feed them again.
fn delivered_rows(deliveries: &[Delivery], stages: &mut Stages, stats: &AggregatorStats) -> DeliveredRows {
    let now = now_wall_ns();
    let mut all = RowSet::default();
    let mut senders = Vec::new();
    let (mut events, mut unsupported) = (0, 0);
    for delivery in deliveries {
        let DeliveryRows { rows, sender, events: e, unsupported: u } = delivery_rows(delivery, now);
        senders.extend(sender);
        (events, unsupported) = (events + e, unsupported + u);
        all.extend(rows);
    }
    Received { deliveries: deliveries.len(), events, unsupported }.emit(stats);
    for letter in &all.dead_letters {
        DeadLettered { origin: &letter.origin, error: &letter.error }.emit(stats);
    }
    let derived = stages.derive(&all, &senders, now, stats);
    all.extend(derived.clone());
    DeliveredRows { all, derived, now }
}

/// Stores the rows of every delivery. Transient store errors are retried;
/// rows the store refuses become dead letters; any other store error stops
/// the aggregator.
async fn store_deliveries(
    deliveries: Vec<Delivery>,
    rows: DeliveredRows,
    store: Arc<dyn StoreWrite>,
    stats: Arc<AggregatorStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<Written> {
    let DeliveredRows { all, derived, now } = rows;
    let (store, stats, shutdown) = (store.as_ref(), stats.as_ref(), &shutdown);
    let all = Arc::new(all);
    let stored = match write_retrying(store, &all, stats, shutdown).await {
        Ok(stored) => stored,
        // One delivery's rows are refused: find it, keep the others.
        Err(err) if err.is_caused_by_rows() => {
            tracing::warn!(%err, deliveries = deliveries.len(), "the store refused a write; writing deliveries one by one");
            store_one_by_one(&deliveries, derived, now, store, stats, shutdown).await?
        }
        Err(err) => return Err(stopping(err)),
    };
    Ok(Written { deliveries, stored })
}

/// Writes each delivery's rows on its own, setting aside as a dead letter
/// each one the store refuses, then the derived rows. False when shutdown
/// interrupted it.
async fn store_one_by_one(
    deliveries: &[Delivery],
    derived: RowSet,
    now: u64,
    store: &dyn StoreWrite,
    stats: &AggregatorStats,
    shutdown: &CancellationToken,
) -> anyhow::Result<bool> {
    // Rare: decoding again is cheaper than keeping a copy of every row.
    for delivery in deliveries {
        let rows = Arc::new(delivery_rows(delivery, now).rows);
        let refused = match write_retrying(store, &rows, stats, shutdown).await {
            Ok(true) => continue,
            Ok(false) => return Ok(false),
            Err(err) if err.is_caused_by_rows() => err,
            Err(err) => return Err(stopping(err)),
        };
        let letter = dead_letter(delivery, &format!("the store refused its rows: {refused}"), now);
        let letters = Arc::new(RowSet { dead_letters: vec![letter], ..Default::default() });
        match write_retrying(store, &letters, stats, shutdown).await {
            Ok(true) => {
                let letter = &letters.dead_letters[0];
                DeadLettered { origin: &letter.origin, error: &letter.error }.emit(stats);
            }
            Ok(false) => return Ok(false),
            Err(err) => anyhow::bail!("the store refuses even dead letters: {err}"),
        }
    }
    if derived.is_empty() {
        return Ok(true);
    }
    store_derived(derived, store, stats, shutdown).await
}

/// A store error that is neither passing nor about the rows (a missing
/// table, a permission): stop before committing, so nothing is lost, and say
/// why. A restart runs the migrations again.
fn stopping(err: StoreError) -> anyhow::Error {
    anyhow::anyhow!("the store failed in a way retrying cannot fix; stopping without committing: {err}")
}

/// Writes, retrying transient errors (server down) with backoff. Ok(false)
/// when shutdown came first; Err for errors a retry cannot fix.
async fn write_retrying(
    store: &dyn StoreWrite,
    rows: &Arc<RowSet>,
    stats: &AggregatorStats,
    shutdown: &CancellationToken,
) -> Result<bool, StoreError> {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let started = Instant::now();
        match store.write(Arc::clone(rows)).await {
            Ok(()) => {
                StoreWritten { rows: rows.len(), took: started.elapsed() }.emit(stats);
                return Ok(true);
            }
            Err(error) if error.is_transient() => {
                StoreRetried { error: &error, retry_in: backoff.next_delay() }.emit(stats);
                if !backoff.wait(shutdown).await {
                    return Ok(false);
                }
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicU32, Ordering},
        Mutex,
    };

    use async_trait::async_trait;
    use bytes::Bytes;
    use plumbline_proto::{
        v1::{event::Body, ClockAnchor, NodeIdentity, ProcessExec},
        BatchBuilder, BatchHeader,
    };
    use plumbline_store::{sqlite::SqliteStore, StoreRead};
    use plumbline_transport::{channel, BatchSink, OutgoingBatch};
    use prost::Message;

    use super::*;

    fn batch_from(host: &str, pid: u32) -> OutgoingBatch {
        let mut b = BatchBuilder::new();
        let exec = ProcessExec { start_ns: 1_000_000_000, comm_sid: b.intern("sh"), ..Default::default() };
        b.push(2_000_000_000, pid, pid, 0, Body::Exec(exec));
        let batch = b.finish(BatchHeader {
            node: NodeIdentity { host: host.into(), boot_id: "boot".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: 5, uncertainty_ns: 0 },
            ..Default::default()
        });
        OutgoingBatch { key: host.into(), payload: Bytes::from(batch.encode_to_vec()), events: 1 }
    }

    /// SQLite behind a gate: the first `busy` writes fail as if the database
    /// were busy; rows from host `poison` are refused for good; every
    /// successful write is logged.
    struct GatedStore {
        inner: SqliteStore,
        busy: AtomicU32,
        written: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl StoreWrite for GatedStore {
        async fn write(&self, rows: Arc<RowSet>) -> Result<(), StoreError> {
            if self.busy.load(Ordering::SeqCst) > 0 {
                self.busy.fetch_sub(1, Ordering::SeqCst);
                let busy = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY);
                return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(busy, None)));
            }
            if rows.process_events.iter().any(|r| r.host == "poison") {
                return Err(StoreError::Malformed("poison".into()));
            }
            self.written.lock().unwrap().push(rows.len());
            self.inner.write(rows).await
        }
    }

    async fn gated(busy: u32) -> Arc<GatedStore> {
        Arc::new(GatedStore {
            inner: SqliteStore::in_memory().await.unwrap(),
            busy: AtomicU32::new(busy),
            written: Mutex::default(),
        })
    }

    async fn run_to_end(store: &Arc<GatedStore>, batches: Vec<OutgoingBatch>) -> crate::AggregatorSnapshot {
        let (sink, source) = channel::pair(16);
        for batch in &batches {
            sink.send(batch).await.unwrap();
        }
        drop(sink);
        let stats = Arc::new(AggregatorStats::default());
        let config = PipelineConfig { max_batches: 16, linger_ms: 10, ..Default::default() };
        run_pipeline(&source, store.clone(), &config, stats.clone(), &CancellationToken::new()).await.unwrap();
        stats.snapshot()
    }

    #[tokio::test(start_paused = true)]
    async fn garbage_is_set_aside_and_the_valid_batches_behind_it_arrive() {
        let store = gated(0).await;
        let garbage = OutgoingBatch { key: "x".into(), payload: Bytes::from_static(b"\xde\xad\xbe\xef"), events: 0 };
        let stats = run_to_end(&store, vec![batch_from("a", 1), garbage, batch_from("b", 2)]).await;
        assert_eq!((stats.deliveries, stats.dead_letters, stats.events), (3, 1, 2));
        let stored = store.inner.pipeline_stats().await.unwrap();
        assert_eq!((stored.process_events, stored.dead_letters), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_store_is_retried_and_nothing_is_lost() {
        let store = gated(3).await;
        let stats = run_to_end(&store, vec![batch_from("a", 1), batch_from("a", 2)]).await;
        assert_eq!(stats.store_retries, 3);
        assert_eq!(store.inner.pipeline_stats().await.unwrap().process_events, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rows_the_store_refuses_become_a_dead_letter_and_the_others_are_stored() {
        let store = gated(0).await;
        let stats = run_to_end(&store, vec![batch_from("a", 1), batch_from("poison", 2), batch_from("b", 3)]).await;
        assert_eq!(stats.dead_letters, 1);
        let stored = store.inner.pipeline_stats().await.unwrap();
        assert_eq!((stored.process_events, stored.dead_letters), (2, 1));
        assert_eq!(stored.hosts, vec!["a", "b"]);
    }
}
