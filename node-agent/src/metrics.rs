//! What the agent reports on `GET /metrics`, declared once: the BPF
//! programs' counters per object, kind and outcome (emitted, lost to a full
//! ring, filtered, collapsed ...), the agent's own counters, its queue depth
//! and process table size, and its CPU time and memory.

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc, Mutex,
};

use plumbline_metrics::{Metrics, Series};

use crate::{
    enforce::tier::TierReport, enforcement_events::DecisionCounts, kernel_counters::CounterTotal, stats::AgentStats,
};

/// Another component's exposition, appended to the agent's.
#[derive(Clone)]
pub struct MoreMetrics(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for MoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MoreMetrics")
    }
}

/// What the capture loop reports for the endpoint between scrapes.
#[derive(Default)]
pub struct Gauges {
    kernel: Mutex<Vec<CounterTotal>>,
    queue_depth: AtomicU64,
    process_table: AtomicU64,
    intent: Mutex<crate::intent::IntentCounts>,
    gpu: Mutex<crate::gpu::GpuCounts>,
    tier: Mutex<Option<TierReport>>,
    decisions: DecisionCounts,
}

impl Gauges {
    pub fn set_kernel_totals(&self, totals: Vec<CounterTotal>) {
        *self.kernel.lock().unwrap() = totals;
    }

    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.store(depth as u64, Relaxed);
    }

    pub fn set_process_table(&self, len: usize) {
        self.process_table.store(len as u64, Relaxed);
    }

    pub fn set_intent(&self, counts: crate::intent::IntentCounts) {
        *self.intent.lock().unwrap() = counts;
    }

    pub fn set_gpu(&self, counts: crate::gpu::GpuCounts) {
        *self.gpu.lock().unwrap() = counts;
    }

    pub fn set_tier(&self, tier: TierReport) {
        *self.tier.lock().unwrap() = Some(tier);
    }

    /// Where the encoder counts the policy decisions it sees.
    pub fn decisions(&self) -> DecisionCounts {
        self.decisions.clone()
    }
}

pub static BPF_EVENTS: Series = Series::counter(
    "plumbline_agent_bpf_events_total",
    "Events the BPF programs handled, by object, kind and outcome (emitted, ringbuf_full, read_failed, map_full, filtered, collapsed)",
)
.labels(&["object", "kind", "outcome"]);
pub static RECORDS: Series = Series::counter("plumbline_agent_records_total", "Records read from the ring buffers");
pub static RECORDS_MALFORMED: Series =
    Series::counter("plumbline_agent_records_malformed_total", "Records that did not parse, dropped");
pub static RECORDS_UNKNOWN_KIND: Series =
    Series::counter("plumbline_agent_records_unknown_kind_total", "Records of kinds this agent does not know, skipped");
pub static RECORDS_LATE: Series =
    Series::counter("plumbline_agent_records_late_total", "Records read after later ones were turned into events");
pub static IO_TABLE_FULL: Series = Series::counter(
    "plumbline_agent_io_table_full_total",
    "Sweeps that found the IO accounting table full (totals may be lost)",
);
pub static KERNEL_LOST_EVENTS: Series =
    Series::counter("plumbline_agent_kernel_lost_events_total", "Events the kernel could not write (ring buffer full)");
pub static BATCHES_SENT: Series =
    Series::counter("plumbline_agent_batches_sent_total", "Batches the sink acknowledged");
pub static EVENTS_SENT: Series = Series::counter("plumbline_agent_events_sent_total", "Events in acknowledged batches");
pub static BYTES_SENT: Series =
    Series::counter("plumbline_agent_bytes_sent_total", "Encoded bytes in acknowledged batches");
pub static SEND_RETRIES: Series =
    Series::counter("plumbline_agent_send_retries_total", "Sends retried after the sink could not take a batch yet");
pub static BATCHES_LOST: Series =
    Series::counter("plumbline_agent_batches_lost_total", "Batches given up on (refused, or unsent at shutdown)");
pub static EVENTS_LOST: Series = Series::counter("plumbline_agent_events_lost_total", "Events in batches given up on");
pub static TLS_EXCHANGES: Series =
    Series::counter("plumbline_agent_tls_exchanges_total", "HTTP exchanges read from TLS plaintext");
pub static LLM_CALLS: Series =
    Series::counter("plumbline_agent_llm_calls_total", "Exchanges with an LLM endpoint, sent as LLM calls");
