//! The capture loop: drain the ring buffer, keep the process table, fill
//! batches and queue them for delivery. One straight road, one task.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use bytes::Bytes;
use plumbline_ebpf::record::Record;
use plumbline_proto::{v1::NodeIdentity, BatchBuilder, BatchHeader};
use plumbline_transport::OutgoingBatch;
use prost::Message;
use tokio::{
    io::{unix::AsyncFd, Interest},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{BatchConfig, CaptureConfig},
    kernel_counters::KernelCounters,
    kernel_events::{encode_loss, encode_record, encode_seen, Encoded},
    node, proc_scan,
    process_table::ProcessTable,
    stats::AgentStats,
};

/// Everything between the kernel and the delivery queue.
pub struct Capture {
    node: NodeIdentity,
    run_id: String,
    sequence: u64,
    batch: BatchBuilder,
    first_event_at: Option<Instant>,
    table: ProcessTable,
    counters: KernelCounters,
    stats: Arc<AgentStats>,
    capture_config: CaptureConfig,
    batch_config: BatchConfig,
}

impl Capture {
    pub fn new(
        node: NodeIdentity,
        counters: KernelCounters,
        stats: Arc<AgentStats>,
        capture_config: CaptureConfig,
        batch_config: BatchConfig,
    ) -> Self {
        Self {
            node,
            run_id: uuid::Uuid::new_v4().to_string(),
            sequence: 0,
            batch: BatchBuilder::new(),
            first_event_at: None,
            table: ProcessTable::default(),
            counters,
            stats,
            capture_config,
            batch_config,
        }
    }

    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    /// Records every process already running as a `seen` event. Called after
    /// the programs are attached, so nothing falls between scan and capture.
    pub fn seed_from_proc(&mut self) {
        let now = node::boot_ns();
        let running = proc_scan::running_processes();
        for info in &running {
            encode_seen(info, now, &mut self.batch);
        }
        self.note_events();
        for info in running {
            self.table.seed(info);
        }
        tracing::info!(processes = self.table.len(), "seeded the process table from /proc");
    }

    /// Reads one ring-buffer record.
    pub fn record(&mut self, bytes: &[u8]) {
        AgentStats::add(&self.stats.records, 1);
        let ttl_ns = self.capture_config.exited_process_ttl_ms * 1_000_000;
        match Record::parse(bytes) {
            Ok(record) => match encode_record(&record, &mut self.table, &mut self.batch, ttl_ns) {
                Encoded::Event => self.note_events(),
                Encoded::UnknownKind(kind) => {
                    AgentStats::add(&self.stats.records_unknown_kind, 1);
                    tracing::debug!(kind, "skipped a record of an unknown kind");
                }
            },
            Err(err) => {
                AgentStats::add(&self.stats.records_malformed, 1);
                tracing::warn!(%err, "dropped a malformed ring-buffer record");
            }
        }
    }

    /// Reads the kernel's drop counters: losses become loss markers. Also
    /// forgets processes that exited long enough ago.
    pub fn poll_counters(&mut self) {
        let now = node::boot_ns();
        match self.counters.losses(now) {
            Ok(losses) => {
                for loss in &losses {
                    AgentStats::add(&self.stats.kernel_lost, loss.count);
                    tracing::warn!(
                        kind = loss.kind,
                        cpu = loss.cpu,
                        count = loss.count,
                        "kernel dropped events: ring buffer full"
                    );
                    encode_loss(loss, &mut self.batch);
                }
                if !losses.is_empty() {
                    self.note_events();
                }
            }
            Err(err) => tracing::warn!(%err, "reading the kernel's counters failed"),
        }
        self.table.evict(now);
    }

    fn note_events(&mut self) {
        if self.first_event_at.is_none() && !self.batch.is_empty() {
            self.first_event_at = Some(Instant::now());
        }
    }

    /// The batch holds as many events or bytes as a batch may.
    pub fn batch_full(&self) -> bool {
        self.batch.len() >= self.batch_config.max_events || self.batch.approx_bytes() >= self.batch_config.max_bytes
    }

    /// The batch is full, or its first event is as old as a batch may wait.
    pub fn batch_due(&self) -> bool {
        self.batch_full()
            || self.first_event_at.is_some_and(|t| t.elapsed() >= Duration::from_millis(self.batch_config.max_delay_ms))
    }

    /// The current batch, encoded, or `None` when it is empty.
    pub fn take_batch(&mut self) -> Option<OutgoingBatch> {
        if self.batch.is_empty() {
            return None;
        }
        self.first_event_at = None;
        self.sequence += 1;
        let batch = self.batch.finish(BatchHeader {
            node: self.node.clone(),
            clock: node::clock_anchor(),
            agent_run_id: self.run_id.clone(),
            sequence: self.sequence,
        });
        let events = batch.events.len();
        Some(OutgoingBatch { key: self.node.host.clone(), payload: Bytes::from(batch.encode_to_vec()), events })
    }
}

enum Wake {
    Ring,
    DrainTick,
    CountersTick,
    Shutdown,
}

/// Runs the capture loop until `shutdown`, then drains what is left.
pub async fn run_loop(
    mut capture: Capture,
    ring: RingBuf<MapData>,
    queue: &mpsc::Sender<OutgoingBatch>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Capture> {
    // SAFETY: the ring buffer owns its fd, and the AsyncFd owns the ring
    // buffer until it is dropped at the end of this function.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("registering the ring buffer with tokio: {e}"))?;
    let mut drain_tick = tokio::time::interval(Duration::from_millis(capture.capture_config.drain_interval_ms));
    let mut counters_tick = tokio::time::interval(Duration::from_millis(capture.capture_config.counters_interval_ms));
    for tick in [&mut drain_tick, &mut counters_tick] {
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        let wake = tokio::select! {
            _ = shutdown.cancelled() => Wake::Shutdown,
            guard = ring.readable_mut() => {
                // Cleared before draining: data arriving meanwhile wakes us again.
                guard?.clear_ready();
                Wake::Ring
            }
            _ = drain_tick.tick() => Wake::DrainTick,
            _ = counters_tick.tick() => Wake::CountersTick,
        };
        match wake {
            Wake::Ring | Wake::DrainTick => drain(&mut capture, ring.get_mut(), queue).await?,
            Wake::CountersTick => capture.poll_counters(),
            Wake::Shutdown => break,
        }
        if capture.batch_due() {
            send(&mut capture, queue).await?;
        }
    }
    drain(&mut capture, ring.get_mut(), queue).await?;
    capture.poll_counters();
    send(&mut capture, queue).await?;
    Ok(capture)
}

/// Reads every record waiting in the ring, sending batches as they fill.
async fn drain(
    capture: &mut Capture,
    ring: &mut RingBuf<MapData>,
    queue: &mpsc::Sender<OutgoingBatch>,
) -> anyhow::Result<()> {
    loop {
        match ring.next() {
            Some(item) => capture.record(&item),
            None => return Ok(()),
        }
        // Only size is checked per record (age is checked once per drain, by
        // the caller): no clock read on the hot path.
        if capture.batch_full() {
            // Waiting here when the queue is full is the back-pressure: the
            // kernel ring fills and its drop counters say so.
            send(capture, queue).await?;
        }
    }
}

async fn send(capture: &mut Capture, queue: &mpsc::Sender<OutgoingBatch>) -> anyhow::Result<()> {
    if let Some(batch) = capture.take_batch() {
        queue.send(batch).await.map_err(|_| anyhow::anyhow!("the delivery task has stopped"))?;
    }
    Ok(())
}
