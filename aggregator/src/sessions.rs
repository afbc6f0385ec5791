//! The pipeline's session stage: rows about to be stored feed the causal
//! graph of agent sessions, and the nodes, edges and findings it makes are
//! written with them. Turns are also judged on a timer, since an agent that
//! stopped sends nothing that would wake the pipeline.
//!
//! The graph takes rows in event time. Rows of one host come nearly in
//! order: its agent releases ring records oldest first, but reports file
//! activity at sweeps (stamped with the first write) and an LLM call once
//! its response is read. So the stage holds each host's rows back until the
//! newest row of that host is `reorder_ms` past them (the watermark), and
//! gives the graph what the watermark passed, sorted. The newest row, not
//! the batch's clock: an agent that fell behind on a busy host sends rows
//! seconds older than the moment it built the batch, in order. A row that
//! comes behind its host's watermark is late: it still goes to the graph,
//! and is counted. A host that sends nothing for `reorder_ms` has nothing
//! more in flight: what it has held is released.

use std::collections::HashMap;
use std::time::Instant;

use plumbline_store::RowSet;

use crate::batch_rows::Sender;
use crate::config::SessionsConfig;
use crate::session_graph::{event_ts, SessionGraph};
use crate::stats::AggregatorStats;

pub struct SessionStage {
    graph: SessionGraph,
    /// The graph's processing clock: ns since the stage started.
    started: Instant,
    reorder_ns: u64,
    held: HashMap<(String, String), Held>,
}

/// One host's rows not yet given to the graph.
#[derive(Default)]
struct Held {
    rows: RowSet,
    /// The newest row's time on the host's boot clock.
    newest_ns: u64,
    /// Every row up to this host time has gone to the graph.
    released_to_ns: u64,
    /// Processing-clock time of its latest batch.
    heard_ns: u64,
}

impl SessionStage {
    pub fn new(config: &SessionsConfig) -> Self {
        Self {
            graph: SessionGraph::new(config.settings()),
            started: Instant::now(),
            reorder_ns: config.reorder_ms * 1_000_000,
            held: HashMap::new(),
        }
    }

    /// The graph rows and findings of what `rows` and earlier rows held back
    /// let through; `senders` are the hosts that sent the batches `rows`
    /// came in (heard from, even when nothing in them is a session's).
    pub fn observe(&mut self, rows: &RowSet, senders: &[Sender], stats: &AggregatorStats) -> RowSet {
        let now = self.clock_ns();
        for sender in senders {
            let held = self.held.entry((sender.host.clone(), sender.boot_id.clone())).or_default();
            held.heard_ns = now;
        }
        self.hold(rows, stats);
        let released = self.release(now);
        self.graph.observe(&released, now)
    }

    /// Findings of turns whose time is up, and of hosts gone quiet.
    pub fn tick(&mut self) -> RowSet {
        let now = self.clock_ns();
        let released = self.release(now);
        self.graph.observe(&released, now)
    }

    /// The processes of a session the graph knows alive.
    pub fn session_pids(&self, host: &str, boot_id: &str, session: &str) -> Vec<u32> {
        self.graph.session_pids(host, boot_id, session)
    }

    /// Sessions the graph holds, for the aggregator's metrics.
    pub fn open_sessions(&self) -> usize {
        self.graph.open_sessions()
    }

    fn hold(&mut self, rows: &RowSet, stats: &AggregatorStats) {
        macro_rules! hold {
            ($table:ident, $ts:expr) => {
                for row in &rows.$table {
                    let held = self.held.entry((row.host.clone(), row.boot_id.clone())).or_default();
                    let ts: u64 = $ts(row);
                    if ts < held.released_to_ns {
                        AggregatorStats::add(&stats.session_rows_late, 1);
                    }
                    AggregatorStats::raise(&stats.session_lateness_max_ns, held.newest_ns.saturating_sub(ts));
                    held.newest_ns = held.newest_ns.max(ts);
                    held.rows.$table.push(row.clone());
                }
            };
        }
        hold!(process_events, |r: &plumbline_store::ProcessEventRow| r.ts_ns);
        hold!(llm_calls, event_ts);
        hold!(file_events, |r: &plumbline_store::FileEventRow| r.ts_ns);
        hold!(dns_queries, |r: &plumbline_store::DnsQueryRow| r.ts_ns);
        hold!(net_connections, |r: &plumbline_store::NetConnectionRow| r.ts_ns);
        hold!(ipc_events, |r: &plumbline_store::IpcEventRow| r.ts_ns);
        hold!(enforcement_decisions, |r: &plumbline_store::EnforcementDecisionRow| r.ts_ns);
        hold!(loss_markers, |r: &plumbline_store::LossMarkerRow| r.from_ns);
    }

