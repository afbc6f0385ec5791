//! What the aggregator reports on `GET /metrics`, declared once: what it
//! received, decoded, wrote and set aside, how long the store took, what
//! it judged, how late rows reached the session graph, and how far behind
//! its Kafka consumer is. The values are `stats.rs`'s; the occurrences that
//! change them are `events.rs`'s.

use plumbline_metrics::Series;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declarations_follow_the_naming_rules() {
        plumbline_metrics::check("plumbline_aggregator_", SERIES).unwrap();
    }
}
