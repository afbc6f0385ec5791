//! The agent's Prometheus endpoint (`GET /metrics`): the BPF programs' counters
//! per object, kind and outcome (emitted, lost to a full ring, filtered,
//! collapsed ...), the agent's own counters, its queue depth and process
//! table size, and its CPU time and memory.

use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Arc, Mutex,
};

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{kernel_counters::CounterTotal, stats::AgentStats};

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
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BpfLabels {
    object: String,
    kind: String,
    outcome: String,
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let metric = Counter::<u64>::default();
    metric.inc_by(value);
    registry.register(name, help, metric);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let metric = Gauge::<i64>::default();
    metric.set(value);
    registry.register(name, help, metric);
}

/// The text exposition of everything, as of now.
pub fn render(stats: &AgentStats, gauges: &Gauges) -> String {
    let mut registry = Registry::with_prefix("plumbline_agent");
    let bpf = Family::<BpfLabels, Counter<u64>>::default();
    for total in gauges.kernel.lock().unwrap().iter() {
        let labels = BpfLabels { object: total.object.into(), kind: total.kind.into(), outcome: total.outcome.into() };
        bpf.get_or_create(&labels).inc_by(total.value);
    }
    registry.register(
        "bpf_events",
        "Events the BPF programs handled, by object, kind and outcome (emitted, ringbuf_full, read_failed, map_full, filtered, collapsed)",
        bpf,
    );
    let s = stats.snapshot();
    for (name, help, value) in [
        ("records", "Records read from the ring buffers", s.records),
        ("records_malformed", "Records that did not parse, dropped", s.records_malformed),
        ("records_unknown_kind", "Records of kinds this agent does not know, skipped", s.records_unknown_kind),
        ("records_late", "Records read after later ones were turned into events", s.records_late),
        ("io_table_full", "Sweeps that found the IO accounting table full (totals may be lost)", s.io_table_full),
        ("kernel_lost_events", "Events the kernel could not write (ring buffer full)", s.kernel_lost),
        ("batches_sent", "Batches the sink acknowledged", s.batches_sent),
        ("events_sent", "Events in acknowledged batches", s.events_sent),
        ("bytes_sent", "Encoded bytes in acknowledged batches", s.bytes_sent),
        ("send_retries", "Sends retried after the sink could not take a batch yet", s.send_retries),
        ("batches_lost", "Batches given up on (refused, or unsent at shutdown)", s.batches_lost),
        ("events_lost", "Events in batches given up on", s.events_lost),
    ] {
        counter(&mut registry, name, help, value);
    }
    let intent = *gauges.intent.lock().unwrap();
    for (name, help, value) in [
        ("tls_exchanges", "HTTP exchanges read from TLS plaintext", intent.exchanges),
        ("llm_calls", "Exchanges with an LLM endpoint, sent as LLM calls", intent.llm_calls),
        (
            "tls_bytes_lost",
            "TLS plaintext known lost (refused pieces, bytes past the capture limit)",
            intent.bytes_lost,
        ),
    ] {
        counter(&mut registry, name, help, value);
    }
    let gpu = *gauges.gpu.lock().unwrap();
    for (name, help, value) in [
        ("gpu_cuda_calls", "CUDA runtime calls read", gpu.cuda_calls),
        ("gpu_nccl_calls", "NCCL calls read", gpu.nccl_calls),
        (
            "gpu_nccl_unknown_communicator",
            "NCCL calls on a communicator whose creation was not seen (sent with the host's events)",
            gpu.nccl_unknown_communicator,
        ),
        ("gpu_kernels_unnamed", "Kernel launches whose function could not be named", gpu.kernels_unnamed),
    ] {
        counter(&mut registry, name, help, value);
    }
    gauge(&mut registry, "gpu_libraries_hooked", "libcudart and libnccl files hooked", gpu.libraries_hooked as i64);
    gauge(&mut registry, "queue_depth", "Batches waiting for the sink", gauges.queue_depth.load(Relaxed) as i64);
    gauge(&mut registry, "process_table", "Processes the agent knows", gauges.process_table.load(Relaxed) as i64);

    let pid = sysinfo::Pid::from_u32(std::process::id());
    if let Ok(mut system) = sysinfo::System::new() {
        let refresh = sysinfo::ProcessRefreshKind::nothing().with_cpu().with_memory();
        system.refresh_processes_specifics(sysinfo::ProcessesToUpdate::Some(&[pid]), false, refresh);
        if let Some(process) = system.process(pid) {
            counter(&mut registry, "cpu_milliseconds", "CPU time the agent used", process.accumulated_cpu_time());
            gauge(&mut registry, "resident_memory_bytes", "The agent's resident memory", process.memory() as i64);
        }
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("formatting into a String");
    out
}

/// The agent's exposition, with `more` (a single-host run's aggregator
/// and query service) after it.
pub fn exposition(stats: Arc<AgentStats>, gauges: Arc<Gauges>, more: Option<MoreMetrics>) -> plumbline_metrics::Render {
    Arc::new(move || {
        let text = render(&stats, &gauges);
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
        let text = render(&stats, &gauges);
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
