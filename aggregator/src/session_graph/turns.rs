//! An LLM call opens a turn: its tool calls claim effects; a turn closes
//! when the next call is seen (plus a settling delay) or its window ends,
//! and each tool call is judged then.

use super::*;

impl SessionGraph {
    pub(super) fn llm_call(&mut self, call: &LlmCallRow, now_ns: u64, out: &mut GraphRows) {
        let settings = &self.settings;
        let host = self.hosts.entry(call.host.clone()).or_default().entry(call.boot_id.clone()).or_default();
        host.processes.entry(call.pid).or_insert(Process {
            start_key_ns: call.process_start_key_ns,
            ppid: 0,
            exited: false,
        });
        let key = (call.pid, call.process_start_key_ns);
        let session = host.sessions.entry(key).or_insert_with(|| Session::new(call));
        if !call.agent.is_empty() {
            session.agent = call.agent.clone();
        }
        session.last_wall_ns = session.last_wall_ns.max(call.wall_ns);
        session.touched_ns = now_ns;
        host.llm_endpoints.insert(endpoint(&call.remote_addr, u16::try_from(call.remote_port).unwrap_or(0)));

        let tokens = call.input_tokens + call.output_tokens;
        let tools: Vec<ToolCallJson> = serde_json::from_str(&call.tool_calls).unwrap_or_default();
        let results: Vec<ToolResultJson> = serde_json::from_str(&call.tool_results).unwrap_or_default();
        let label = if tools.is_empty() {
            format!("{} → {}", call.model, excerpt(&call.completion, 80))
        } else {
            let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
            format!("{} → {}", call.model, names.join(", "))
        };
        let call_who = Who { ts_ns: call.request_ts_ns, ..who_of!(call) };
        let node = session.push_node(out, node_kind::LLM_CALL, label, excerpt(&call.prompt, 2000), tokens, call_who);

        // The previous turn closes: its results come in this call. The
        // conversation sends every earlier result again; only the results
        // of the turn's own tool calls are new.
        if let Some(mut turn) = session.turn.take() {
            turn.until_ts_ns = turn.until_ts_ns.min(call.request_ts_ns);
            let mut by_id = HashMap::new();
            for result in &results {
                let Some(tool) = turn.tools.iter().find(|t| t.id == result.tool_call_id && !t.announced) else {
                    continue;
                };
                if by_id.contains_key(&tool.id) {
                    continue;
                }
                let label = format!("{} ← {}", tool.name, excerpt(&result.content, 80));
                let detail = excerpt(&result.content, 2000);
                let result_node = session.push_node(out, node_kind::TOOL_RESULT, label, detail, 0, call_who);
                let wall = call.wall_ns;
                session.link(out, result_node, node, edge_relation::SENT_IN, "sent back in the next call", wall);
                session.link(out, tool.node, result_node, edge_relation::REPORTED, "its result", wall);
                for effect in tool.matched.iter().flatten().chain(&tool.also) {
                    let reason = "reported in the tool result";
                    session.link(out, *effect, result_node, edge_relation::REPORTED, reason, wall);
                }
                by_id.insert(result.tool_call_id.clone(), result.content.clone());
            }
            session.closing.push(Closing {
                turn,
                results: by_id,
                next_node: Some(node),
                due_ns: now_ns + settings.settle_ns,
            });
        }

        // A loop: near-identical requests with nothing done in between.
        // The prompt is the last user message, the same across a tool loop:
        // the tool results sent back tell those calls apart.
        let words = word_set(&format!("{} {}", call.prompt, call.tool_results));
        let continues = session.effects_since_call == 0
            && session.run.last().is_some_and(|last| jaccard(&last.words, &words) >= settings.loop_similarity);
        if !continues {
            session.run.clear();
        }
        session.run.push(RunCall { words, tokens, wall_ns: call.wall_ns, node });
        if session.run.len() == settings.loop_calls {
            out.findings.push(session.loop_finding(call));
        }
        session.effects_since_call = 0;

        for g in serde_json::from_str::<Vec<GuardrailJson>>(&call.findings).unwrap_or_default() {
            if let Some(finding) = session.guardrail_finding(call, &g, node, tokens) {
                out.findings.push(finding);
            }
        }

        // The new turn opens with this response's tool calls.
        let mut intents = Vec::new();
        for tool in tools {
            let label = format!("{} {}", tool.name, excerpt(&tool.arguments, 100));
            let tool_node = session.push_node(out, node_kind::TOOL_CALL, label, tool.arguments.clone(), 0, call_who);
            session.link(out, node, tool_node, edge_relation::REQUESTED, "in the response", call.wall_ns);
            let claim = claim(&tool.name, &tool.arguments);
            let tainted = !session.fetched.is_empty();
            // A URL fetched: content from outside enters the conversation.
            if tool.arguments.contains("://") && claim.expected.iter().any(|e| matches!(e, Expected::Reach { .. })) {
                session.fetched.push(format!("{} {}", tool.name, excerpt(&tool.arguments, 200)));
            }
            if !claim.judgeable() {
                // Said now, not at the turn's end: nothing will change it.
                let why = claim.unjudgeable.join("; ");
                session.verdict(out, tool_node, call_who, format!("unjudgeable: {why}"), call.wall_ns);
            }
            intents.push(ToolIntent {
                id: tool.id,
                name: tool.name,
                arguments: tool.arguments,
                node: tool_node,
                matched: vec![None; claim.expected.len()],
                refused: vec![None; claim.expected.len()],
                also: Vec::new(),
                claim,
                tainted,
                announced: false,
            });
        }
        for announced in announcements(&call.completion) {
            let label = format!("announced {}", announced.describe());
            let node_id = session.push_node(out, node_kind::ANNOUNCEMENT, label, String::new(), 0, call_who);
            session.link(out, node, node_id, edge_relation::REQUESTED, "in the response's text", call.wall_ns);
            intents.push(ToolIntent {
                id: format!("text-{node_id}"),
                name: "the response's text".into(),
                arguments: announced.describe(),
                node: node_id,
                matched: vec![None],
                refused: vec![None],
                also: Vec::new(),
                claim: Claim { expected: vec![announced], unjudgeable: Vec::new() },
                tainted: !session.fetched.is_empty(),
                announced: true,
            });
        }
        let end_ts_ns = call.request_ts_ns + call.latency_ns;
        session.turn = Some(Turn {
            node,
            call_wall_ns: call.wall_ns,
            opened_ns: now_ns,
            from_ts_ns: end_ts_ns.saturating_sub(SLACK_NS),
            until_ts_ns: end_ts_ns.saturating_add(settings.window_ns),
            tools: intents,
            seen: Vec::new(),
            taken: Vec::new(),
            refused: Vec::new(),
        });
    }

