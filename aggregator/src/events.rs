//! What the aggregator reports as it happens: each occurrence logs it at its
//! level and counts it into [`AggregatorStats`], in one place.

use std::time::Duration;

use plumbline_metrics::InternalEvent;
use plumbline_store::StoreError;
use plumbline_transport::{SourceError, SourceStatus};

use crate::metrics::*;
use crate::stats::AggregatorStats;

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