    /// Each host's rows up to its watermark.
    fn release(&mut self, now: u64) -> RowSet {
        let mut out = RowSet::default();
        for held in self.held.values_mut() {
            let quiet = now.saturating_sub(held.heard_ns) > self.reorder_ns;
            let watermark = if quiet { u64::MAX } else { held.newest_ns.saturating_sub(self.reorder_ns) };
            let watermark = watermark.max(held.released_to_ns);
            let mut newest = held.released_to_ns;
            macro_rules! release {
                ($table:ident, $ts:expr) => {
                    let (due, kept) =
                        std::mem::take(&mut held.rows.$table).into_iter().partition(|r| $ts(r) <= watermark);
                    held.rows.$table = kept;
                    let due: Vec<_> = due;
                    newest = due.iter().map($ts).fold(newest, u64::max);
                    out.$table.extend(due);
                };
            }
            release!(process_events, |r: &plumbline_store::ProcessEventRow| r.ts_ns);
            release!(llm_calls, |r: &plumbline_store::LlmCallRow| event_ts(r));
            release!(file_events, |r: &plumbline_store::FileEventRow| r.ts_ns);
            release!(dns_queries, |r: &plumbline_store::DnsQueryRow| r.ts_ns);
            release!(net_connections, |r: &plumbline_store::NetConnectionRow| r.ts_ns);
            release!(ipc_events, |r: &plumbline_store::IpcEventRow| r.ts_ns);
            release!(enforcement_decisions, |r: &plumbline_store::EnforcementDecisionRow| r.ts_ns);
            release!(loss_markers, |r: &plumbline_store::LossMarkerRow| r.from_ns);
            held.released_to_ns = if quiet { newest } else { watermark };
        }
        out
    }

    fn clock_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use plumbline_store::ProcessEventRow;

    use super::*;

    const S: u64 = 1_000_000_000;

    fn rows(seconds: &[u64]) -> RowSet {
        let row = |ts_ns| ProcessEventRow { host: "h".into(), boot_id: "b".into(), ts_ns, ..Default::default() };
        RowSet { process_events: seconds.iter().map(|s| row(s * S)).collect(), ..Default::default() }
    }

    fn released(stage: &mut SessionStage, seconds: &[u64], stats: &AggregatorStats) -> Vec<u64> {
        stage.hold(&rows(seconds), stats);
        let now = stage.clock_ns();
        stage.release(now).process_events.iter().map(|r| r.ts_ns / S).collect()
    }

    #[test]
    fn rows_wait_until_their_host_has_sent_rows_reorder_ms_newer_and_only_older_ones_are_late() {
        let mut stage = SessionStage::new(&SessionsConfig { reorder_ms: 2500, ..Default::default() });
        let stats = AggregatorStats::default();
        // Sent in order but long after they happened (a busy agent): nothing
        // is late, whatever the batch's clock said.
        assert_eq!(released(&mut stage, &[1, 2, 3, 10], &stats), [1, 2, 3]);
        assert_eq!(released(&mut stage, &[8, 9, 11], &stats), [8]);
        assert_eq!(stats.snapshot().session_rows_late, 0);
        // A sweep's row stamped before the watermark: taken, and counted.
        assert_eq!(released(&mut stage, &[5], &stats), [5]);
        assert_eq!(stats.snapshot().session_rows_late, 1);
        assert_eq!(stats.snapshot().session_lateness_max_ns, 6 * S);
    }
}
