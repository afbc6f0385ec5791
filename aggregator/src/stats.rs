//! The aggregator's own counters: handles on the series declared in
//! [`metrics`](crate::metrics), so a stage counts without a lookup and a
//! run can return what it counted.

use std::collections::BTreeMap;
use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Mutex,
};

use plumbline_metrics::{Level, Metrics, Total};
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics as m;

#[derive(Debug)]
pub struct AggregatorStats {
    /// Every declared series' values, as `/metrics` shows them.
    pub metrics: Metrics,
    pub deliveries: Total,
    pub events: Total,
    pub events_unsupported: Total,
    pub rows_written: Total,
    pub dead_letters: Total,
    pub store_retries: Total,
    pub commit_failures: Total,
    pub collective_verdicts: Total,
    pub findings: Total,
    /// Rows that reached the session graph after their host's watermark had
    /// passed them (taken late, not dropped): `reorder_ms` is too short.
    pub session_rows_late: Total,
    /// The most a row was behind the newest row of its host when it arrived,
    /// ns (shown in seconds).
    pub session_lateness_max_ns: AtomicU64,
    pub sessions_open: Level,
    pub collectives_open: Level,
    pub calls_held_for_splits: Level,
    /// Each host's clock offset as the collective join estimates it, ns
    /// (positive: ahead of the fleet; shown in seconds).
    pub clock_offsets_ns: Mutex<BTreeMap<String, i64>>,
    pub store_write_duration: Histogram,
    pub rebalances: Total,
}

impl Default for AggregatorStats {
    fn default() -> Self {
        let metrics = Metrics::new(m::SERIES);
        let counter = |series| metrics.counter(series, &[]);
        let gauge = |series| metrics.gauge(series, &[]);
        Self {
            deliveries: counter(&m::DELIVERIES),
            events: counter(&m::EVENTS),
            events_unsupported: counter(&m::EVENTS_UNSUPPORTED),
            rows_written: counter(&m::ROWS_WRITTEN),
            dead_letters: counter(&m::DEAD_LETTERS),
            store_retries: counter(&m::STORE_RETRIES),
            commit_failures: counter(&m::COMMIT_FAILURES),
            collective_verdicts: counter(&m::COLLECTIVE_VERDICTS),
            findings: counter(&m::FINDINGS),
            session_rows_late: counter(&m::SESSION_ROWS_LATE),
            session_lateness_max_ns: AtomicU64::new(0),
            sessions_open: gauge(&m::SESSIONS_OPEN),
            collectives_open: gauge(&m::COLLECTIVES_OPEN),
            calls_held_for_splits: gauge(&m::CALLS_HELD_FOR_SPLITS),
            clock_offsets_ns: Mutex::default(),
            store_write_duration: metrics.histogram(&m::STORE_WRITE_DURATION, &[]),
            rebalances: counter(&m::REBALANCES),
            metrics,
        }
    }
}

/// The counters at one moment, for a run's result and its last log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregatorSnapshot {
    pub deliveries: u64,
    pub events: u64,
    pub events_unsupported: u64,
    pub rows_written: u64,
    pub dead_letters: u64,
    pub store_retries: u64,
    pub commit_failures: u64,
    pub collective_verdicts: u64,
    pub findings: u64,
    pub session_rows_late: u64,
    pub session_lateness_max_ns: u64,
    pub sessions_open: u64,
    pub collectives_open: u64,
    pub calls_held_for_splits: u64,
    pub rebalances: u64,
}

impl AggregatorStats {
    pub fn add(counter: &Total, n: u64) {
        counter.inc_by(n);
    }

    pub fn set(gauge: &Level, n: u64) {
        gauge.set(n as f64);
    }

    /// Raises a high-water mark.
    pub fn raise(mark: &AtomicU64, n: u64) {
        mark.fetch_max(n, Relaxed);
    }

    pub fn snapshot(&self) -> AggregatorSnapshot {
        AggregatorSnapshot {
            deliveries: self.deliveries.get(),
            events: self.events.get(),
            events_unsupported: self.events_unsupported.get(),
            rows_written: self.rows_written.get(),
            dead_letters: self.dead_letters.get(),
            store_retries: self.store_retries.get(),
            commit_failures: self.commit_failures.get(),
            collective_verdicts: self.collective_verdicts.get(),
            findings: self.findings.get(),
            session_rows_late: self.session_rows_late.get(),
            session_lateness_max_ns: self.session_lateness_max_ns.load(Relaxed),
            sessions_open: self.sessions_open.get() as u64,
            collectives_open: self.collectives_open.get() as u64,
            calls_held_for_splits: self.calls_held_for_splits.get() as u64,
            rebalances: self.rebalances.get(),
        }
    }
}

/// The text exposition, as of now: the values kept elsewhere (the session
/// stage's lateness mark, the collective join's clock offsets) are sampled
/// into their series first.
pub fn render(stats: &AggregatorStats) -> String {
    let lateness_ns = stats.session_lateness_max_ns.load(std::sync::atomic::Ordering::Relaxed);
    stats.metrics.gauge(&m::SESSION_LATENESS_MAX, &[]).set(lateness_ns as f64 / 1e9);
    let offsets = stats.clock_offsets_ns.lock().unwrap_or_else(|e| e.into_inner());
    stats.metrics.clear(&m::CLOCK_OFFSET);
    for (host, ns) in offsets.iter() {
        stats.metrics.gauge(&m::CLOCK_OFFSET, &[host]).set(*ns as f64 / 1e9);
    }
    drop(offsets);
    stats.metrics.render()
}

#[cfg(test)]
mod tests {
    use plumbline_transport::PartitionLag;

    use std::time::Duration;

    use plumbline_metrics::InternalEvent;
    use plumbline_transport::SourceStatus;

    use super::*;
    use crate::events::{SourceReported, StoreWritten};

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

    #[test]
    fn writes_are_timed_and_the_kafka_consumers_lag_follows_its_latest_statistics() {
        let stats = AggregatorStats::default();
        StoreWritten { rows: 10, took: Duration::from_millis(3) }.emit(&stats);
        let lag = |partition, messages| PartitionLag { topic: "t".into(), partition, messages };
        SourceReported(SourceStatus { rebalances: 2, lag: vec![lag(0, 5), lag(1, 0)] }).emit(&stats);
        SourceReported(SourceStatus { rebalances: 3, lag: vec![lag(1, 7)] }).emit(&stats);
        let text = render(&stats);
        assert!(text.contains("plumbline_aggregator_rows_written_total 10"), "{text}");
        assert!(text.contains("plumbline_aggregator_store_write_duration_seconds_bucket{le=\"0.004\"} 1"), "{text}");
        assert!(text.contains("plumbline_aggregator_rebalances_total 3"), "{text}");
        assert!(text.contains("plumbline_aggregator_consumer_lag_messages{topic=\"t\",partition=\"1\"} 7"), "{text}");
        assert!(!text.contains("partition=\"0\""), "a revoked partition's lag is gone: {text}");
    }
}
