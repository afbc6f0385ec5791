//! Tables of the session views: sessions, a session's timeline with its
//! edges, findings, and the causes behind an effect.

use std::collections::HashMap;

use plumbline_proto::v1::{FindingView, SessionNodeView, SessionTimelineResponse, SessionView, WhyChain};
use plumbline_store::node_kind;

use super::render::{or_dash, table, time};

pub fn sessions(sessions: &[SessionView]) -> String {
    if sessions.is_empty() {
        return "no agent session: no process made an LLM call in the range\n".into();
    }
    let header =
        ["SESSION", "AGENT", "HOST", "PID", "COMM", "FIRST", "LAST", "CALLS", "TOOLS", "EFFECTS", "TOKENS", "FINDINGS"];
    table(&header, sessions, |s| {
        vec![
            s.session.clone(),
            or_dash(&s.agent),
            s.host.clone(),
            s.pid.to_string(),
            s.comm.clone(),
            time(s.first_wall_ns),
            time(s.last_wall_ns),
            s.llm_calls.to_string(),
            s.tool_calls.to_string(),
            s.effects.to_string(),
            s.tokens.to_string(),
            s.findings.to_string(),
        ]
    })
}

/// Intent and effect interleaved, each node with the edges that reach it;
/// a tool call's line also says what a workload policy decided about it
/// ("read_file … → open /root/.ssh/id_rsa DENIED by role agent (file,
/// enforce)").
pub fn timeline(timeline: &SessionTimelineResponse) -> String {
    let mut out = String::new();
    if let Some(s) = &timeline.session {
        out.push_str(&format!(
            "session {} agent {} on {} pid {} ({}): {} LLM calls, {} tool calls, {} effects, {} tokens, {} findings\n",
            s.session,
            or_dash(&s.agent),
            s.host,
            s.pid,
            s.comm,
            s.llm_calls,
            s.tool_calls,
            s.effects,
            s.tokens,
            s.findings
        ));
    }
    let mut incoming: HashMap<u64, Vec<String>> = HashMap::new();
    for e in &timeline.edges {
        incoming.entry(e.to_node).or_default().push(format!("{} by #{} ({})", e.relation, e.from_node, e.reason));
    }
    let nodes: HashMap<u64, &SessionNodeView> = timeline.nodes.iter().map(|n| (n.node, n)).collect();
    let mut decided: HashMap<u64, Vec<&str>> = HashMap::new();
    for e in &timeline.edges {
        let (Some(from), Some(to)) = (nodes.get(&e.from_node), nodes.get(&e.to_node)) else { continue };
        let intent = from.kind == node_kind::TOOL_CALL || from.kind == node_kind::ANNOUNCEMENT;
        if intent && to.kind == node_kind::ENFORCEMENT {
            decided.entry(e.from_node).or_default().push(&to.label);
        }
    }
    let header = ["#", "TIME", "PID", "KIND", "WHAT", "BECAUSE"];
    out.push_str(&table(&header, &timeline.nodes, |n| {
        vec![
            n.node.to_string(),
            time(n.wall_ns),
            n.pid.to_string(),
            n.kind.clone(),
            match decided.get(&n.node) {
                Some(decisions) => format!("{} → {}", n.label, decisions.join("; ")),
                None => n.label.clone(),
            },
            incoming.get(&n.node).map_or_else(|| "-".into(), |e| e.join("; ")),
        ]
    }));
    out
}

pub fn findings(findings: &[FindingView]) -> String {
    if findings.is_empty() {
        return "no finding: what the agents said and what the kernel saw agree\n".into();
    }
    let mut out = String::new();
    for f in findings {
        out.push_str(&format!(
            "{} [{}] {} session {} agent {} on {} pid {}\n  {}\n  expected: {}\n  observed: {}\n",
            time(f.wall_ns),
            f.severity,
            f.kind,
            f.session,
            or_dash(&f.agent),
            f.host,
            f.pid,
            f.summary,
            or_dash(&f.expected),
            or_dash(&f.observed)
        ));
        if f.tokens > 0 {
            out.push_str(&format!("  tokens: {}\n", f.tokens));
        }
        out.push_str(&evidence_lines(&f.evidence));
    }
    out
}

/// What a person checks a verdict against: the rule it applied, the tool
/// call it judged and what the agent sent back as its result.
fn evidence_lines(evidence: &str) -> String {
    let Ok(evidence) = serde_json::from_str::<serde_json::Value>(evidence) else { return String::new() };
    let mut out = String::new();
    if let Some(rule) = evidence["rule"].as_str() {
        out.push_str(&format!("  rule: {rule}\n"));
    }
    let call = &evidence["tool_call"];
    if let Some(name) = call["name"].as_str() {
        let arguments = call["arguments"].as_str().map_or_else(|| call["arguments"].to_string(), str::to_string);
        out.push_str(&format!("  tool call: {} {} {}\n", call["id"].as_str().unwrap_or("-"), name, clip(&arguments)));
    }
    if let Some(result) = evidence["tool_result"].as_str() {
        out.push_str(&format!("  tool result: {}\n", clip(result)));
    }
    out
}

/// One line of at most 160 characters.
fn clip(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(160) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

pub fn why(chains: &[WhyChain]) -> String {
    if chains.is_empty() {
        return "no such effect in any agent session\n".into();
    }
    let mut out = String::new();
    for chain in chains {
        let Some(effect) = &chain.effect else { continue };
        out.push_str(&format!(
            "{} {} (pid {}, {}) in session {} agent {}\n",
            time(effect.wall_ns),
            effect.label,
            effect.pid,
            effect.comm,
            effect.session,
            or_dash(&chain.agent)
        ));
        if chain.causes.is_empty() {
            out.push_str("  no intent explains it: it follows no LLM call of its session\n");
        }
        for (cause, edge) in chain.causes.iter().zip(&chain.edges) {
            out.push_str(&format!("  ← {} {} [{}: {}]\n", cause.kind, cause.label, edge.relation, edge.reason));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use plumbline_proto::v1::SessionEdgeView;

    use super::*;

    #[test]
    fn a_tool_call_s_line_says_what_the_policy_decided_about_it() {
        let node = |node, kind: &str, label: &str| SessionNodeView {
            node,
            kind: kind.into(),
            label: label.into(),
            ..Default::default()
        };
        let edge = |from_node, to_node, relation: &str| SessionEdgeView {
            from_node,
            to_node,
            relation: relation.into(),
            reason: "why".into(),
            ..Default::default()
        };
        let decision = "open /root/.ssh/id_rsa DENIED by role agent (file, enforce)";
        let response = SessionTimelineResponse {
            nodes: vec![
                node(1, "llm_call", "gpt → Read"),
                node(2, "tool_call", "Read {\"file_path\": \"~/.ssh/id_rsa\"}"),
                node(3, "enforcement", decision),
            ],
            edges: vec![edge(1, 2, "requested"), edge(2, 3, "denied")],
            ..Default::default()
        };
        let text = timeline(&response);
        let line = text.lines().find(|l| l.contains("tool_call")).unwrap();
        assert!(line.contains(&format!("Read {{\"file_path\": \"~/.ssh/id_rsa\"}} → {decision}")), "{text}");
        let line = text.lines().find(|l| l.contains("enforcement")).unwrap();
        assert!(line.ends_with("denied by #2 (why)"), "{text}");
    }
}
