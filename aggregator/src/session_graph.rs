//! The causal graph of agent sessions, built as rows go by. A session is
//! one LLM-calling process and its descendants on one host. Each LLM call
//! opens a turn: the tool calls of its response announce effects
//! ([`intent_match`](crate::intent_match)); the session's process tree does
//! things until the next call, which sends the tool results back. Effects
//! that a tool call's arguments name are linked to it; the others that
//! follow a call within the window are linked to the call. When a turn
//! closes (the next call seen, plus a settling delay for effects still in
//! flight; or the window elapsed), announced effects that never happened
//! become unverified-claim findings. Secret reads, egress outside the
//! allowlist, loops of near-identical calls, time blocked on another agent
//! and guardrail hits are findings too.
//!
//! All times within a host are its boot clock (`ts_ns`); each host's state
//! is its own, which is why node agents key batches by host.

use std::collections::{HashMap, HashSet};

use plumbline_store::{
    direction, edge_relation, file_op, finding_kind, node_kind, FindingRow, LlmCallRow, ProcessEventKind, RowSet,
    SessionEdgeRow, SessionNodeRow,
};
use serde::Deserialize;
use serde_json::json;

use crate::intent_match::{announcements, expectations, Expected, Observed};

/// The thresholds of `[pipeline.sessions]`, in ns.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// How long after an LLM call its tool calls may take effect, and
    /// effects in its tree are linked to it.
    pub window_ns: u64,
    /// How long after a turn closes effects still in flight are waited for.
    pub settle_ns: u64,
    /// Calls in a row that make a loop.
    pub loop_calls: usize,
    /// Word overlap (Jaccard) above which two requests are the same.
    pub loop_similarity: f64,
    /// Share of the session's wall time blocked on another agent's IPC.
    pub blocked_share: f64,
    pub blocked_min_ns: u64,
    /// Path substrings that mark a secret, and file names that are one.
    pub secret_paths: Vec<String>,
    pub secret_names: Vec<String>,
    /// Hosts, addresses, `host:port` the session may reach; empty leaves
    /// egress unchecked. A session's own LLM endpoints are always allowed.
    pub egress_allow: Vec<String>,
}

/// O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND.
const WRITE_FLAGS: u32 = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000;
/// Effects this long before a response ended still count for its turn
/// (the agent's clock readings and the kernel's differ slightly).
const SLACK_NS: u64 = 1_000_000;
/// Effects kept per turn as evidence.
const MAX_SEEN: usize = 20;
/// The file type bits of a mode, and a directory's.
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
/// Ancestors walked to find a process's session.
const MAX_DEPTH: usize = 64;
/// Processes remembered per host before the exited are forgotten.
const MAX_PROCESSES: usize = 65_536;
/// Words of a tool result that say it went well, and that it did not.
const SUCCESS_WORDS: [&str; 7] = ["passed", "success", "succeeded", "done", "completed", "ok", "wrote"];
const FAILURE_WORDS: [&str; 5] = ["failed", "error", "failure", "traceback", "exception"];

#[derive(Debug, Clone)]
struct Process {
    start_key_ns: u64,
    ppid: u32,
    exited: bool,
}

/// A process's identity across pid reuse.
type ProcessKey = (u32, u64);

#[derive(Default)]
struct Host {
    processes: HashMap<u32, Process>,
    sessions: HashMap<ProcessKey, Session>,
    /// Names each address was the answer for.
    resolved: HashMap<String, Vec<String>>,
    /// LLM endpoints (addr:port) any session on the host called.
    llm_endpoints: HashSet<String>,
    /// IPC objects (pipes, sockets) → sessions that used them.
    ipc_users: HashMap<u64, HashSet<String>>,
}

struct Session {
    id: String,
    agent: String,
    host: String,
    boot_id: String,
    pid: u32,
    first_wall_ns: u64,
    last_wall_ns: u64,
    /// The open turn: the last call, until the next one closes it.
    turn: Option<Turn>,
    /// Closed turns waiting for effects still in flight.
    closing: Vec<Closing>,
    /// Tool calls that fetched from outside, for evidence.
    fetched: Vec<String>,
    /// The current run of near-identical calls.
    run: Vec<RunCall>,
    effects_since_call: u64,
    /// Blocked ns per IPC object.
    blocked: HashMap<u64, u64>,
    reported: HashSet<(String, String)>,
    next_node: u64,
}

