//! The aggregator's own counters.

use std::collections::BTreeMap;
use std::sync::{
    atomic::{AtomicU64, Ordering::Relaxed},
    Mutex,
};

#[derive(Debug, Default)]
pub struct AggregatorStats {
    /// Payloads received from the source.
    pub deliveries: AtomicU64,
    /// Events decoded from valid batches.
    pub events: AtomicU64,
    /// Events of kinds this version does not store yet (counted, skipped).
    pub events_unsupported: AtomicU64,
    pub rows_written: AtomicU64,
    /// Payloads set aside in `dead_letters`.
    pub dead_letters: AtomicU64,
    /// Store writes retried after a transient error.
    pub store_retries: AtomicU64,
    /// Offset commits that failed (the batches will be re-delivered).
    pub commit_failures: AtomicU64,
    /// NCCL collectives judged across their ranks (any verdict).
    pub collective_verdicts: AtomicU64,
    /// Findings about agent sessions (any kind).
    pub findings: AtomicU64,
    /// Rows that reached the session graph after their host's watermark had
    /// passed them (taken late, not dropped): `reorder_ms` is too short.
    pub session_rows_late: AtomicU64,
    /// The most a row was behind the newest row of its host when it arrived.
    pub session_lateness_max_ns: AtomicU64,
    /// Collective instances waiting for ranks (not yet judged hung).
    pub collectives_open: AtomicU64,
    /// Calls on split communicators held until their splits are complete.
    pub calls_held_for_splits: AtomicU64,
    /// Each host's clock offset as the collective join estimates it, ns
    /// (positive: ahead of the fleet).
    pub clock_offsets_ns: Mutex<BTreeMap<String, i64>>,
}

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
    pub collectives_open: u64,
    pub calls_held_for_splits: u64,
}

impl AggregatorStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Relaxed);
    }

    /// Raises a high-water mark.
    pub fn raise(mark: &AtomicU64, n: u64) {
        mark.fetch_max(n, Relaxed);
    }

    pub fn snapshot(&self) -> AggregatorSnapshot {
        AggregatorSnapshot {
            deliveries: self.deliveries.load(Relaxed),
            events: self.events.load(Relaxed),
            events_unsupported: self.events_unsupported.load(Relaxed),
            rows_written: self.rows_written.load(Relaxed),
            dead_letters: self.dead_letters.load(Relaxed),
            store_retries: self.store_retries.load(Relaxed),
            commit_failures: self.commit_failures.load(Relaxed),
            collective_verdicts: self.collective_verdicts.load(Relaxed),
            findings: self.findings.load(Relaxed),
            session_rows_late: self.session_rows_late.load(Relaxed),
            session_lateness_max_ns: self.session_lateness_max_ns.load(Relaxed),
            collectives_open: self.collectives_open.load(Relaxed),
            calls_held_for_splits: self.calls_held_for_splits.load(Relaxed),
        }
    }
}
