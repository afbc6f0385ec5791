//! The findings of a session: each with its evidence (the LLM call, the
//! effect expected or the effect no intent explains, what the kernel saw).

use std::collections::{HashMap, HashSet};

use plumbline_store::{finding_kind, FindingRow, LlmCallRow};
use serde_json::json;

use crate::pipeline::now_wall_ns;

use super::{
    excerpt, word_set, Closing, Effect, Expected, GraphRows, GuardrailJson, OutOfScope, Session, SessionSettings,
};

/// Words of a tool result that say it went well, and that it did not.
const SUCCESS_WORDS: [&str; 7] = ["passed", "success", "succeeded", "done", "completed", "ok", "wrote"];
const FAILURE_WORDS: [&str; 5] = ["failed", "error", "failure", "traceback", "exception"];

impl Session {
    /// A guardrail of intent capture matched in `call`; `None` when the
    /// session already reported that kind in that place (the conversation
    /// sends its history again with every call).
    pub(super) fn guardrail_finding(
        &mut self,
        call: &LlmCallRow,
        g: &GuardrailJson,
        node: u64,
        tokens: u64,
    ) -> Option<FindingRow> {
        let subject = format!("{} in the {}", g.kind, g.location);
        if self.reported.contains(&(finding_kind::GUARDRAIL.to_string(), subject.clone())) {
            return None;
        }
        let severity = if g.kind.contains("injection") { "high" } else { "medium" };
        let evidence = json!({
            "llm_call": call_evidence(call), "guardrail": g.kind, "location": g.location, "excerpt": g.excerpt,
        });
        let summary = format!("guardrail {} matched in the {}: {}", g.kind, g.location, excerpt(&g.excerpt, 120));
        let kind = finding_kind::GUARDRAIL;
        Some(self.finding(
            kind,
            severity,
            subject,
            call.wall_ns,
            summary,
            node,
            String::new(),
            g.excerpt.clone(),
            evidence,
            tokens,
        ))
    }

