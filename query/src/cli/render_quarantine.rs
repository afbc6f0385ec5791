//! `plumb quarantine`: each session a finding quarantined, and when each
//! node applied it (or why it did not).

use plumbline_proto::v1::QuarantineView;

use super::render::{table, time};

/// One line per node's answer; a quarantine no node has answered yet has a
/// line of its own.
pub fn quarantines(quarantines: &[QuarantineView]) -> String {
    if quarantines.is_empty() {
        return "no session has been quarantined (a finding [[pipeline.quarantine]] names quarantines its session)\n"
            .into();
    }
    let mut lines = Vec::new();
    for q in quarantines {
        if q.acks.is_empty() {
            lines.push((q, None));
        }
        lines.extend(q.acks.iter().map(|ack| (q, Some(ack))));
    }
    let header = ["ISSUED", "SESSION", "AGENT", "FINDING", "SESSION HOST", "NODE", "APPLIED", "AFTER", "RESULT"];
    table(&header, &lines, |(q, ack)| {
        let finding = format!("{} ({})", q.finding_kind, q.severity);
        let common = vec![time(q.issued_wall_ns), q.session.clone(), q.agent.clone(), finding, q.host.clone()];
        let rest = match ack {
            None => vec!["-".into(), "-".into(), "-".into(), "no acknowledgement yet".into()],
            Some(ack) => {
                let after = ack.applied_wall_ns.saturating_sub(q.found_wall_ns.min(q.issued_wall_ns));
                let result = if ack.applied {
                    let pids: Vec<String> = ack.pids.iter().map(u32::to_string).collect();
                    format!("applied: role {}, pids {}", ack.role, pids.join(","))
                } else {
                    format!("not applied: {}", ack.reason)
                };
                let applied = if ack.applied { time(ack.applied_wall_ns) } else { "-".into() };
                vec![ack.host.clone(), applied, format!("{:.1} ms", after as f64 / 1e6), result]
            }
        };
        common.into_iter().chain(rest).collect()
    })
}

#[cfg(test)]
mod tests {
    use plumbline_proto::v1::QuarantineAckView;

    use super::*;

    #[test]
    fn each_node_s_answer_is_a_line_and_an_unanswered_quarantine_says_so() {
        let q = |id: &str, acks| QuarantineView {
            id: id.into(),
            session: format!("s-{id}"),
            agent: "scripted".into(),
            host: "vm".into(),
            finding_kind: "out_of_scope_effect".into(),
            severity: "high".into(),
            found_wall_ns: 1_000_000_000,
            issued_wall_ns: 1_001_000_000,
            acks,
            ..Default::default()
        };
        let applied = QuarantineAckView {
            host: "vm".into(),
            applied: true,
            pids: vec![41, 42],
            role: "quarantine".into(),
            applied_wall_ns: 1_012_500_000,
            ..Default::default()
        };
        let refused = QuarantineAckView {
            host: "vm2".into(),
            reason: "no enforcement on this node".into(),
            ..Default::default()
        };
        let text = quarantines(&[q("a", vec![applied, refused]), q("b", vec![])]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[1].contains("s-a")
                && lines[1].contains("12.5 ms")
                && lines[1].ends_with("applied: role quarantine, pids 41,42"),
            "{text}"
        );
        assert!(lines[2].contains(" vm2 ") && lines[2].ends_with("not applied: no enforcement on this node"), "{text}");
        assert!(lines[3].contains("s-b") && lines[3].ends_with("no acknowledgement yet"), "{text}");
    }
}
