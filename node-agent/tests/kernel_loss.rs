//! On the real kernel (root): with a tiny ring and nobody reading, process
//! records that do not fit are counted per CPU in the programs' counters, the
//! counters turn into losses exactly once, and what did fit parses.

use std::process::Command;

use plumbline_ebpf::{abi, record::Record};
use plumbline_node_agent::{
    config::CaptureConfig,
    filters::Filters,
    gpu::config::GpuConfig,
    kernel_counters::KernelCounters,
    node,
    probes::{attach_all, LoadedObject},
};

fn outcome_total(counters: &KernelCounters, outcome: &str) -> u64 {
    counters.totals().unwrap().iter().filter(|t| t.outcome == outcome).map(|t| t.value).sum()
}

#[test]
fn a_full_ring_counts_every_lost_record_and_reports_it_once() {
    let capture = CaptureConfig {
        ring_buffer_kib: 4,
        wakeup_kib: 1,
        files: false,
        network: false,
        ipc: false,
        tls: false,
        gpu: GpuConfig { enabled: false, ..GpuConfig::default() },
        ..Default::default()
    };
    let mut objects = attach_all(&capture, &Filters::default()).expect("attach (as root)");
    assert_eq!(objects.len(), 1, "process capture only");
    // The programs stay attached while `_ebpf` lives.
    let LoadedObject { spec, ebpf: _ebpf, ring, counters } = objects.remove(0);
    let mut ring = ring.expect("the process object has a ring");
    let mut counters = KernelCounters::new(vec![(spec.object.name, counters)], node::boot_ns());

    // Each process writes fork + exec (with argv) + exit records: far more
    // than a 4 KiB ring holds while nobody reads.
    for _ in 0..200 {
        Command::new("/bin/true").arg("fill-the-ring").status().unwrap();
    }

    let emitted_before = outcome_total(&counters, "emitted");
    let lost = outcome_total(&counters, "ringbuf_full");
    assert!(lost > 0, "a 4 KiB ring cannot hold 600 records");
    let losses = counters.losses(node::boot_ns()).unwrap();
    assert_eq!(losses.iter().map(|l| l.count).sum::<u64>(), lost, "every lost record is in a loss: {losses:?}");
    assert!(losses.iter().all(|l| l.from_ns < l.to_ns && l.count > 0));
    assert!(losses.iter().any(|l| l.kind == abi::kind::name(abi::kind::PROC_EXEC).unwrap()));

    let mut drained = 0u64;
    while let Some(item) = ring.next() {
        Record::parse(&item).expect("what fitted parses");
        drained += 1;
    }
    let emitted_after = outcome_total(&counters, "emitted");
    assert!(
        (emitted_before..=emitted_after).contains(&drained),
        "the ring held exactly what was emitted: {emitted_before} <= {drained} <= {emitted_after}"
    );
    let again: u64 = counters.losses(node::boot_ns()).unwrap().iter().map(|l| l.count).sum();
    assert_eq!(again, outcome_total(&counters, "ringbuf_full") - lost, "a loss is reported once");
}
