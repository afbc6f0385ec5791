//! The capture loop: drain the ring buffers, put the records in the order
//! they happened, turn them into events (the encoder keeps the process table
//! and what things are called), sweep the kernel's accounting maps, fill
//! batches and queue them for delivery. One straight road, one task.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use bytes::Bytes;
use futures::future::select_all;
use plumbline_ebpf::record::Record;
use plumbline_metrics::InternalEvent;
use plumbline_proto::{v1::NodeIdentity, BatchBuilder, BatchHeader};
use plumbline_transport::OutgoingBatch;
use prost::Message;
use tokio::{
    io::{unix::AsyncFd, Interest},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use crate::{
    batches::{job_key, JobBatches},
    config::{BatchConfig, CaptureConfig},
    encoder::{Encoder, Followers},
    enforce::{
        enforcer::{SharedEnforcer, WorkloadSelector},
        llm_enforcement::LlmEnforcement,
    },
    event_order::EventOrder,
    events::{IoTableFull, KernelDropped, RecordMalformed, RecordOfUnknownKind, RecordRead},
    file_probes::FileProbes,
    gpu::GpuCapture,
    intent::{attach::TlsProbes, IntentCapture},
    kernel_counters::KernelCounters,
    kernel_events::{encode_loss, Encoded},
    metrics::Gauges,
    node, proc_scan,
    stats::AgentStats,
    sweeps::Sweeps,
};

/// What the capture reads of the kernel besides the rings.
pub struct KernelSide {
    /// Each object's counters of what it emitted and lost.
    pub counters: KernelCounters,
    pub sweeps: Sweeps,
    pub uprobes: UprobeObjects,
    /// The workload policy in force, when one is configured.
    pub enforcer: Option<SharedEnforcer>,
    /// `[roles.llm]`'s state and aborts, with the enforcer.
    pub llm: Option<Arc<LlmEnforcement>>,
}

/// The objects whose uprobes are attached as the libraries they hook are
/// found; `None` when their capture is off.
#[derive(Default)]
pub struct UprobeObjects {
    /// Hooks TLS libraries, for intent capture.
    pub tls: Option<TlsProbes>,
    /// Hooks libcudart and libnccl, for GPU capture.
    pub gpu: Option<FileProbes<Vec<&'static str>>>,
}

/// Where the capture counts what it does.
#[derive(Clone)]
pub struct Telemetry {
    pub stats: Arc<AgentStats>,
    pub gauges: Arc<Gauges>,
}

/// The configuration the capture runs by.
pub struct Settings {
    pub capture: CaptureConfig,
    pub batch: BatchConfig,
}

/// Everything between the kernel and the delivery queue.
pub struct Capture {
    node: NodeIdentity,
    run_id: String,
    sequence: u64,
    batch: BatchBuilder,
    job_batches: JobBatches,
    first_event_at: Option<Instant>,
    encoder: Encoder,
    counters: KernelCounters,
    sweeps: Sweeps,
    telemetry: Telemetry,
    settings: Settings,
}

impl Capture {
    pub fn new(node: NodeIdentity, kernel: KernelSide, telemetry: Telemetry, settings: Settings) -> Self {
        let KernelSide { counters, sweeps, uprobes, enforcer, llm } = kernel;
        let capture = &settings.capture;
        let role_names = enforcer.as_ref().map(|e| e.lock().unwrap_or_else(|p| p.into_inner()).role_names());
        let followers = Followers {
            enforce: enforcer.map(WorkloadSelector),
            intent: capture.tls.then(|| IntentCapture::new(capture.intent.clone(), uprobes.tls, llm.clone())),
            gpu: capture.gpu.enabled.then(|| GpuCapture::new(capture.gpu.clone(), uprobes.gpu, node::boot_ns())),
        };
        Self {
            node,
            run_id: uuid::Uuid::new_v4().to_string(),
            sequence: 0,
            batch: BatchBuilder::new(),
            job_batches: JobBatches::default(),
            first_event_at: None,
            encoder: Encoder::new(
                capture.exited_process_ttl_ms * 1_000_000,
                followers,
                role_names.unwrap_or_default(),
                telemetry.gauges.decisions(),
                llm,
            ),
            counters,
            sweeps,
            telemetry,
            settings,
        }
    }

    /// Records every process already running as a `seen` event. Called after
    /// the programs are attached, so nothing falls between scan and capture.
    pub fn seed_from_proc(&mut self) {
        let now = node::boot_ns();
        let running = proc_scan::running_processes();
        self.encoder.announce_running(&running, now, &mut self.batch);
        self.note_events();
        self.encoder.seed(running, now, &mut self.batch);
        tracing::info!(processes = self.encoder.host.table.len(), "seeded the process table from /proc");
    }

    /// Turns one ring-buffer record into events.
    pub fn record(&mut self, bytes: &[u8]) {
        match Record::parse(bytes) {
            Ok(record) => match self.encoder.record(&record, &mut self.batch, &mut self.job_batches) {
                Encoded::Event => self.note_events(),
                Encoded::UnknownKind(kind) => RecordOfUnknownKind { kind }.emit(&self.telemetry.stats),
            },
            Err(error) => RecordMalformed { error: &error }.emit(&self.telemetry.stats),
        }
    }

    /// Reads the kernel's drop counters: losses become loss markers. Also
    /// forgets processes that exited long enough ago.
    pub fn poll_counters(&mut self) {
        let now = node::boot_ns();
        match self.counters.losses(now) {
            Ok(losses) => {
                for loss in &losses {
                    KernelDropped { loss }.emit(&self.telemetry.stats);
                    encode_loss(loss, &mut self.batch);
                }
                if !losses.is_empty() {
                    self.note_events();
                }
            }
            Err(err) => tracing::warn!(%err, "reading the kernel's counters failed"),
        }
        match self.counters.totals() {
            Ok(totals) => self.telemetry.gauges.set_kernel_totals(totals),
            Err(err) => tracing::warn!(%err, "reading the kernel's counters failed"),
        }
        self.encoder.host.table.evict(now);
        self.telemetry.gauges.set_process_table(self.encoder.host.table.len());
        if let Some(counts) = self.encoder.intent_counts() {
            self.telemetry.gauges.set_intent(counts);
        }
        if let Some(counts) = self.encoder.gpu_counts() {
            self.telemetry.gauges.set_gpu(counts);
        }
    }

    /// Reports what the kernel accumulated in its maps since the last sweep,
    /// as far as every record stamped up to `ordered_to` has been read (a
    /// drain comes first).
    pub fn sweep(&mut self, ordered_to: u64) {
        let now = node::boot_ns();
        let host = &mut self.encoder.host;
        if !self.sweeps.sweep(&host.table, &mut host.paths, &mut self.batch, now, ordered_to) {
            IoTableFull.emit(&self.telemetry.stats);
        }
        self.encoder.tick(now, &mut self.batch);
        self.note_events();
    }

    fn note_events(&mut self) {
        if self.first_event_at.is_none() && !(self.batch.is_empty() && self.job_batches.is_empty()) {
            self.first_event_at = Some(Instant::now());
        }
    }

    /// The batches hold as many events or bytes as a batch may.
    pub fn batch_full(&self) -> bool {
        self.batch.len() + self.job_batches.len() >= self.settings.batch.max_events
            || self.batch.approx_bytes() + self.job_batches.approx_bytes() >= self.settings.batch.max_bytes
    }

    /// The batch is full, its first event is as old as a batch may wait, or
    /// a live job's heartbeat is due.
    pub fn batch_due(&self) -> bool {
        self.batch_full()
            || self
                .first_event_at
                .is_some_and(|t| t.elapsed() >= Duration::from_millis(self.settings.batch.max_delay_ms))
            || self.job_batches.heartbeats_due(&self.live_jobs()).next().is_some()
    }

    /// Jobs with a rank alive on this host.
    fn live_jobs(&self) -> Vec<String> {
        self.encoder.live_jobs()
    }

    /// The host's batch and each job's, encoded; empty ones are left out,
    /// except a live job's whose heartbeat is due. They share one header,
    /// each with its own sequence number.
    pub fn take_batches(&mut self) -> Vec<OutgoingBatch> {
        self.first_event_at = None;
        let clock = node::clock_anchor();
        let jobs = self.job_batches.take(&self.live_jobs());
        let mut seal = |key: String, builder: &mut BatchBuilder| {
            self.sequence += 1;
            let header = BatchHeader {
                node: self.node.clone(),
                clock,
                agent_run_id: self.run_id.clone(),
                sequence: self.sequence,
            };
            let batch = builder.finish(header);
            let events = batch.events.len();
            OutgoingBatch { key, payload: Bytes::from(batch.encode_to_vec()), events }
        };
        let mut batches = Vec::new();
        if !self.batch.is_empty() {
            batches.push(seal(self.node.host.clone(), &mut self.batch));
        }
        for (job, mut builder) in jobs {
            batches.push(seal(job_key(&job), &mut builder));
        }
        batches
    }
}

enum Wake {
    Ring,
    DrainTick,
    CountersTick,
    SweepTick,
    Shutdown,
}

/// Runs the capture loop until `shutdown`, then drains what is left.
pub async fn run_loop(
    mut capture: Capture,
    rings: Vec<RingBuf<MapData>>,
    queue: &mpsc::Sender<OutgoingBatch>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Capture> {
    let mut rings = rings
        .into_iter()
        // SAFETY: each ring buffer owns its fd, and its AsyncFd owns the ring
        // buffer until it is dropped at the end of this function.
        .map(|ring| {
            unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("registering a ring buffer with tokio: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let interval = |ms: u64| {
        let mut tick = tokio::time::interval(Duration::from_millis(ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    };
    let config = &capture.settings.capture;
    let mut order = EventOrder::new(config.order_slack_ms * 1_000_000);
    let mut drain_tick = interval(config.drain_interval_ms);
    let mut counters_tick = interval(config.counters_interval_ms);
    let mut sweep_tick = interval(config.sweep_interval_ms);
    loop {
        let wake = tokio::select! {
            _ = shutdown.cancelled() => Wake::Shutdown,
            (guard, _, _) = select_all(rings.iter_mut().map(|r| Box::pin(r.readable_mut()))) => {
                // Cleared before draining: data arriving meanwhile wakes us again.
                guard?.clear_ready();
                Wake::Ring
            }
            _ = drain_tick.tick() => Wake::DrainTick,
            _ = counters_tick.tick() => Wake::CountersTick,
            _ = sweep_tick.tick() => Wake::SweepTick,
        };
        match wake {
            Wake::Ring | Wake::DrainTick => drain(&mut capture, &mut rings, &mut order, queue, Until::Now).await?,
            Wake::CountersTick => capture.poll_counters(),
            Wake::SweepTick => {
                drain(&mut capture, &mut rings, &mut order, queue, Until::Now).await?;
                capture.sweep(order.ordered_to());
            }
            Wake::Shutdown => break,
        }
        capture.telemetry.gauges.set_queue_depth(queue.max_capacity() - queue.capacity());
        if capture.batch_due() {
            send(&mut capture, queue).await?;
        }
    }
    drain(&mut capture, &mut rings, &mut order, queue, Until::End).await?;
    capture.sweep(order.ordered_to());
    capture.poll_counters();
    send(&mut capture, queue).await?;
    Ok(capture)
}

/// How far a drain releases records.
#[derive(Clone, Copy)]
enum Until {
    /// Those stamped before the drain began (less the slack).
    Now,
    /// All of them: the agent is stopping.
    End,
}

/// Reads every record waiting in every ring, then turns those whose turn has
/// come into events, oldest first, sending batches as they fill.
async fn drain(
    capture: &mut Capture,
    rings: &mut [AsyncFd<RingBuf<MapData>>],
    order: &mut EventOrder,
    queue: &mpsc::Sender<OutgoingBatch>,
    until: Until,
) -> anyhow::Result<()> {
    let started = node::boot_ns();
    for ring in rings.iter_mut() {
        while let Some(item) = ring.get_mut().next() {
            RecordRead { late: order.hold(&item) }.emit(&capture.telemetry.stats);
        }
    }
    let released = match until {
        Until::Now => order.release(started),
        Until::End => order.release_all(),
    };
    for record in released.iter() {
        capture.record(record);
        // Only size is checked per record (age is checked once per drain,
        // by the caller): no clock read on the hot path.
        if capture.batch_full() {
            // Waiting here when the queue is full is the back-pressure: the
            // kernel ring fills and its drop counters say so.
            send(capture, queue).await?;
        }
    }
    Ok(())
}

async fn send(capture: &mut Capture, queue: &mpsc::Sender<OutgoingBatch>) -> anyhow::Result<()> {
    for batch in capture.take_batches() {
        queue.send(batch).await.map_err(|_| anyhow::anyhow!("the delivery task has stopped"))?;
    }
    Ok(())
}