struct Turn {
    node: u64,
    call_wall_ns: u64,
    /// Processing-clock time the call was seen.
    opened_ns: u64,
    /// Effects between these boot-clock times belong to the turn: from the
    /// end of the response until the window ends or the next call starts.
    from_ts_ns: u64,
    until_ts_ns: u64,
    tools: Vec<ToolIntent>,
    /// What the tree did in the turn, for evidence.
    seen: Vec<String>,
}

struct ToolIntent {
    id: String,
    name: String,
    arguments: String,
    node: u64,
    expected: Vec<Expected>,
    /// Effects its arguments named.
    matched: Vec<u64>,
    /// Asked for after content fetched from outside entered the session.
    tainted: bool,
    /// Announced in the response's text, not asked as a tool call: linked,
    /// not judged.
    announced: bool,
}

struct Closing {
    turn: Turn,
    /// The next call's tool results, by tool call id, and its node.
    results: HashMap<String, String>,
    next_node: Option<u64>,
    /// Processing-clock time at which it is judged.
    due_ns: u64,
}

struct RunCall {
    words: HashSet<String>,
    tokens: u64,
    wall_ns: u64,
    node: u64,
}

#[derive(Deserialize)]
struct ToolCallJson {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct ToolResultJson {
    tool_call_id: String,
    content: String,
}

#[derive(Deserialize)]
struct GuardrailJson {
    kind: String,
    location: String,
    excerpt: String,
}

pub struct SessionGraph {
    settings: SessionSettings,
    hosts: HashMap<(String, String), Host>,
}

/// What one step of the graph adds.
pub type GraphRows = RowSet;

/// An effect of a process, before its session is known.
struct Effect<'a> {
    kind: &'static str,
    label: String,
    observed: Observed<'a>,
    /// Kept in the timeline even when no intent names it.
    notable: bool,
    who: Who<'a>,
}

/// The [`Who`] of an activity row (any row with the who-and-when columns).
macro_rules! who_of {
    ($row:expr) => {
        Who {
            pid: $row.pid,
            process_start_key_ns: $row.process_start_key_ns,
            comm: &$row.comm,
            cgroup_id: $row.cgroup_id,
            ts_ns: $row.ts_ns,
            wall_ns: $row.wall_ns,
        }
    };
}

#[derive(Clone, Copy)]
struct Who<'a> {
    pid: u32,
    process_start_key_ns: u64,
    comm: &'a str,
    cgroup_id: u64,
    ts_ns: u64,
    wall_ns: u64,
}

impl SessionGraph {
    pub fn new(settings: SessionSettings) -> Self {
        Self { settings, hosts: HashMap::new() }
    }