    pub(super) fn judge_due(&mut self, now_ns: u64, out: &mut GraphRows) {
        let settings = &self.settings;
        for host in self.hosts.values_mut().flat_map(HashMap::values_mut) {
            let (ipc_users, losses) = (&host.ipc_users, &host.losses);
            for session in host.sessions.values_mut() {
                // An open turn whose window passed with no next call.
                if let Some(turn) = &session.turn {
                    let waited = now_ns.saturating_sub(turn.opened_ns);
                    if waited > settings.window_ns + settings.settle_ns
                        && turn.tools.iter().any(|t| !t.announced && t.claim.judgeable())
                    {
                        let turn = session.turn.take().expect("checked above");
                        session.closing.push(Closing {
                            turn,
                            results: HashMap::new(),
                            next_node: None,
                            due_ns: now_ns,
                        });
                    }
                }
                if session.closing.iter().any(|c| c.due_ns <= now_ns) {
                    let (due, waiting): (Vec<Closing>, Vec<Closing>) =
                        std::mem::take(&mut session.closing).into_iter().partition(|c| c.due_ns <= now_ns);
                    session.closing = waiting;
                    for closing in due {
                        session.judge_turn(&closing, losses, out);
                    }
                }
                if !session.blocked.is_empty() {
                    session.judge_blocked(settings, ipc_users, out);
                }
                session.settled(now_ns, out);
            }
            // A session whose process exited is forgotten once it has been
            // quiet past its last turn's window.
            let processes = &host.processes;
            let finished: Vec<ProcessKey> = host
                .sessions
                .iter()
                .filter(|(key, s)| {
                    let exited = processes.get(&key.0).is_none_or(|p| p.exited || p.start_key_ns != key.1);
                    // Past this, an open turn with something to judge has
                    // been closed and judged above.
                    let quiet = now_ns.saturating_sub(s.touched_ns) > settings.window_ns + settings.settle_ns;
                    exited && s.closing.is_empty() && quiet
                })
                .map(|(key, _)| *key)
                .collect();
            for key in finished {
                let session = host.sessions.remove(&key).expect("listed above");
                host.ipc_users.retain(|_, users| {
                    users.remove(&session.id);
                    !users.is_empty()
                });
            }
            if host.processes.len() > MAX_PROCESSES {
                host.processes.retain(|_, p| !p.exited);
            }
            if host.resolved.len() > MAX_PROCESSES {
                host.resolved.clear();
            }
        }
    }
}

