//! What the aggregator reports on `GET /metrics`, declared once: what it
//! received, decoded, wrote and set aside, how long the store took, what
//! it judged, how late rows reached the session graph, and how far behind
//! its Kafka consumer is. Occurrences worth a log line are the events
//! below, each logging and counting in one place.

use std::time::Duration;

use plumbline_metrics::{InternalEvent, Series};
use plumbline_store::StoreError;
use plumbline_transport::{SourceError, SourceStatus};

use crate::stats::AggregatorStats;

/// Store writes: 1 ms to about 33 s, doubling.
const WRITE_BUCKETS: &[f64] =
    &[0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384, 32.768];

pub static DELIVERIES: Series =
    Series::counter("plumbline_aggregator_deliveries_total", "Payloads received from the source");
pub static EVENTS: Series = Series::counter("plumbline_aggregator_events_total", "Events decoded from valid batches");
pub static EVENTS_UNSUPPORTED: Series = Series::counter(
    "plumbline_aggregator_events_unsupported_total",
    "Events of kinds this version does not store (skipped)",
);
pub static ROWS_WRITTEN: Series =
    Series::counter("plumbline_aggregator_rows_written_total", "Rows the store acknowledged");
pub static STORE_WRITE_DURATION: Series = Series::histogram(
    "plumbline_aggregator_store_write_duration_seconds",
    "How long a store write took until the store acknowledged it (each attempt that succeeded)",
    WRITE_BUCKETS,
);
pub static DEAD_LETTERS: Series =
    Series::counter("plumbline_aggregator_dead_letters_total", "Payloads set aside in dead_letters");
pub static STORE_RETRIES: Series =
    Series::counter("plumbline_aggregator_store_retries_total", "Store writes retried after a transient error");
pub static COMMIT_FAILURES: Series = Series::counter(
    "plumbline_aggregator_commit_failures_total",
    "Offset commits that failed (the batches will be re-delivered)",
);
pub static REBALANCES: Series = Series::counter(
    "plumbline_aggregator_rebalances_total",
    "Kafka partition assignments the consumer group made, the first join included (stays 0 on the in-process channel of plumbline run)",
);
pub static CONSUMER_LAG: Series = Series::gauge(
    "plumbline_aggregator_consumer_lag_messages",
    "Messages in each assigned Kafka partition not yet handed to the pipeline (high watermark minus position), from librdkafka's statistics every 5 s (absent on the in-process channel of plumbline run)",
)
.labels(&["topic", "partition"]);
pub static COLLECTIVE_VERDICTS: Series =
    Series::counter("plumbline_aggregator_collective_verdicts_total", "NCCL collectives judged across their ranks");
pub static FINDINGS: Series = Series::counter("plumbline_aggregator_findings_total", "Findings about agent sessions");
pub static SESSIONS_OPEN: Series = Series::gauge(
    "plumbline_aggregator_sessions_open",
    "Agent sessions the session graph holds (until their process has exited and they have been quiet past their last turn)",
);
pub static SESSION_ROWS_LATE: Series = Series::counter(
    "plumbline_aggregator_session_rows_late_total",
    "Rows that reached the session graph after their host's watermark had passed them (taken late, not dropped)",
);
pub static SESSION_LATENESS_MAX: Series = Series::gauge(
    "plumbline_aggregator_session_lateness_max_seconds",
    "The most a row was behind the newest row of its host when it arrived",
);
pub static COLLECTIVES_OPEN: Series = Series::gauge(
    "plumbline_aggregator_collectives_open",
    "NCCL collective instances waiting for ranks (not judged hung)",
);
pub static CALLS_HELD_FOR_SPLITS: Series = Series::gauge(
    "plumbline_aggregator_calls_held_for_splits",
    "NCCL calls on split communicators held until every rank of the parent reported its split",
);
pub static CLOCK_OFFSET: Series = Series::gauge(
    "plumbline_aggregator_clock_offset_seconds",
    "Each host's clock offset from its collectives' median arrivals, as the collective join estimates and removes it (positive: ahead)",
)
.labels(&["host"]);

/// Everything the aggregator reports, in the order `/metrics` shows it.
pub static SERIES: &[&Series] = &[
    &DELIVERIES,
    &EVENTS,
    &EVENTS_UNSUPPORTED,
    &ROWS_WRITTEN,
    &STORE_WRITE_DURATION,
    &DEAD_LETTERS,
    &STORE_RETRIES,
    &COMMIT_FAILURES,
    &REBALANCES,
    &CONSUMER_LAG,
    &COLLECTIVE_VERDICTS,
    &FINDINGS,
    &SESSIONS_OPEN,
    &SESSION_ROWS_LATE,
    &SESSION_LATENESS_MAX,
    &COLLECTIVES_OPEN,
    &CALLS_HELD_FOR_SPLITS,
    &CLOCK_OFFSET,
];