    /// Feeds the rows about to be stored; returns the graph rows and
    /// findings they make. `now_ns` is the processing clock.
    pub fn observe(&mut self, rows: &RowSet, now_ns: u64) -> GraphRows {
        let mut out = GraphRows::default();
        for p in &rows.process_events {
            let host = self.host(&p.host, &p.boot_id);
            let process = Process { start_key_ns: p.start_key_ns, ppid: p.ppid, exited: false };
            const EXIT: u8 = ProcessEventKind::Exit as u8;
            const STARTS: [u8; 3] =
                [ProcessEventKind::Exec as u8, ProcessEventKind::Seen as u8, ProcessEventKind::Fork as u8];
            if p.kind == EXIT {
                if let Some(known) = host.processes.get_mut(&p.pid) {
                    known.exited = true;
                }
            } else if STARTS.contains(&p.kind) {
                host.processes.insert(p.pid, process);
            }
        }
        for d in &rows.dns_queries {
            let host = self.host(&d.host, &d.boot_id);
            for answer in d.answers.split([',', ' ']).filter(|a| !a.is_empty()) {
                let names = host.resolved.entry(answer.to_string()).or_default();
                if !names.contains(&d.name) {
                    names.push(d.name.clone());
                }
            }
        }
        let mut calls: Vec<&LlmCallRow> = rows.llm_calls.iter().collect();
        calls.sort_by_key(|c| c.request_ts_ns);
        for call in calls {
            self.llm_call(call, now_ns, &mut out);
        }
        for p in &rows.process_events {
            if p.kind == ProcessEventKind::Exec as u8 {
                let argv = p.argv.join(" ");
                let who = Who {
                    pid: p.pid,
                    process_start_key_ns: p.start_key_ns,
                    comm: &p.comm,
                    cgroup_id: p.cgroup_id,
                    ts_ns: p.ts_ns,
                    wall_ns: p.wall_ns,
                };
                let effect = Effect {
                    kind: node_kind::EXEC,
                    label: argv.clone(),
                    observed: Observed::Exec { argv: &argv },
                    notable: true,
                    who,
                };
                self.effect(&p.host, &p.boot_id, effect, &mut out);
            }
        }
        for f in &rows.file_events {
            let (verb, notable) = match f.op {
                file_op::OPEN if f.flags & WRITE_FLAGS != 0 => ("write", true),
                file_op::OPEN => ("read", false),
                file_op::UNLINK => ("unlink", true),
                file_op::RENAME => ("rename", true),
                _ => continue,
            };
            if f.result < 0 {
                continue;
            }
            // Devices, kernel files and directories (a temporary file opened
            // in /tmp) are how programs work, not what they did.
            let plumbing =
                ["/dev/", "/proc/", "/sys/"].iter().any(|p| f.path.starts_with(p)) || f.mode & S_IFMT == S_IFDIR;
            let notable = notable && !plumbing;
            let who = who_of!(f);
            let effect = Effect {
                kind: node_kind::FILE,
                label: format!("{verb} {}", f.path),
                observed: Observed::File { path: &f.path },
                notable,
                who,
            };
            self.effect(&f.host, &f.boot_id, effect, &mut out);
        }
        for d in &rows.dns_queries {
            let who = who_of!(d);
            let effect = Effect {
                kind: node_kind::LOOKUP,
                label: format!("lookup {}", d.name),
                observed: Observed::Lookup { name: &d.name },
                notable: true,
                who,
            };
            self.effect(&d.host, &d.boot_id, effect, &mut out);
        }
        for c in &rows.net_connections {
            if c.direction != direction::CONNECT || c.remote_addr.is_empty() || c.result != 0 {
                continue;
            }
            let resolved = self.host(&c.host, &c.boot_id).resolved.get(&c.remote_addr).cloned().unwrap_or_default();
            let who = who_of!(c);
            let port = u16::try_from(c.remote_port).unwrap_or(0);
            let effect = Effect {
                kind: node_kind::CONNECT,
                label: format!("connect {}", endpoint(&c.remote_addr, port)),
                observed: Observed::Connect { addr: &c.remote_addr, port, resolved_from: &resolved },
                notable: true,
                who,
            };
            self.effect(&c.host, &c.boot_id, effect, &mut out);
        }
        for i in &rows.ipc_events {
            let blocked = i.read_blocked_ns + i.write_blocked_ns;
            let host = self.host(&i.host, &i.boot_id);
            let Some(key) = session_of(host, i.pid) else { continue };
            let session = host.sessions.get_mut(&key).expect("found above");
            let id = session.id.clone();
            *session.blocked.entry(i.object_id).or_default() += blocked;
            session.last_wall_ns = session.last_wall_ns.max(i.wall_ns);
            host.ipc_users.entry(i.object_id).or_default().insert(id);
        }
        self.judge_due(now_ns, &mut out);
        out
    }

    /// Judges turns whose settling time passed, and open turns whose window
    /// elapsed with no next call; checks time blocked on other agents.
    pub fn tick(&mut self, now_ns: u64) -> GraphRows {
        let mut out = GraphRows::default();
        self.judge_due(now_ns, &mut out);
        out
    }

    fn host(&mut self, host: &str, boot_id: &str) -> &mut Host {
        self.hosts.entry((host.to_string(), boot_id.to_string())).or_default()
    }

