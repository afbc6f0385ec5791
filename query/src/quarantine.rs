//! Quarantines as the query service answers them: each update a finding
//! sent, with every node's acknowledgement of it.

use std::collections::HashMap;

use plumbline_proto::v1::{QuarantineAckView, QuarantineView};
use plumbline_store::{QuarantineAckRow, QuarantineUpdateRow};

fn pids(pids: &[String]) -> Vec<u32> {
    pids.iter().filter_map(|p| p.parse().ok()).collect()
}

/// The updates, in their order, each with its acknowledgements.
pub fn views(updates: Vec<QuarantineUpdateRow>, acks: Vec<QuarantineAckRow>) -> Vec<QuarantineView> {
    let mut by_id: HashMap<String, Vec<QuarantineAckView>> = HashMap::new();
    for ack in acks {
        by_id.entry(ack.id.clone()).or_default().push(QuarantineAckView {
            host: ack.host,
            applied: ack.applied != 0,
            reason: ack.reason,
            pids: pids(&ack.pids),
            role: ack.role,
            received_wall_ns: ack.received_wall_ns,
            applied_wall_ns: ack.wall_ns,
        });
    }
    updates
        .into_iter()
        .map(|u| QuarantineView {
            acks: by_id.remove(&u.id).unwrap_or_default(),
            pids: pids(&u.pids),
            id: u.id,
            session: u.session,
            agent: u.agent,
            host: u.host,
            finding_kind: u.finding_kind,
            severity: u.severity,
            finding_summary: u.finding_summary,
            found_wall_ns: u.found_wall_ns,
            issued_wall_ns: u.wall_ns,
        })
        .collect()
}