/// Deliveries taken from the source, and the events decoded from them.
pub struct Received {
    pub deliveries: usize,
    pub events: u64,
    pub unsupported: u64,
}

impl InternalEvent<AggregatorStats> for Received {
    fn emit(self, stats: &AggregatorStats) {
        tracing::trace!(deliveries = self.deliveries, events = self.events, "received");
        if self.unsupported > 0 {
            tracing::debug!(events = self.unsupported, "skipped events of kinds this version does not store");
        }
        stats.deliveries.inc_by(self.deliveries as u64);
        stats.events.inc_by(self.events);
        stats.events_unsupported.inc_by(self.unsupported);
    }
}

/// A payload set aside in `dead_letters`.
pub struct DeadLettered<'a> {
    pub origin: &'a str,
    pub error: &'a str,
}

impl InternalEvent<AggregatorStats> for DeadLettered<'_> {
    fn emit(self, stats: &AggregatorStats) {
        tracing::warn!(origin = %self.origin, error = %self.error, "set a payload aside as a dead letter");
        stats.dead_letters.inc();
    }
}

/// Rows the store acknowledged, and how long it took.
pub struct StoreWritten {
    pub rows: usize,
    pub took: Duration,
}

impl InternalEvent<AggregatorStats> for StoreWritten {
    fn emit(self, stats: &AggregatorStats) {
        tracing::debug!(rows = self.rows, took = ?self.took, "the store acknowledged a write");
        stats.rows_written.inc_by(self.rows as u64);
        stats.store_write_duration.observe(self.took.as_secs_f64());
    }
}

/// A store write that failed in passing, to be retried.
pub struct StoreRetried<'a> {
    pub error: &'a StoreError,
    pub retry_in: Duration,
}

impl InternalEvent<AggregatorStats> for StoreRetried<'_> {
    fn emit(self, stats: &AggregatorStats) {
        tracing::warn!(err = %self.error, retry_in = ?self.retry_in, "store unavailable; holding the rows and retrying");
        stats.store_retries.inc();
    }
}

/// An offset commit that failed: harmless, but these batches will be
/// delivered again.
pub struct CommitFailed<'a> {
    pub error: &'a SourceError,
}

impl InternalEvent<AggregatorStats> for CommitFailed<'_> {
    fn emit(self, stats: &AggregatorStats) {
        tracing::warn!(err = %self.error, "committing offsets failed");
        stats.commit_failures.inc();
    }
}

/// What the stages judged: collective verdicts and session findings.
pub struct Judged {
    pub collective_verdicts: usize,
    pub findings: usize,
}

impl InternalEvent<AggregatorStats> for Judged {
    fn emit(self, stats: &AggregatorStats) {
        if self.collective_verdicts + self.findings > 0 {
            tracing::debug!(collective_verdicts = self.collective_verdicts, findings = self.findings, "judged");
        }
        stats.collective_verdicts.inc_by(self.collective_verdicts as u64);
        stats.findings.inc_by(self.findings as u64);
    }
}

/// The source's rebalances and lag, sampled on the aggregator's timer (the
/// Kafka source logs each assignment as it happens).
pub struct SourceReported(pub SourceStatus);

impl InternalEvent<AggregatorStats> for SourceReported {
    fn emit(self, stats: &AggregatorStats) {
        stats.rebalances.catch_up(self.0.rebalances);
        stats.metrics.clear(&CONSUMER_LAG);
        for lag in &self.0.lag {
            let partition = lag.partition.to_string();
            stats.metrics.gauge(&CONSUMER_LAG, &[&lag.topic, &partition]).set(lag.messages as f64);
        }
    }
}

/// The text exposition, as of now: the values kept elsewhere (the session
/// stage's lateness mark, the collective join's clock offsets) are sampled
/// into their series first.
pub fn render(stats: &AggregatorStats) -> String {
    let lateness_ns = stats.session_lateness_max_ns.load(std::sync::atomic::Ordering::Relaxed);
    stats.metrics.gauge(&SESSION_LATENESS_MAX, &[]).set(lateness_ns as f64 / 1e9);
    let offsets = stats.clock_offsets_ns.lock().unwrap_or_else(|e| e.into_inner());
    stats.metrics.clear(&CLOCK_OFFSET);
    for (host, ns) in offsets.iter() {
        stats.metrics.gauge(&CLOCK_OFFSET, &[host]).set(*ns as f64 / 1e9);
    }
    drop(offsets);
    stats.metrics.render()
}

#[cfg(test)]
mod tests {
    use plumbline_transport::PartitionLag;

    use super::*;

    #[test]
    fn the_declarations_follow_the_naming_rules() {
        plumbline_metrics::check("plumbline_aggregator_", SERIES).unwrap();
    }

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
