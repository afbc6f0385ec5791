//! The pipeline's collective stage: NCCL call rows about to be stored feed
//! the cross-host join in event-time order, each batch's clock tells the
//! join how far its host has reported for the jobs it carries (a heartbeat
//! carries its job in its key), and what the join judges becomes
//! `collective_verdicts` rows written with them.

use plumbline_store::{CollectiveVerdictRow, RowSet};

use crate::batch_rows::Sender;
use crate::collective_join::{CollectiveJoin, Judged};
use crate::config::GpuJoinConfig;
use crate::gpu_rows::{join_input, verdict_row, JoinInput};
use crate::stats::AggregatorStats;

pub struct CollectiveStage {
    join: CollectiveJoin,
}

impl CollectiveStage {
    pub fn new(config: &GpuJoinConfig) -> Self {
        Self { join: CollectiveJoin::new(config.settings()) }
    }

    /// Joins the collectives among `rows`' NCCL calls, then takes what the
    /// `senders`' batches say of their hosts' progress; returns the verdicts
    /// of the collectives completed, and of those now known to be stuck.
    pub fn judge(&mut self, rows: &RowSet, senders: &[Sender], now_wall_ns: u64) -> Vec<CollectiveVerdictRow> {
        let mut order: Vec<usize> = (0..rows.nccl_calls.len()).collect();
        order.sort_by_key(|&i| rows.nccl_calls[i].wall_ns);
        let mut judged: Vec<Judged> = Vec::new();
        for input in order.into_iter().filter_map(|i| join_input(&rows.nccl_calls[i])) {
            match input {
                JoinInput::Call(communicator, call) => judged.extend(self.join.add(communicator, call)),
                JoinInput::OnSplit(communicator, call) => judged.extend(self.join.add_on_split(communicator, call)),
                JoinInput::Split(job, part) => judged.extend(self.join.split(&job, part)),
            }
        }
        for sender in senders {
            for job in &sender.jobs {
                self.join.heard(job, &sender.host, sender.clock_wall_ns, sender.oldest_event_wall_ns);
            }
        }
        judged.extend(self.join.stuck());
        judged.iter().map(|j| verdict_row(j, now_wall_ns)).collect()
    }

    /// What the join holds, on the aggregator's metrics: open collectives,
    /// calls held for splits, each host's clock offset.
    pub fn report(&self, stats: &AggregatorStats) {
        AggregatorStats::set(&stats.collectives_open, self.join.open_instances() as u64);
        AggregatorStats::set(&stats.calls_held_for_splits, self.join.held_for_splits() as u64);
        let mut offsets = stats.clock_offsets_ns.lock().unwrap_or_else(|e| e.into_inner());
        offsets.extend(self.join.host_offsets_ns().map(|(host, ns)| (host.to_string(), ns)));
    }

    /// Collectives now known to be stuck (nothing changes between batches;
    /// checked on the pipeline's timer all the same).
    pub fn stuck(&mut self, now_wall_ns: u64) -> Vec<CollectiveVerdictRow> {
        self.join.stuck().iter().map(|j| verdict_row(j, now_wall_ns)).collect()
    }
}
