//! The pipeline's collective stage: NCCL call rows about to be stored feed
//! the cross-host join, and what it judges becomes `collective_verdicts`
//! rows written with them. Hangs are judged on a timer, since a hung job
//! sends nothing that would wake the pipeline.

use std::time::Instant;

use plumbline_store::{CollectiveVerdictRow, RowSet};

use crate::collective_join::{CollectiveJoin, Judged};
use crate::config::GpuJoinConfig;
use crate::gpu_rows::{rank_call, verdict_row};

pub struct CollectiveStage {
    join: CollectiveJoin,
    /// The join's clock: ns since the stage started.
    started: Instant,
}

impl CollectiveStage {
    pub fn new(config: &GpuJoinConfig) -> Self {
        Self { join: CollectiveJoin::new(config.settings()), started: Instant::now() }
    }

    /// Joins the collectives among `rows`' NCCL calls; returns the verdicts
    /// of the collectives they completed.
    pub fn judge(&mut self, rows: &RowSet, now_wall_ns: u64) -> Vec<CollectiveVerdictRow> {
        let now = self.clock_ns();
        let judged: Vec<Judged> = rows
            .nccl_calls
            .iter()
            .filter_map(rank_call)
            .filter_map(|(communicator, call)| self.join.add(communicator, call, now))
            .collect();
        judged.iter().map(|j| verdict_row(j, now_wall_ns)).collect()
    }

    /// Collectives whose missing ranks have been missing for the hang timeout.
    pub fn hangs(&mut self, now_wall_ns: u64) -> Vec<CollectiveVerdictRow> {
        let now = self.clock_ns();
        self.join.hangs(now).iter().map(|j| verdict_row(j, now_wall_ns)).collect()
    }

    fn clock_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}
