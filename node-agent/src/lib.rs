//! Plumbline's node agent: loads the eBPF programs, drains their ring
//! buffers, keeps the process table and publishes `plumbline.v1` batches to a
//! sink (Kafka, the in-process channel, or stdout).
//!
//! The road: [`probes`] load each object as its spec declares and attach →
//! [`capture`] drains records, put in [`event_order`] across the rings; the
//! [`encoder`] keeps the [`process_table`] and turns records into events
//! ([`kernel_events`], [`activity_events`], [`intent`] for TLS, [`gpu`] for
//! CUDA and NCCL, which hear of processes through [`process_hooks`]);
//! [`sweeps`] report what the kernel accumulates in maps → [`delivery`]
//! hands each batch to the sink until it is acknowledged. [`metrics`] serves
//! the agent's counters to Prometheus.

pub mod activity_events;
pub mod batches;
pub mod capture;
pub mod cgroups;
pub mod config;
pub mod containers;
pub mod delivery;
pub mod dns;
pub mod encoder;
pub mod enforce;
pub mod enforcement_events;
pub mod event_order;
pub mod events;
pub mod file_paths;
pub mod file_probes;
pub mod filters;
pub mod gpu;
pub mod intent;
pub mod kernel_counters;
pub mod kernel_events;
pub mod metrics;
pub mod node;
pub mod probes;
pub mod proc_scan;
pub mod process_hooks;
pub mod process_table;
pub mod stats;
pub mod sweeps;

use std::{sync::Arc, time::Duration};

use aya::{
    maps::{HashMap, MapData, RingBuf},
    Ebpf,
};

use anyhow::Context;
use plumbline_transport::{kafka, stdout::StdoutSink, BatchSink};
use probes::{Libraries, SweepMap};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::{AgentConfig, CaptureSettings, SinkConfig};
pub use stats::{AgentStats, StatsSnapshot};

/// How long shutdown waits for queued batches to be delivered.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The sink `[sink]` names; for Kafka, creates the topic when asked to.
pub async fn sink_from_config(config: &SinkConfig) -> anyhow::Result<Arc<dyn BatchSink>> {
    Ok(match config {
        SinkConfig::Kafka(k) => {
            if k.create_topic {
                kafka::spawn_topic_creation(k.topic_spec());
            }
            Arc::new(kafka::KafkaSink::new(k).context("creating the Kafka producer")?)
        }
        SinkConfig::Stdout => Arc::new(StdoutSink),
    })
}

/// Captures until `shutdown` is cancelled, then delivers what is queued
/// (for up to [`SHUTDOWN_GRACE`]). Returns the agent's counters.
pub async fn run(
    config: CaptureSettings<'_>,
    sink: Arc<dyn BatchSink>,
    shutdown: CancellationToken,
) -> anyhow::Result<StatsSnapshot> {
    run_with_control(config, sink, None, shutdown).await
}