pub static TLS_BYTES_LOST: Series = Series::counter(
    "plumbline_agent_tls_bytes_lost_total",
    "TLS plaintext known lost (refused pieces, bytes past the capture limit)",
);
pub static GPU_CUDA_CALLS: Series = Series::counter("plumbline_agent_gpu_cuda_calls_total", "CUDA runtime calls read");
pub static GPU_NCCL_CALLS: Series = Series::counter("plumbline_agent_gpu_nccl_calls_total", "NCCL calls read");
pub static GPU_NCCL_UNKNOWN_COMMUNICATOR: Series = Series::counter(
    "plumbline_agent_gpu_nccl_unknown_communicator_total",
    "NCCL calls on a communicator whose creation was not seen (sent with the host's events)",
);
pub static GPU_KERNELS_UNNAMED: Series =
    Series::counter("plumbline_agent_gpu_kernels_unnamed_total", "Kernel launches whose function could not be named");
pub static GPU_LIBRARIES_HOOKED: Series =
    Series::gauge("plumbline_agent_gpu_libraries_hooked", "libcudart and libnccl files hooked");
pub static ENFORCEMENT_TIER: Series = Series::gauge(
    "plumbline_agent_enforcement_tier",
    "1 for what this node enforces with: fallback (network refused before any packet, execs killed before the program runs) or observe (no policy)",
)
.labels(&["tier"]);
pub static BPF_LSM_LISTED: Series = Series::gauge(
    "plumbline_agent_bpf_lsm_listed",
    "1 when the kernel lists bpf among its active LSMs (listed is not proof that LSM programs run)",
);
pub static ENFORCEMENT_DECISIONS: Series = Series::counter(
    "plumbline_agent_enforcement_decisions_total",
    "Workload policy decisions seen, by role, family (exec, file, network) and decision (denied, killed_after, would_deny)",
)
.labels(&["role", "family", "decision"]);
pub static QUEUE_DEPTH: Series = Series::gauge("plumbline_agent_queue_depth", "Batches waiting for the sink");
pub static PROCESS_TABLE: Series = Series::gauge("plumbline_agent_process_table", "Processes the agent knows");
/// sysinfo gives the agent's CPU time in milliseconds.
pub static CPU_SECONDS: Series =
    Series::counter("plumbline_agent_cpu_seconds_total", "CPU time the agent used").counted_per_unit(1000);
pub static RESIDENT_MEMORY: Series =
    Series::gauge("plumbline_agent_resident_memory_bytes", "The agent's resident memory");

/// Everything the agent reports, in the order `/metrics` shows it.
pub static SERIES: &[&Series] = &[
    &BPF_EVENTS,
    &RECORDS,
    &RECORDS_MALFORMED,
    &RECORDS_UNKNOWN_KIND,
    &RECORDS_LATE,
    &IO_TABLE_FULL,
    &KERNEL_LOST_EVENTS,
    &BATCHES_SENT,
    &EVENTS_SENT,
    &BYTES_SENT,
    &SEND_RETRIES,
    &BATCHES_LOST,
    &EVENTS_LOST,
    &TLS_EXCHANGES,
    &LLM_CALLS,
    &TLS_BYTES_LOST,
    &GPU_CUDA_CALLS,
    &GPU_NCCL_CALLS,
    &GPU_NCCL_UNKNOWN_COMMUNICATOR,
    &GPU_KERNELS_UNNAMED,
    &GPU_LIBRARIES_HOOKED,
    &ENFORCEMENT_TIER,
    &BPF_LSM_LISTED,
    &ENFORCEMENT_DECISIONS,
    &QUEUE_DEPTH,
    &PROCESS_TABLE,
    &CPU_SECONDS,
    &RESIDENT_MEMORY,
];

