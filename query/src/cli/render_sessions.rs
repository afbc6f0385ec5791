//! Tables of the session views: sessions, a session's timeline with its
//! edges, findings, and the causes behind an effect.

use std::collections::HashMap;

use plumbline_proto::v1::{FindingView, SessionTimelineResponse, SessionView, WhyChain};

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

/// Intent and effect interleaved, each node with the edges that reach it.
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
    let header = ["#", "TIME", "PID", "KIND", "WHAT", "BECAUSE"];
    out.push_str(&table(&header, &timeline.nodes, |n| {
        vec![
            n.node.to_string(),
            time(n.wall_ns),
            n.pid.to_string(),
            n.kind.clone(),
            n.label.clone(),
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