    /// A secret read or egress outside the allowlist, once per effect.
    pub(super) fn out_of_scope_finding(
        &mut self,
        effect: &Effect<'_>,
        why: OutOfScope,
        settings: &SessionSettings,
    ) -> Option<FindingRow> {
        let subject = effect.label.clone();
        if self.reported.contains(&(finding_kind::OUT_OF_SCOPE.to_string(), subject.clone())) {
            return None;
        }
        let what = if why.secret { "secret read" } else { "egress outside the allowlist" };
        let severity = if self.fetched.is_empty() { "medium" } else { "high" };
        let mut summary = format!("{what}: {} by {} ({})", effect.label, effect.who.comm, effect.who.pid);
        if let Some(fetch) = self.fetched.last() {
            summary.push_str(&format!(", after content fetched from outside ({})", excerpt(fetch, 80)));
        }
        let evidence = json!({
            "effect": effect.label, "pid": effect.who.pid, "comm": effect.who.comm,
            "caused_by_tool_call": why.caused_by, "fetched_before": self.fetched,
        });
        let expected = if why.secret {
            "no secret read".to_string()
        } else {
            format!("egress only to {}", settings.egress_allow.join(", "))
        };
        let wall = effect.who.wall_ns;
        let observed = effect.label.clone();
        let call = why.llm_call.unwrap_or(0);
        Some(self.finding(
            finding_kind::OUT_OF_SCOPE,
            severity,
            subject,
            wall,
            summary,
            call,
            expected,
            observed,
            evidence,
            0,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn finding(
        &mut self,
        kind: &str,
        severity: &str,
        subject: String,
        wall_ns: u64,
        summary: String,
        llm_call: u64,
        expected: String,
        observed: String,
        evidence: serde_json::Value,
        tokens: u64,
    ) -> FindingRow {
        self.reported.insert((kind.to_string(), subject.clone()));
        FindingRow {
            session: self.id.clone(),
            agent: self.agent.clone(),
            host: self.host.clone(),
            boot_id: self.boot_id.clone(),
            pid: self.pid,
            kind: kind.to_string(),
            severity: severity.to_string(),
            subject,
            wall_ns,
            summary,
            llm_call,
            expected,
            observed,
            evidence: evidence.to_string(),
            tokens,
            found_wall_ns: now_wall_ns(),
        }
    }

    pub(super) fn loop_finding(&mut self, call: &LlmCallRow) -> FindingRow {
        let first = &self.run[0];
        let tokens: u64 = self.run.iter().map(|c| c.tokens).sum();
        let (first_wall, first_node, n) = (first.wall_ns, first.node, self.run.len());
        let summary = format!(
            "{n} near-identical LLM calls in a row with no effect in between, {tokens} tokens spent: {}",
            excerpt(&call.prompt, 100)
        );
        let evidence = json!({
            "calls": self.run.iter().map(|c| json!({"node": c.node, "wall_ns": c.wall_ns, "tokens": c.tokens})).collect::<Vec<_>>(),
            "request": excerpt(&call.prompt, 500),
        });
        self.finding(
            finding_kind::REASONING_LOOP,
            "medium",
            format!("loop from {first_wall}"),
            first_wall,
            summary,
            first_node,
            "an effect, or a different request".into(),
            format!("{n} calls, nothing done"),
            evidence,
            tokens,
        )
    }

    /// Announced effects that did not happen in a closed turn.
    pub(super) fn judge_turn(&mut self, closing: &Closing, out: &mut GraphRows) {
        for tool in &closing.turn.tools {
            if tool.announced || tool.expected.is_empty() || !tool.matched.is_empty() {
                continue;
            }
            let result = closing.results.get(&tool.id);
            let claims_success = result.is_some_and(|r| claims_success(r));
            let expected: Vec<String> = tool.expected.iter().map(Expected::describe).collect();
            let expected = expected.join(" or ");
            let seen = &closing.turn.seen;
            let observed = if seen.is_empty() {
                "nothing in the session's process tree".to_string()
            } else {
                format!("only: {}", seen.join("; "))
            };
            let mut summary = format!("{} announced {expected}; the kernel saw no such effect", tool.name);
            if closing.next_node.is_some() {
                summary.push_str(" before the next LLM call");
            }
            if let (true, Some(r)) = (claims_success, result) {
                summary.push_str(&format!(", yet its result reported success: \"{}\"", excerpt(r, 80)));
            }
            let evidence = json!({
                "llm_call": closing.turn.node, "tool_call": {"id": tool.id, "name": tool.name, "arguments": tool.arguments},
                "expected": expected, "observed": seen, "tool_result": result, "next_llm_call": closing.next_node,
            });
            let severity = if claims_success { "high" } else { "medium" };
            let row = self.finding(
                finding_kind::UNVERIFIED_CLAIM,
                severity,
                tool.id.clone(),
                closing.turn.call_wall_ns,
                summary,
                closing.turn.node,
                expected,
                observed,
                evidence,
                0,
            );
            out.findings.push(row);
        }
    }

    /// Time blocked on IPC objects that another session also used.
    pub(super) fn judge_blocked(
        &mut self,
        settings: &SessionSettings,
        ipc_users: &HashMap<u64, HashSet<String>>,
        out: &mut GraphRows,
    ) {
        if self.reported.iter().any(|(k, _)| k == finding_kind::COORDINATION) {
            return;
        }
        let mut peers = HashSet::new();
        let mut blocked = 0;
        for (object, ns) in &self.blocked {
            let others: Vec<&String> = ipc_users.get(object).into_iter().flatten().filter(|s| **s != self.id).collect();
            if !others.is_empty() {
                blocked += ns;
                peers.extend(others.into_iter().cloned());
            }
        }
        let wall = self.last_wall_ns.saturating_sub(self.first_wall_ns).max(1);
        let share = blocked as f64 / wall as f64;
        if blocked < settings.blocked_min_ns || share < settings.blocked_share {
            return;
        }
        let mut peers: Vec<String> = peers.into_iter().collect();
        peers.sort();
        let summary = format!(
            "blocked on IPC with {} for {:.1} s of {:.1} s ({:.0} %)",
            peers.join(", "),
            blocked as f64 / 1e9,
            wall as f64 / 1e9,
            share * 100.0
        );
        let evidence = json!({"blocked_ns": blocked, "wall_ns": wall, "share": share, "peer_sessions": peers});
        let first = self.first_wall_ns;
        let row = self.finding(
            finding_kind::COORDINATION,
            "medium",
            "blocked".into(),
            first,
            summary,
            0,
            format!("under {:.0} % of its time blocked on other agents", settings.blocked_share * 100.0),
            format!("{:.0} %", share * 100.0),
            evidence,
            0,
        );
        out.findings.push(row);
    }
}

fn claims_success(result: &str) -> bool {
    let words = word_set(result);
    SUCCESS_WORDS.iter().any(|w| words.contains(*w)) && !FAILURE_WORDS.iter().any(|w| words.contains(*w))
        || result.contains(" 0 failed")
}

fn call_evidence(call: &LlmCallRow) -> serde_json::Value {
    json!({"model": call.model, "provider": call.provider, "wall_ns": call.wall_ns, "pid": call.pid})
}
