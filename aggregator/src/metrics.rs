//! The aggregator's Prometheus endpoint (`GET /metrics`): what it received,
//! decoded, wrote and set aside, what it judged, and how late rows reached
//! the session graph.

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::stats::AggregatorStats;

/// The text exposition of the counters, as of now.
pub fn render(stats: &AggregatorStats) -> String {
    let mut registry = Registry::with_prefix("plumbline_aggregator");
    let s = stats.snapshot();
    for (name, help, value) in [
        ("deliveries", "Payloads received from the source", s.deliveries),
        ("events", "Events decoded from valid batches", s.events),
        ("events_unsupported", "Events of kinds this version does not store (skipped)", s.events_unsupported),
        ("rows_written", "Rows the store acknowledged", s.rows_written),
        ("dead_letters", "Payloads set aside in dead_letters", s.dead_letters),
        ("store_retries", "Store writes retried after a transient error", s.store_retries),
        ("commit_failures", "Offset commits that failed (the batches will be re-delivered)", s.commit_failures),
        ("collective_verdicts", "NCCL collectives judged across their ranks", s.collective_verdicts),
        ("findings", "Findings about agent sessions", s.findings),
        (
            "session_rows_late",
            "Rows that reached the session graph after their host's watermark had passed them (taken late, not dropped)",
            s.session_rows_late,
        ),
    ] {
        let metric = Counter::<u64>::default();
        metric.inc_by(value);
        registry.register(name, help, metric);
    }
    let lateness = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    lateness.set(s.session_lateness_max_ns as f64 / 1e9);
    registry.register(
        "session_lateness_max_seconds",
        "The most a row was behind the newest row of its host when it arrived",
        lateness,
    );
    for (name, help, value) in [
        ("collectives_open", "NCCL collective instances waiting for ranks (not judged hung)", s.collectives_open),
        (
            "calls_held_for_splits",
            "NCCL calls on split communicators held until every rank of the parent reported its split",
            s.calls_held_for_splits,
        ),
    ] {
        let metric = Gauge::<i64>::default();
        metric.set(value as i64);
        registry.register(name, help, metric);
    }
    let offsets = Family::<Vec<(String, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (host, ns) in stats.clock_offsets_ns.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        offsets.get_or_create(&vec![("host".to_string(), host.clone())]).set(*ns as f64 / 1e9);
    }
    registry.register(
        "clock_offset_seconds",
        "Each host's clock offset from its collectives' median arrivals, as the collective join estimates and removes it (positive: ahead)",
        offsets,
    );
    let mut out = String::new();
    encode(&mut out, &registry).expect("formatting into a String");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_late_rows_and_their_lateness() {
        let stats = AggregatorStats::default();
        AggregatorStats::add(&stats.session_rows_late, 3);
        AggregatorStats::raise(&stats.session_lateness_max_ns, 1_500_000_000);
        let text = render(&stats);
        assert!(text.contains("plumbline_aggregator_session_rows_late_total 3"), "{text}");
        assert!(text.contains("plumbline_aggregator_session_lateness_max_seconds 1.5"), "{text}");
        assert!(text.contains("plumbline_aggregator_dead_letters_total 0"), "{text}");
    }
}