/// [`run`], answering the policy updates (quarantines) that come on
/// `control`: applied with the workload policy's enforcer when one is loaded,
/// acknowledged either way.
pub async fn run_with_control(
    config: CaptureSettings<'_>,
    sink: Arc<dyn BatchSink>,
    control: Option<Box<dyn plumbline_transport::control::ControlSubscriber>>,
    shutdown: CancellationToken,
) -> anyhow::Result<StatsSnapshot> {
    let node = node::identity(config.node.host.as_deref()).context("reading the node's identity")?;
    let filters = filters::Filters::resolve(config.filter, std::process::id())?;
    let objects = probes::attach_all(config.capture, &filters)?;
    let Parted { mut kernel, rings, attached, policy_maps, rate } = part(objects, node::boot_ns())?;
    let tier = enforce::tier::TierReport::detect(policy_maps.as_ref().map(|(_, tier, _)| *tier));
    if let Some((maps, _, aborter)) = policy_maps {
        let enforce = &config.capture.enforce;
        // The TLS drain asks the kernel who is enrolled, not the enforcer.
        let pods = maps.pods_reader()?;
        let pod_of: enforce::llm_enforcement::PodOf = Box::new(move |tgid| pods.get(&tgid, 0).ok());
        let llm = enforce::llm_enforcement::LlmEnforcement::start(&config.capture.intent.endpoints, pod_of, aborter)?;
        let llm = Arc::new(llm);
        let mut enforcer = enforce::enforcer::Enforcer::start(enforce, maps, tier, llm.clone())?;
        if let Some(ebpf) = rate {
            let hosts = enforce::rate::endpoint_hosts(&config.capture.intent.endpoints);
            enforcer.set_rate(enforce::rate::RateLimiter::new(ebpf, &hosts)?)?;
        }
        let enforcer = Arc::new(std::sync::Mutex::new(enforcer));
        enforce::enforcer::Enforcer::spawn_upkeep(enforcer.clone(), shutdown.clone());
        enforce::control::spawn(&enforce.control_socket, enforcer.clone(), shutdown.clone())
            .with_context(|| format!("capture.enforce.control_socket {}", enforce.control_socket.display()))?;
        kernel.enforcer = Some(enforcer);
        kernel.llm = Some(llm);
    }
    let telemetry =
        capture::Telemetry { stats: Arc::new(AgentStats::default()), gauges: Arc::new(metrics::Gauges::default()) };
    let capture::Telemetry { stats, gauges } = telemetry.clone();
    gauges.set_tier(tier);
    let settings = capture::Settings { capture: config.capture.clone(), batch: config.batch.clone() };
    let control_enforcer = kernel.enforcer.clone();
    let mut capture = capture::Capture::new(node.clone(), kernel, telemetry, settings);
    capture.seed_from_proc();
    tracing::info!(host = %node.host, boot_id = %node.boot_id, sink = sink.name(), "capturing");

    let render = metrics::exposition(stats.clone(), gauges.clone(), config.more_metrics.cloned());
    plumbline_metrics::spawn(&config.metrics.listen, render, shutdown.clone()).context("metrics.listen")?;

    let (queue, queued) = mpsc::channel(config.batch.queue_batches);
    if let Some(control) = control {
        let endpoints = &config.capture.intent.endpoints;
        let enforcer = control_enforcer;
        enforce::quarantine_updates::spawn_listener(
            control,
            node.clone(),
            enforcer,
            endpoints,
            queue.clone(),
            shutdown.clone(),
        );
    }
    let give_up = CancellationToken::new();
    let mut delivery = tokio::spawn(delivery::deliver(sink, queued, stats.clone(), give_up.clone()));
    let result = capture::run_loop(capture, rings, &queue, &shutdown).await;
    drop(attached);
    drop(queue);
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut delivery).await.is_err() {
        give_up.cancel();
        delivery.await.context("delivery task")?;
    }
    result?;
    let snapshot = stats.snapshot();
    tracing::info!(?snapshot, "agent stopped");
    Ok(snapshot)
}

/// The loaded objects, parted by who reads what.
struct Parted {
    kernel: capture::KernelSide,
    rings: Vec<RingBuf<MapData>>,
    /// The objects whose programs all attached at load: they stay attached
    /// while these live.
    attached: Vec<Ebpf>,
    /// The workload policy's maps, when the enforce object is loaded, and
    /// what aborting its LLM connections takes.
    policy_maps: Option<(enforce::kernel::KernelPolicy, enforce::tier::Tier, enforce::sock_destroy::Aborter)>,
    /// The enforce object itself: its LLM rate uprobes are attached file by
    /// file (see `enforce::rate`), and its other programs stay attached
    /// while it lives.
    rate: Option<Ebpf>,
}

/// Parts the objects as their specs declare: sweep maps to the sweeps,
/// uprobe objects to the captures that attach them as libraries are found.
fn part(objects: Vec<probes::LoadedObject>, now_ns: u64) -> anyhow::Result<Parted> {
    let mut sweeps = sweeps::Sweeps::default();
    let mut uprobes = capture::UprobeObjects::default();
    let mut rings = Vec::new();
    let mut counter_maps = Vec::new();
    let mut attached = Vec::new();
    let mut policy_maps = None;
    let mut rate = None;
    for mut object in objects {
        if let Some(tier) = object.spec.enforces {
            let maps = enforce::kernel::KernelPolicy::new(&mut object.ebpf)?;
            policy_maps = Some((maps, tier, enforce::sock_destroy::Aborter::load(&mut object.ebpf)?));
        }
        for sweep in object.spec.sweeps {
            let map = object.take_map(sweep.map())?;
            match sweep {
                SweepMap::IoStats => sweeps.io = Some(sweeps::IoSweep::new(HashMap::try_from(map)?)),
                SweepMap::OpenRepeats => sweeps.repeats = Some(sweeps::RepeatSweep::new(HashMap::try_from(map)?)),
            }
        }
        let probes::LoadedObject { spec, ebpf, ring, counters } = object;
        rings.extend(ring);
        counter_maps.push((spec.object.name, counters));
        match spec.libraries {
            None if spec.enforces.is_some() => rate = Some(ebpf),
            None => attached.push(ebpf),
            Some(Libraries::Tls) => uprobes.tls = Some(intent::attach::TlsProbes::new(ebpf)),
            Some(Libraries::Gpu) => uprobes.gpu = Some(file_probes::FileProbes::new(ebpf)),
        }
    }
    let counters = kernel_counters::KernelCounters::new(counter_maps, now_ns);
    let kernel = capture::KernelSide { counters, sweeps, uprobes, enforcer: None, llm: None };
    Ok(Parted { kernel, rings, attached, policy_maps, rate })
}
