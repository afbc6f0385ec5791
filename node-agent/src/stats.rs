//! The agent's own counters: what it read, sent, retried and lost.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct AgentStats {
    /// Records read from ring buffers.
    pub records: AtomicU64,
    /// Records that did not parse (a bug or a mismatched object): dropped.
    pub records_malformed: AtomicU64,
    /// Records of kinds this agent does not know: skipped.
    pub records_unknown_kind: AtomicU64,
    /// Records read after later ones had been turned into events (their
    /// program took longer than the ordering slack to commit them).
    pub records_late: AtomicU64,
    /// Sweeps that found the IO accounting table full (the kernel may have
    /// pushed out totals not yet reported).
    pub io_table_full: AtomicU64,
    /// Events the kernel could not write (ring full), from its counters.
    pub kernel_lost: AtomicU64,
    pub batches_sent: AtomicU64,
    pub events_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Sends that failed and were retried.
    pub send_retries: AtomicU64,
    /// Batches given up on (refused by the sink, or unsent at shutdown).
    pub batches_lost: AtomicU64,
    pub events_lost: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub records: u64,
    pub records_malformed: u64,
    pub records_unknown_kind: u64,
    pub records_late: u64,
    pub io_table_full: u64,
    pub kernel_lost: u64,
    pub batches_sent: u64,
    pub events_sent: u64,
    pub bytes_sent: u64,
    pub send_retries: u64,
    pub batches_lost: u64,
    pub events_lost: u64,
}

impl AgentStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            records: self.records.load(Relaxed),
            records_malformed: self.records_malformed.load(Relaxed),
            records_unknown_kind: self.records_unknown_kind.load(Relaxed),
            records_late: self.records_late.load(Relaxed),
            io_table_full: self.io_table_full.load(Relaxed),
            kernel_lost: self.kernel_lost.load(Relaxed),
            batches_sent: self.batches_sent.load(Relaxed),
            events_sent: self.events_sent.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            send_retries: self.send_retries.load(Relaxed),
            batches_lost: self.batches_lost.load(Relaxed),
            events_lost: self.events_lost.load(Relaxed),
        }
    }
}
