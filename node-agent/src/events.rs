//! What the agent reports as it happens. Each occurrence is one type whose
//! `emit` logs it at its level and counts it into [`AgentStats`], in one
//! place; `/metrics` shows the counts (see `metrics.rs`).

use std::time::Duration;

use plumbline_ebpf::record::RecordError;
use plumbline_metrics::InternalEvent;
use plumbline_transport::{OutgoingBatch, SinkError};

use crate::kernel_counters::KernelLoss;
use crate::stats::AgentStats;

/// A record read from a ring buffer; `late` when records stamped after it
/// had already been turned into events.
pub struct RecordRead {
    pub late: bool,
}

impl InternalEvent<AgentStats> for RecordRead {
    fn emit(self, stats: &AgentStats) {
        AgentStats::add(&stats.records, 1);
        if self.late {
            AgentStats::add(&stats.records_late, 1);
        }
    }
}

/// A record that did not parse (a bug or a mismatched object): dropped.
/// Logged at the first and then at every power of two, so that a stream of
/// them cannot flood the log from the hot path.
pub struct RecordMalformed<'a> {
    pub error: &'a RecordError,
}

impl InternalEvent<AgentStats> for RecordMalformed<'_> {
    fn emit(self, stats: &AgentStats) {
        let so_far = stats.records_malformed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if so_far.is_power_of_two() {
            tracing::warn!(err = %self.error, so_far, "dropped a malformed ring-buffer record");
        }
    }
}

/// A record of a kind this agent does not know: skipped.
pub struct RecordOfUnknownKind {
    pub kind: u16,
}

impl InternalEvent<AgentStats> for RecordOfUnknownKind {
    fn emit(self, stats: &AgentStats) {
        tracing::debug!(kind = self.kind, "skipped a record of an unknown kind");
        AgentStats::add(&stats.records_unknown_kind, 1);
    }
}

/// Events the kernel could not write (its ring was full), from its counters;
/// they also travel as a loss marker.
pub struct KernelDropped<'a> {
    pub loss: &'a KernelLoss,
}

impl InternalEvent<AgentStats> for KernelDropped<'_> {
    fn emit(self, stats: &AgentStats) {
        let KernelLoss { kind, cpu, count, .. } = *self.loss;
        tracing::warn!(kind, cpu, count, "kernel dropped events: ring buffer full");
        AgentStats::add(&stats.kernel_lost, count);
    }
}

/// A sweep found the IO accounting table full: the kernel may have pushed
/// out totals not yet reported.
pub struct IoTableFull;

impl InternalEvent<AgentStats> for IoTableFull {
    fn emit(self, stats: &AgentStats) {
        tracing::warn!("the IO accounting table is full: totals written since the last sweep may be lost");
        AgentStats::add(&stats.io_table_full, 1);
    }
}

/// A batch the sink acknowledged.
pub struct BatchSent<'a> {
    pub batch: &'a OutgoingBatch,
}

impl InternalEvent<AgentStats> for BatchSent<'_> {
    fn emit(self, stats: &AgentStats) {
        tracing::trace!(events = self.batch.events, bytes = self.batch.payload.len(), "batch sent");
        AgentStats::add(&stats.batches_sent, 1);
        AgentStats::add(&stats.events_sent, self.batch.events as u64);
        AgentStats::add(&stats.bytes_sent, self.batch.payload.len() as u64);
    }
}

/// A batch the sink could not take yet, to be sent again.
pub struct SendRetried<'a> {
    pub error: &'a SinkError,
    pub retry_in: Duration,
}

impl InternalEvent<AgentStats> for SendRetried<'_> {
    fn emit(self, stats: &AgentStats) {
        tracing::warn!(err = %self.error, retry_in = ?self.retry_in, "batch not delivered yet");
        AgentStats::add(&stats.send_retries, 1);
    }
}

/// Why a batch was given up on.
pub enum Undelivered<'a> {
    /// The sink refused it for good.
    Refused(&'a SinkError),
    /// The agent is stopping and the sink still cannot take it.
    ShuttingDown { sink: &'static str },
}

/// A batch given up on: counted as lost, with its events.
pub struct BatchLost<'a> {
    pub batch: &'a OutgoingBatch,
    pub why: Undelivered<'a>,
}

impl InternalEvent<AgentStats> for BatchLost<'_> {
    fn emit(self, stats: &AgentStats) {
        let events = self.batch.events;
        match self.why {
            Undelivered::Refused(err) => tracing::error!(%err, events, "batch refused for good; counted as lost"),
            Undelivered::ShuttingDown { sink } => {
                tracing::error!(sink, events, "shutting down with an undelivered batch; counted as lost")
            }
        }
        AgentStats::add(&stats.batches_lost, 1);
        AgentStats::add(&stats.events_lost, events as u64);
    }
}