    fn llm_call(&mut self, call: &LlmCallRow, now_ns: u64, out: &mut GraphRows) {
        let settings = &self.settings;
        let host = self.hosts.entry((call.host.clone(), call.boot_id.clone())).or_default();
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
        host.llm_endpoints.insert(endpoint(&call.remote_addr, u16::try_from(call.remote_port).unwrap_or(0)));

        let node = session.node();
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
        out.session_nodes.push(session.node_row(
            node,
            node_kind::LLM_CALL,
            label,
            excerpt(&call.prompt, 2000),
            tokens,
            &call.host,
            &call.boot_id,
            call_who,
        ));

        // The previous turn closes: its results come in this call.
        if let Some(mut turn) = session.turn.take() {
            turn.until_ts_ns = turn.until_ts_ns.min(call.request_ts_ns);
            let mut by_id = HashMap::new();
            for result in &results {
                let result_node = session.node();
                let tool = turn.tools.iter().find(|t| t.id == result.tool_call_id);
                let name = tool.map_or("?", |t| t.name.as_str());
                out.session_nodes.push(session.node_row(
                    result_node,
                    node_kind::TOOL_RESULT,
                    format!("{name} ← {}", excerpt(&result.content, 80)),
                    excerpt(&result.content, 2000),
                    0,
                    &call.host,
                    &call.boot_id,
                    call_who,
                ));
                out.session_edges.push(edge(
                    &session.id,
                    result_node,
                    node,
                    edge_relation::SENT_IN,
                    "sent back in the next call",
                    call.wall_ns,
                ));
                if let Some(tool) = tool {
                    out.session_edges.push(edge(
                        &session.id,
                        tool.node,
                        result_node,
                        edge_relation::REPORTED,
                        "its result",
                        call.wall_ns,
                    ));
                    for &effect in &tool.matched {
                        out.session_edges.push(edge(
                            &session.id,
                            effect,
                            result_node,
                            edge_relation::REPORTED,
                            "reported in the tool result",
                            call.wall_ns,
                        ));
                    }
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
            out.findings.push(session.loop_finding(call, now_wall_ns()));
        }
        session.effects_since_call = 0;

        for g in serde_json::from_str::<Vec<GuardrailJson>>(&call.findings).unwrap_or_default() {
            // The conversation sends its history again with every call: the
            // same match in the same text is one finding.
            let subject = format!("{} in the {}", g.kind, g.location);
            if session.reported.contains(&(finding_kind::GUARDRAIL.to_string(), subject.clone())) {
                continue;
            }
            let severity = if g.kind.contains("injection") { "high" } else { "medium" };
            let evidence = json!({"llm_call": call_evidence(call), "guardrail": g.kind, "location": g.location, "excerpt": g.excerpt});
            out.findings.push(session.finding(
                finding_kind::GUARDRAIL,
                severity,
                subject,
                call.wall_ns,
                format!("guardrail {} matched in the {}: {}", g.kind, g.location, excerpt(&g.excerpt, 120)),
                node,
                String::new(),
                g.excerpt.clone(),
                evidence,
                tokens,
            ));
        }

        // The new turn opens with this response's tool calls.
        let mut intents = Vec::new();
        for tool in tools {
            let tool_node = session.node();
            out.session_nodes.push(session.node_row(
                tool_node,
                node_kind::TOOL_CALL,
                format!("{} {}", tool.name, excerpt(&tool.arguments, 100)),
                tool.arguments.clone(),
                0,
                &call.host,
                &call.boot_id,
                call_who,
            ));
            out.session_edges.push(edge(
                &session.id,
                node,
                tool_node,
                edge_relation::REQUESTED,
                "in the response",
                call.wall_ns,
            ));
            let expected = expectations(&tool.arguments);
            let tainted = !session.fetched.is_empty();
            // A URL fetched: content from outside enters the conversation.
            if tool.arguments.contains("://") && expected.iter().any(|e| matches!(e, Expected::Reach { .. })) {
                session.fetched.push(format!("{} {}", tool.name, excerpt(&tool.arguments, 200)));
            }
            intents.push(ToolIntent {
                id: tool.id,
                name: tool.name,
                arguments: tool.arguments,
                node: tool_node,
                expected,
                matched: Vec::new(),
                tainted,
                announced: false,
            });
        }
        for announced in announcements(&call.completion) {
            let node_id = session.node();
            let label = format!("announced {}", announced.describe());
            out.session_nodes.push(session.node_row(
                node_id,
                node_kind::ANNOUNCEMENT,
                label,
                String::new(),
                0,
                &call.host,
                &call.boot_id,
                call_who,
            ));
            out.session_edges.push(edge(
                &session.id,
                node,
                node_id,
                edge_relation::REQUESTED,
                "in the response's text",
                call.wall_ns,
            ));
            intents.push(ToolIntent {
                id: format!("text-{node_id}"),
                name: "the response's text".into(),
                arguments: announced.describe(),
                node: node_id,
                expected: vec![announced],
                matched: Vec::new(),
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
        });
    }

    fn effect(&mut self, host_name: &str, boot_id: &str, effect: Effect<'_>, out: &mut GraphRows) {
        let settings = &self.settings;
        let Some(host) = self.hosts.get_mut(&(host_name.to_string(), boot_id.to_string())) else { return };
        let Some(key) = session_of(host, effect.who.pid) else { return };
        let llm_endpoints = &host.llm_endpoints;
        let session = host.sessions.get_mut(&key).expect("found above");
        if effect.who.wall_ns < session.first_wall_ns {
            return;
        }
        let secret = matches!(effect.observed, Observed::File { path } if is_secret(settings, path));
        let is_llm_endpoint = matches!(effect.observed, Observed::Connect { addr, port, .. }
            if llm_endpoints.contains(&endpoint(addr, port)));
        let unlisted = match effect.observed {
            Observed::Connect { addr, port, resolved_from } => {
                !settings.egress_allow.is_empty()
                    && !is_llm_endpoint
                    && port != 53
                    && !allowed(&settings.egress_allow, addr, port, resolved_from)
            }
            _ => false,
        };

        // Which tool call of the open turn (or of a closing one) names it.
        let ts = effect.who.ts_ns;
        // (why, the tool call's node, whether it was asked for after content
        // fetched from outside)
        let mut cause: Option<(String, u64, bool)> = None;
        let mut in_window = None;
        let turns = session.turn.iter_mut().chain(session.closing.iter_mut().map(|c| &mut c.turn));
        for turn in turns.filter(|t| (t.from_ts_ns..=t.until_ts_ns).contains(&ts)) {
            in_window.get_or_insert(turn.node);
            if turn.seen.len() < MAX_SEEN && effect.notable && !is_llm_endpoint {
                turn.seen.push(effect.label.clone());
            }
            if cause.is_some() {
                continue;
            }
            for tool in &mut turn.tools {
                if let Some(e) = tool.expected.iter().find(|e| e.matches(&effect.observed)) {
                    cause = Some((format!("{} named {}", tool.name, e.describe()), tool.node, tool.tainted));
                    tool.matched.push(session.next_node);
                    break;
                }
            }
        }
        if cause.is_none() && (is_llm_endpoint || !effect.notable && !secret) {
            return;
        }
        let node = session.node();
        let wall = effect.who.wall_ns;
        session.last_wall_ns = session.last_wall_ns.max(wall);
        session.effects_since_call += 1;
        out.session_nodes.push(session.node_row(
            node,
            effect.kind,
            effect.label.clone(),
            String::new(),
            0,
            host_name,
            boot_id,
            effect.who,
        ));
        if let Some((reason, tool_node, _)) = &cause {
            out.session_edges.push(edge(&session.id, *tool_node, node, edge_relation::CAUSED, reason, wall));
        } else if let Some(call_node) = in_window {
            let reason = format!("in the process tree within {} s of the call", settings.window_ns / 1_000_000_000);
            out.session_edges.push(edge(&session.id, call_node, node, edge_relation::FOLLOWED, &reason, wall));
        }
        // Egress a tool call asked for before any outside content came in is
        // the session's intent; after it, or asked by nobody, it is not.
        let egress = unlisted && !matches!(cause, Some((_, _, false)));
        let subject = effect.label.clone();
        if (secret || egress) && !session.reported.contains(&(finding_kind::OUT_OF_SCOPE.to_string(), subject.clone()))
        {
            let what = if secret { "secret read" } else { "egress outside the allowlist" };
            let severity = if session.fetched.is_empty() { "medium" } else { "high" };
            let caused_by = cause.as_ref().map(|(reason, _, _)| reason.clone());
            let mut summary = format!("{what}: {} by {} ({})", effect.label, effect.who.comm, effect.who.pid);
            if let Some(fetch) = session.fetched.last() {
                summary.push_str(&format!(", after content fetched from outside ({})", excerpt(fetch, 80)));
            }
            let evidence = json!({
                "effect": effect.label, "pid": effect.who.pid, "comm": effect.who.comm,
                "caused_by_tool_call": caused_by, "fetched_before": session.fetched,
            });
            let expected = if secret {
                "no secret read".to_string()
            } else {
                format!("egress only to {}", settings.egress_allow.join(", "))
            };
            out.findings.push(session.finding(
                finding_kind::OUT_OF_SCOPE,
                severity,
                subject,
                wall,
                summary,
                in_window.unwrap_or(0),
                expected,
                effect.label,
                evidence,
                0,
            ));
        }
    }

    fn judge_due(&mut self, now_ns: u64, out: &mut GraphRows) {
        let settings = &self.settings;
        for host in self.hosts.values_mut() {
            let ipc_users = &host.ipc_users;
            for session in host.sessions.values_mut() {
                // An open turn whose window passed with no next call.
                if let Some(turn) = &session.turn {
                    let waited = now_ns.saturating_sub(turn.opened_ns);
                    if waited > settings.window_ns + settings.settle_ns
                        && turn.tools.iter().any(|t| !t.announced && !t.expected.is_empty())
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
                let (due, waiting): (Vec<Closing>, Vec<Closing>) =
                    std::mem::take(&mut session.closing).into_iter().partition(|c| c.due_ns <= now_ns);
                session.closing = waiting;
                for closing in due {
                    session.judge_turn(&closing, out);
                }
                session.judge_blocked(settings, ipc_users, out);
            }
            if host.processes.len() > MAX_PROCESSES {
                host.processes.retain(|_, p| !p.exited);
            }
        }
    }
}

impl Session {
    fn new(call: &LlmCallRow) -> Self {
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
            reported: HashSet::new(),
            next_node: 1,
        }
    }

    fn node(&mut self) -> u64 {
        let node = self.next_node;
        self.next_node += 1;
        node
    }

    #[allow(clippy::too_many_arguments)]
    fn node_row(
        &self,
        node: u64,
        kind: &str,
        label: String,
        detail: String,
        tokens: u64,
        host: &str,
        boot_id: &str,
        who: Who<'_>,
    ) -> SessionNodeRow {
        SessionNodeRow {
            host: host.to_string(),
            boot_id: boot_id.to_string(),
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
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
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

    fn loop_finding(&mut self, call: &LlmCallRow, found: u64) -> FindingRow {
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
        let mut row = self.finding(
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
        );
        row.found_wall_ns = found;
        row
    }

    /// Announced effects that did not happen in a closed turn.
    fn judge_turn(&mut self, closing: &Closing, out: &mut GraphRows) {
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
    fn judge_blocked(
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

/// The session a process belongs to: its own, or its nearest ancestor's.
fn session_of(host: &Host, pid: u32) -> Option<ProcessKey> {
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        let process = host.processes.get(&current)?;
        let key = (current, process.start_key_ns);
        if host.sessions.contains_key(&key) {
            return Some(key);
        }
        if process.ppid <= 1 || process.ppid == current {
            return None;
        }
        current = process.ppid;
    }
    None
}

fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn is_secret(settings: &SessionSettings, path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    settings.secret_paths.iter().any(|s| path.contains(s.as_str()))
        || settings.secret_names.iter().any(|n| name == n || name.starts_with(&format!("{n}.")))
}

/// Whether `addr:port` (or a name it was resolved from) is allowed.
fn allowed(allow: &[String], addr: &str, port: u16, names: &[String]) -> bool {
    allow.iter().any(|entry| {
        let (host, entry_port) = match entry.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h.trim_matches(['[', ']']), p.parse().ok()),
            _ => (entry.as_str(), None),
        };
        let host_matches = host == addr || names.iter().any(|n| n.eq_ignore_ascii_case(host));
        host_matches && entry_port.is_none_or(|p: u16| p == port)
    })
}

fn claims_success(result: &str) -> bool {
    let words = word_set(result);
    SUCCESS_WORDS.iter().any(|w| words.contains(*w)) && !FAILURE_WORDS.iter().any(|w| words.contains(*w))
        || result.contains(" 0 failed")
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

fn excerpt(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max).collect();
    format!("{cut}…")
}

fn edge(session: &str, from: u64, to: u64, relation: &str, reason: &str, wall_ns: u64) -> SessionEdgeRow {
    SessionEdgeRow {
        session: session.to_string(),
        from_node: from,
        to_node: to,
        relation: relation.to_string(),
        reason: reason.to_string(),
        wall_ns,
    }
}

fn call_evidence(call: &LlmCallRow) -> serde_json::Value {
    json!({"model": call.model, "provider": call.provider, "wall_ns": call.wall_ns, "pid": call.pid})
}

fn now_wall_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
