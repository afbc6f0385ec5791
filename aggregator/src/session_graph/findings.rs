//! The findings of a session: each with its evidence (the LLM call, the
//! effect expected or the effect no intent explains, what the kernel saw).

use std::collections::{HashMap, HashSet, VecDeque};

use plumbline_store::{finding_kind, FindingRow, LlmCallRow};
use serde_json::json;

use crate::claims::{reported, Reported};
use plumbline_store::now_wall_ns;

use super::{
    excerpt, lost_between, Closing, Effect, Expected, GraphRows, GuardrailJson, Loss, OutOfScope, Session,
    SessionSettings, ToolIntent, Who,
};

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

    /// The verdict on each tool call of a closed turn: verified when every
    /// effect its claim requires was seen; unverified and refused when a
    /// workload policy refused one of them, a finding only if its result
    /// claimed success; unjudgeable when one was not seen but the kernel
    /// lost events of its kind in the turn's window (it may have happened);
    /// else unverified, a finding unless its result itself reported a
    /// failure.
    pub(super) fn judge_turn(&mut self, closing: &Closing, losses: &VecDeque<Loss>, out: &mut GraphRows) {
        let turn = &closing.turn;
        for tool in &turn.tools {
            if tool.announced || !tool.claim.judgeable() {
                continue;
            }
            let who = Who {
                pid: self.pid,
                process_start_key_ns: 0,
                comm: "",
                cgroup_id: 0,
                ts_ns: 0,
                wall_ns: turn.call_wall_ns,
            };
            let missing = missing(tool);
            let rule = rule(tool);
            if missing.is_empty() {
                let seen: Vec<String> = tool
                    .claim
                    .expected
                    .iter()
                    .zip(&tool.matched)
                    .filter_map(|(e, m)| m.map(|node| format!("{} (node {node})", e.describe())))
                    .collect();
                self.verdict(out, tool.node, who, format!("verified: {}", seen.join("; ")), turn.call_wall_ns);
                continue;
            }
            // What a policy refused did not take place, and what a command
            // would have run after it could not: the claim is not supported,
            // and the policy, not the agent, is why.
            let mut refusals: Vec<String> =
                missing.iter().filter_map(|&i| turn.refusal_label(tool.refused[i]?)).collect();
            refusals.dedup();
            let missing: Vec<&Expected> = missing.iter().map(|&i| &tool.claim.expected[i]).collect();
            if !refusals.is_empty() {
                self.judge_refused(closing, tool, &missing, &refusals, who, out);
                continue;
            }
            let kinds: Vec<&str> = missing.iter().flat_map(|e| e.kernel_kinds()).copied().collect();
            let (lost, lost_kinds) = lost_between(losses, &kinds, turn.from_ts_ns, turn.until_ts_ns);
            if lost > 0 {
                let missing: Vec<String> = missing.iter().map(|e| e.describe()).collect();
                let label = format!(
                    "unjudgeable: no {} seen, but the kernel lost {lost} {} events in the turn",
                    missing.join(", "),
                    lost_kinds.join("/")
                );
                self.verdict(out, tool.node, who, label, turn.call_wall_ns);
                continue;
            }
            let result = closing.results.get(&tool.id);
            let said = result.map_or(Reported::Neither, |r| reported(r));
            let claims_success = said == Reported::Success;
            let reports_failure = said == Reported::Failure;
            let expected = described(&missing);
            let seen = &turn.seen;
            let observed = if seen.is_empty() {
                "nothing in the session's process tree".to_string()
            } else {
                format!("instead: {}", seen.join("; "))
            };
            if reports_failure {
                let label = format!("unverified: no {expected}, and its result reported a failure");
                self.verdict(out, tool.node, who, label, turn.call_wall_ns);
                continue;
            }
            let command = tool.claim.expected.iter().find_map(|e| match e {
                Expected::Run { command, .. } => Some(command.as_str()),
                _ => None,
            });
            let mut summary = match command {
                Some(command) => {
                    format!("{} claimed `{}`; the kernel saw no {expected}", tool.name, excerpt(command, 100))
                }
                None => format!("{} claimed {expected}; the kernel saw no such effect", tool.name),
            };
            if closing.next_node.is_some() {
                summary.push_str(" before the next LLM call");
            }
            if let (true, Some(r)) = (claims_success, result) {
                summary.push_str(&format!(", yet its result reported success: \"{}\"", excerpt(r, 80)));
            }
            let verified: Vec<String> = tool
                .claim
                .expected
                .iter()
                .zip(&tool.matched)
                .filter(|(_, m)| m.is_some())
                .map(|(e, _)| e.describe())
                .collect();
            let evidence = json!({
                "rule": rule, "llm_call": turn.node,
                "tool_call": {"id": tool.id, "name": tool.name, "arguments": tool.arguments},
                "required": expected, "verified": verified, "unjudgeable_parts": tool.claim.unjudgeable,
                "observed": seen, "tool_result": result, "next_llm_call": closing.next_node,
            });
            let severity = if claims_success { "high" } else { "medium" };
            self.verdict(out, tool.node, who, format!("unverified: no {expected}"), turn.call_wall_ns);
            let row = self.finding(
                finding_kind::UNVERIFIED_CLAIM,
                severity,
                tool.id.clone(),
                turn.call_wall_ns,
                summary,
                turn.node,
                expected,
                observed,
                evidence,
                0,
            );
            out.findings.push(row);
        }
    }

    /// A tool call whose claimed effect a workload policy refused: its
    /// verdict says so; a finding (unverified_claim) only when its result
    /// claimed success all the same, since the agent then told its LLM what
    /// the kernel did not let happen.
    fn judge_refused(
        &mut self,
        closing: &Closing,
        tool: &ToolIntent,
        missing: &[&Expected],
        refusals: &[String],
        who: Who<'_>,
        out: &mut GraphRows,
    ) {
        let turn = &closing.turn;
        let expected = described(missing);
        let refused = refusals.join("; ");
        let result = closing.results.get(&tool.id);
        let said = result.map_or(Reported::Neither, |r| reported(r));
        let mut label = format!("unverified: no {expected}, refused by policy: {refused}");
        match said {
            Reported::Failure => label.push_str(", and its result reported a failure"),
            Reported::Success => label.push_str(", yet its result reported success"),
            Reported::Neither => {}
        }
        self.verdict(out, tool.node, who, label, turn.call_wall_ns);
        let Some(result) = result.filter(|_| said == Reported::Success) else { return };
        let summary = format!(
            "{} claimed {expected}; the policy refused it ({refused}), yet its result reported success: \"{}\"",
            tool.name,
            excerpt(result, 80)
        );
        let evidence = json!({
            "rule": rule(tool), "llm_call": turn.node,
            "tool_call": {"id": tool.id, "name": tool.name, "arguments": tool.arguments},
            "required": expected, "refused_by": refusals, "observed": turn.seen, "tool_result": result,
            "next_llm_call": closing.next_node,
        });
        let row = self.finding(
            finding_kind::UNVERIFIED_CLAIM,
            "high",
            tool.id.clone(),
            turn.call_wall_ns,
            summary,
            turn.node,
            expected,
            format!("refused: {refused}"),
            evidence,
            0,
        );
        out.findings.push(row);
    }

    /// Time blocked on IPC objects that another session also used.
    pub(super) fn judge_blocked(
        &mut self,
        settings: &SessionSettings,
        ipc_users: &HashMap<u64, HashSet<String>>,
        out: &mut GraphRows,
    ) {
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
        // Reported when it crosses the threshold, and again whenever the
        // share moves, so the row ends holding the final share (a finding is
        // keyed by session, kind and subject: the later row replaces it).
        let reported = self.blocked_reported > 0.0;
        if !reported && (blocked < settings.blocked_min_ns || share < settings.blocked_share) {
            return;
        }
        if reported && (share - self.blocked_reported).abs() < 0.01 {
            return;
        }
        self.blocked_reported = share;
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

/// What a tool call claimed and the kernel did not show, by index in its
/// claim: each required program not exec'd; or, when it named files or
/// addresses, all of them if none was touched.
fn missing(tool: &ToolIntent) -> Vec<usize> {
    let claimed = || tool.claim.expected.iter().zip(&tool.matched).enumerate();
    let mut missing: Vec<usize> = claimed()
        .filter(|(_, (e, m))| matches!(e, Expected::Run { required: true, .. }) && m.is_none())
        .map(|(i, _)| i)
        .collect();
    let others: Vec<(usize, bool)> = claimed()
        .filter(|(_, (e, _))| !matches!(e, Expected::Run { .. }))
        .map(|(i, (_, m))| (i, m.is_some()))
        .collect();
    if !others.is_empty() && others.iter().all(|(_, seen)| !seen) {
        missing.extend(others.into_iter().map(|(i, _)| i));
    }
    missing
}

/// "exec `make` and exec `./deploy`", "file a or file b": every program
/// must run, any one file or address will do.
fn described(missing: &[&Expected]) -> String {
    let expected: Vec<String> = missing.iter().map(|e| e.describe()).collect();
    expected.join(if missing.iter().all(|e| matches!(e, Expected::Run { .. })) { " and " } else { " or " })
}

/// The rule a tool call was judged by, in words a person can check.
fn rule(tool: &ToolIntent) -> &'static str {
    if tool.claim.expected.iter().any(|e| matches!(e, Expected::Run { .. })) {
        "every program the command must run is exec'd in the session's process tree between the response and the \
         next LLM call: the program found through PATH (not a file the session wrote itself), with the claimed \
         arguments; shell builtins, branches and what follows `||` are not required"
    } else if tool.claim.expected.iter().any(|e| matches!(e, Expected::File { .. })) {
        "the named file is opened (for writing, when the tool writes it), created or renamed onto by the session's \
         process tree between the response and the next LLM call"
    } else {
        "the named host is looked up or connected to by the session's process tree between the response and the \
         next LLM call"
    }
}

fn call_evidence(call: &LlmCallRow) -> serde_json::Value {
    json!({"model": call.model, "provider": call.provider, "wall_ns": call.wall_ns, "pid": call.pid})
}
