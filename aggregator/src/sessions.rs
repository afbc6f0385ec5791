//! The pipeline's session stage: rows about to be stored feed the causal
//! graph of agent sessions, and the nodes, edges and findings it makes are
//! written with them. Turns are also judged on a timer, since an agent that
//! stopped sends nothing that would wake the pipeline.

use std::time::Instant;

use plumbline_store::RowSet;

use crate::config::SessionsConfig;
use crate::session_graph::SessionGraph;

pub struct SessionStage {
    graph: SessionGraph,
    /// The graph's processing clock: ns since the stage started.
    started: Instant,
}

impl SessionStage {
    pub fn new(config: &SessionsConfig) -> Self {
        Self { graph: SessionGraph::new(config.settings()), started: Instant::now() }
    }

    /// The graph rows and findings that `rows` make.
    pub fn observe(&mut self, rows: &RowSet) -> RowSet {
        let now = self.clock_ns();
        self.graph.observe(rows, now)
    }

    /// Findings of turns whose time is up.
    pub fn tick(&mut self) -> RowSet {
        let now = self.clock_ns();
        self.graph.tick(now)
    }

    fn clock_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}