impl Session {
    pub(super) fn new(call: &LlmCallRow) -> Self {
        let id = format!(
            "s{:012x}",
            xxhash_rust::xxh3::xxh3_64(
                format!("{}/{}/{}/{}", call.host, call.boot_id, call.pid, call.process_start_key_ns).as_bytes()
            ) & 0xffff_ffff_ffff
        );
        Self {
            id,
            agent: call.agent.clone(),
            host: call.host.clone(),
            boot_id: call.boot_id.clone(),
            pid: call.pid,
            first_wall_ns: call.wall_ns.saturating_sub(call.latency_ns),
            last_wall_ns: call.wall_ns,
            turn: None,
            closing: Vec::new(),
            fetched: Vec::new(),
            run: Vec::new(),
            effects_since_call: 0,
            blocked: HashMap::new(),
            blocked_reported: 0.0,
            written: HashSet::new(),
            reported: HashSet::new(),
            settling: Settling::default(),
            next_node: 1,
            touched_ns: 0,
        }
    }

    /// Adds a node of the session; returns its id.
    pub(super) fn push_node(
        &mut self,
        out: &mut GraphRows,
        kind: &str,
        label: String,
        detail: String,
        tokens: u64,
        who: Who<'_>,
    ) -> u64 {
        let node = self.next_node;
        self.next_node += 1;
        out.session_nodes.push(SessionNodeRow {
            host: self.host.clone(),
            boot_id: self.boot_id.clone(),
            pid: who.pid,
            process_start_key_ns: who.process_start_key_ns,
            comm: who.comm.to_string(),
            cgroup_id: who.cgroup_id,
            ts_ns: who.ts_ns,
            wall_ns: who.wall_ns,
            session: self.id.clone(),
            agent: self.agent.clone(),
            node,
            kind: kind.to_string(),
            label,
            detail,
            tokens,
        });
        node
    }

    /// A verdict on a tool call: its own node, linked from the call.
    pub(super) fn verdict(&mut self, out: &mut GraphRows, tool_node: u64, who: Who<'_>, label: String, wall_ns: u64) {
        let node = self.push_node(out, node_kind::VERDICT, label, String::new(), 0, who);
        self.link(out, tool_node, node, edge_relation::JUDGED, "the kernel's record against the claim", wall_ns);
    }

    /// Adds an edge between two of the session's nodes.
    pub(super) fn link(&self, out: &mut GraphRows, from: u64, to: u64, relation: &str, reason: &str, wall_ns: u64) {
        out.session_edges.push(SessionEdgeRow {
            session: self.id.clone(),
            from_node: from,
            to_node: to,
            relation: relation.to_string(),
            reason: reason.to_string(),
            wall_ns,
        });
    }
}

fn word_set(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    a.intersection(b).count() as f64 / a.union(b).count() as f64
}