/// The text exposition of everything, as of now. The agent's counts are
/// kept where they happen (the BPF maps, [`AgentStats`], the capture loop's
/// [`Gauges`]): each is brought into its declared series first.
pub fn render(metrics: &Metrics, stats: &AgentStats, gauges: &Gauges) -> String {
    for total in gauges.kernel.lock().unwrap().iter() {
        metrics.counter(&BPF_EVENTS, &[total.object, total.kind, total.outcome]).catch_up(total.value);
    }
    let s = stats.snapshot();
    let intent = *gauges.intent.lock().unwrap();
    let gpu = *gauges.gpu.lock().unwrap();
    for (series, total) in [
        (&RECORDS, s.records),
        (&RECORDS_MALFORMED, s.records_malformed),
        (&RECORDS_UNKNOWN_KIND, s.records_unknown_kind),
        (&RECORDS_LATE, s.records_late),
        (&IO_TABLE_FULL, s.io_table_full),
        (&KERNEL_LOST_EVENTS, s.kernel_lost),
        (&BATCHES_SENT, s.batches_sent),
        (&EVENTS_SENT, s.events_sent),
        (&BYTES_SENT, s.bytes_sent),
        (&SEND_RETRIES, s.send_retries),
        (&BATCHES_LOST, s.batches_lost),
        (&EVENTS_LOST, s.events_lost),
        (&TLS_EXCHANGES, intent.exchanges),
        (&LLM_CALLS, intent.llm_calls),
        (&TLS_BYTES_LOST, intent.bytes_lost),
        (&GPU_CUDA_CALLS, gpu.cuda_calls),
        (&GPU_NCCL_CALLS, gpu.nccl_calls),
        (&GPU_NCCL_UNKNOWN_COMMUNICATOR, gpu.nccl_unknown_communicator),
        (&GPU_KERNELS_UNNAMED, gpu.kernels_unnamed),
    ] {
        metrics.counter(series, &[]).catch_up(total);
    }
    if let Some(report) = *gauges.tier.lock().unwrap() {
        metrics.gauge(&ENFORCEMENT_TIER, &[report.tier.name()]).set(1.0);
        metrics.gauge(&BPF_LSM_LISTED, &[]).set(f64::from(u8::from(report.bpf_lsm_listed)));
    }
    for ((role, family, decision), total) in gauges.decisions.totals() {
        metrics.counter(&ENFORCEMENT_DECISIONS, &[&role, family, decision]).catch_up(total);
    }
    for (series, level) in [
        (&GPU_LIBRARIES_HOOKED, gpu.libraries_hooked),
        (&QUEUE_DEPTH, gauges.queue_depth.load(Relaxed)),
        (&PROCESS_TABLE, gauges.process_table.load(Relaxed)),
    ] {
        metrics.gauge(series, &[]).set(level as f64);
    }

    let pid = sysinfo::Pid::from_u32(std::process::id());
    if let Ok(mut system) = sysinfo::System::new() {
        let refresh = sysinfo::ProcessRefreshKind::nothing().with_cpu().with_memory();
        system.refresh_processes_specifics(sysinfo::ProcessesToUpdate::Some(&[pid]), false, refresh);
        if let Some(process) = system.process(pid) {
            metrics.counter(&CPU_SECONDS, &[]).catch_up(process.accumulated_cpu_time());
            metrics.gauge(&RESIDENT_MEMORY, &[]).set(process.memory() as f64);
        }
    }
    metrics.render()
}

/// The agent's exposition, with `more` (a single-host run's aggregator
/// and query service) after it.
pub fn exposition(stats: Arc<AgentStats>, gauges: Arc<Gauges>, more: Option<MoreMetrics>) -> plumbline_metrics::Render {
    let metrics = Metrics::new(SERIES);
    Arc::new(move || {
        let text = render(&metrics, &stats, &gauges);
        match &more {
            Some(more) => plumbline_metrics::join(&text, &(more.0)()),
            None => text,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declarations_follow_the_naming_rules() {
        plumbline_metrics::check("plumbline_agent_", SERIES).unwrap();
    }

    #[test]
    fn the_exposition_names_every_counter_and_the_bpf_outcomes() {
        let stats = AgentStats::default();
        AgentStats::add(&stats.records, 5);
        let gauges = Gauges::default();
        gauges.set_kernel_totals(vec![CounterTotal {
            object: "file",
            kind: "file_open",
            outcome: "ringbuf_full",
            value: 7,
        }]);
        let text = render(&Metrics::new(SERIES), &stats, &gauges);
        assert!(text.contains("plumbline_agent_records_total 5"), "{text}");
        assert!(
            text.contains(
                r#"plumbline_agent_bpf_events_total{object="file",kind="file_open",outcome="ringbuf_full"} 7"#
            ),
            "{text}"
        );
        assert!(text.contains("plumbline_agent_resident_memory_bytes"), "{text}");
    }
}
