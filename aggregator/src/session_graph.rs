//! The causal graph of agent sessions, built as rows go by. A session is
//! one LLM-calling process and its descendants on one host. Each LLM call
//! opens a turn: the tool calls of its response claim effects
//! ([`claims`](crate::claims)); the session's process tree does things
//! until the next call, which sends the tool results back. Effects that a
//! tool call's claim names are linked to it; the others that follow a call
//! within the window are linked to the call. When a turn closes (the next
//! call seen, plus a settling delay for effects still in flight; or the
//! window elapsed), each tool call gets a verdict: verified, unverified (a
//! finding) or unjudgeable. Secret reads, egress outside the allowlist,
//! loops of near-identical calls, time blocked on another agent and
//! guardrail hits are findings too.
//!
//! Rows are taken in event time, not in the order they arrived: one step's
//! rows are sorted by when they happened (an LLM call when its response
//! ended), and the session stage holds rows back until each host's clock
//! has passed them ([`sessions`](crate::sessions)). All times within a host
//! are its boot clock (`ts_ns`); each host's state is its own, which is why
//! node agents key batches by host.

use std::collections::{HashMap, HashSet};

use plumbline_store::{
    direction, edge_relation, file_op, node_kind, DnsQueryRow, FileEventRow, IpcEventRow, LlmCallRow, LossMarkerRow,
    NetConnectionRow, ProcessEventKind, ProcessEventRow, RowSet, SessionEdgeRow, SessionNodeRow,
};
use serde::Deserialize;

use crate::claims::{announcements, claim, Claim, Expected, Observed};

mod findings;

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
/// Files a session remembers writing.
const MAX_WRITTEN: usize = 4_096;
/// Kernel losses a host remembers.
const MAX_LOSSES: usize = 1_024;
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
    /// What the kernel could not write, newest last: an effect missing from
    /// a window that lost events of its kind may have happened.
    losses: std::collections::VecDeque<Loss>,
}

/// Events of one kind the kernel lost between two boot-clock times.
struct Loss {
    kind: String,
    count: u64,
    from_ns: u64,
    to_ns: u64,
}

/// Events of `kinds` lost in `from_ns..=to_ns`, and which kinds they were.
fn lost_between(
    losses: &std::collections::VecDeque<Loss>,
    kinds: &[&str],
    from_ns: u64,
    to_ns: u64,
) -> (u64, Vec<String>) {
    let mut count = 0;
    let mut names: Vec<String> = Vec::new();
    for loss in losses.iter().filter(|l| l.from_ns <= to_ns && l.to_ns >= from_ns) {
        if kinds.contains(&loss.kind.as_str()) {
            count += loss.count;
            if !names.contains(&loss.kind) {
                names.push(loss.kind.clone());
            }
        }
    }
    (count, names)
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
    /// The blocked share last reported, to report it again as it grows.
    blocked_reported: f64,
    /// Files the session's processes wrote: a program among them is of its
    /// own making.
    written: HashSet<String>,
    reported: HashSet<(String, String)>,
    next_node: u64,
    /// Processing-clock time it last saw a call or an effect.
    touched_ns: u64,
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
    claim: Claim,
    /// For each effect the claim expects, the node of the first effect seen
    /// that is it.
    matched: Vec<Option<u64>>,
    /// Other effects its claim named (a second run of the same program).
    also: Vec<u64>,
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

/// Why an effect is out of the session's scope, for its finding.
struct OutOfScope {
    /// A secret read; else egress outside the allowlist.
    secret: bool,
    /// How a tool call named it, when one did.
    caused_by: Option<String>,
    /// The LLM call whose turn it happened in.
    llm_call: Option<u64>,
}

#[derive(Deserialize)]
struct GuardrailJson {
    kind: String,
    location: String,
    excerpt: String,
}

pub struct SessionGraph {
    settings: SessionSettings,
    /// Host name → boot id → what the graph knows of that boot. Nested so
    /// that a row's host is found by its borrowed names.
    hosts: HashMap<String, HashMap<String, Host>>,
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

/// A row the graph reads.
enum Input<'a> {
    Process(&'a ProcessEventRow),
    Call(&'a LlmCallRow),
    File(&'a FileEventRow),
    Dns(&'a DnsQueryRow),
    Connect(&'a NetConnectionRow),
    Ipc(&'a IpcEventRow),
    Loss(&'a LossMarkerRow),
}

/// When a row happened on its host's boot clock, the order the graph takes
/// it in: an LLM call when its response ended (its tool calls act after
/// that), everything else when it happened.
pub fn event_ts(row: &LlmCallRow) -> u64 {
    row.request_ts_ns.saturating_add(row.latency_ns)
}

/// The rows the graph reads, in event time; at the same instant a process
/// starts before what it does.
fn in_event_order(rows: &RowSet) -> Vec<Input<'_>> {
    let mut inputs: Vec<(u64, u8, Input<'_>)> = Vec::new();
    inputs.extend(rows.process_events.iter().map(|p| (p.ts_ns, 0, Input::Process(p))));
    inputs.extend(rows.llm_calls.iter().map(|c| (event_ts(c), 1, Input::Call(c))));
    inputs.extend(rows.file_events.iter().map(|f| (f.ts_ns, 2, Input::File(f))));
    inputs.extend(rows.dns_queries.iter().map(|d| (d.ts_ns, 2, Input::Dns(d))));
    inputs.extend(rows.net_connections.iter().map(|c| (c.ts_ns, 2, Input::Connect(c))));
    inputs.extend(rows.ipc_events.iter().map(|i| (i.ts_ns, 2, Input::Ipc(i))));
    // A loss is known before anything after its interval began is judged.
    inputs.extend(rows.loss_markers.iter().map(|l| (l.from_ns, 0, Input::Loss(l))));
    inputs.sort_by_key(|(ts, rank, _)| (*ts, *rank));
    inputs.into_iter().map(|(_, _, input)| input).collect()
}

impl SessionGraph {
    pub fn new(settings: SessionSettings) -> Self {
        Self { settings, hosts: HashMap::new() }
    }

    /// Feeds the rows about to be stored; returns the graph rows and
    /// findings they make. The rows are taken in the order they happened,
    /// whatever order they came in. `now_ns` is the processing clock.
    pub fn observe(&mut self, rows: &RowSet, now_ns: u64) -> GraphRows {
        let mut out = GraphRows::default();
        for input in in_event_order(rows) {
            match input {
                Input::Process(p) => self.process_event(p, now_ns, &mut out),
                Input::Call(call) => self.llm_call(call, now_ns, &mut out),
                Input::File(f) => self.file_event(f, now_ns, &mut out),
                Input::Dns(d) => self.dns_query(d, now_ns, &mut out),
                Input::Connect(c) => self.connection(c, now_ns, &mut out),
                Input::Ipc(i) => self.ipc_event(i, now_ns),
                Input::Loss(l) => self.loss(l),
            }
        }
        self.judge_due(now_ns, &mut out);
        out
    }

    fn process_event(&mut self, p: &ProcessEventRow, now_ns: u64, out: &mut GraphRows) {
        const EXIT: u8 = ProcessEventKind::Exit as u8;
        const EXEC: u8 = ProcessEventKind::Exec as u8;
        const STARTS: [u8; 3] = [EXEC, ProcessEventKind::Seen as u8, ProcessEventKind::Fork as u8];
        let host = self.host(&p.host, &p.boot_id);
        if p.kind == EXIT {
            if let Some(known) = host.processes.get_mut(&p.pid) {
                known.exited = true;
            }
        } else if STARTS.contains(&p.kind) {
            let process = Process { start_key_ns: p.start_key_ns, ppid: p.ppid, exited: false };
            // An exec keeps the parent a fork named, if the exec's is unknown.
            let ppid = host.processes.get(&p.pid).filter(|_| p.ppid == 0).map(|known| known.ppid);
            host.processes.insert(p.pid, Process { ppid: ppid.unwrap_or(process.ppid), ..process });
        }
        if p.kind != EXEC {
            return;
        }
        // Effects: only those of a session's processes are worth any work.
        let Some(key) = self.session_key(&p.host, &p.boot_id, p.pid) else { return };
        let argv = p.argv.join(" ");
        let self_made = self.session(&p.host, &p.boot_id, key).is_some_and(|s| s.written.contains(&p.exe));
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
            label: argv,
            observed: Observed::Exec { exe: &p.exe, argv: &p.argv, self_made },
            notable: true,
            who,
        };
        self.effect(&p.host, &p.boot_id, key, effect, now_ns, out);
    }

    fn file_event(&mut self, f: &FileEventRow, now_ns: u64, out: &mut GraphRows) {
        let wrote = f.op == file_op::OPEN && f.flags & WRITE_FLAGS != 0;
        let (verb, notable) = match f.op {
            file_op::OPEN if wrote => ("write", true),
            file_op::OPEN => ("read", false),
            file_op::UNLINK => ("unlink", true),
            file_op::RENAME => ("rename", true),
            _ => return,
        };
        if f.result < 0 {
            return;
        }
        let Some(key) = self.session_key(&f.host, &f.boot_id, f.pid) else { return };
        if let Some(session) = self.session(&f.host, &f.boot_id, key) {
            let made = if f.op == file_op::RENAME { &f.target } else { &f.path };
            if (wrote || f.op == file_op::RENAME) && session.written.len() < MAX_WRITTEN {
                session.written.insert(made.clone());
            }
        }
        // Devices, kernel files and directories (a temporary file opened
        // in /tmp) are how programs work, not what they did.
        let plumbing = ["/dev/", "/proc/", "/sys/"].iter().any(|p| f.path.starts_with(p)) || f.mode & S_IFMT == S_IFDIR;
        let label = if f.op == file_op::RENAME && !f.target.is_empty() {
            format!("{verb} {} → {}", f.path, f.target)
        } else {
            format!("{verb} {}", f.path)
        };
        let effect = Effect {
            kind: node_kind::FILE,
            label,
            observed: Observed::File { path: &f.path, target: &f.target, wrote },
            notable: notable && !plumbing,
            who: who_of!(f),
        };
        self.effect(&f.host, &f.boot_id, key, effect, now_ns, out);
    }

    fn dns_query(&mut self, d: &DnsQueryRow, now_ns: u64, out: &mut GraphRows) {
        let Some(key) = self.session_key(&d.host, &d.boot_id, d.pid) else { return };
        // What the session's lookups answered names the addresses it then
        // connects to.
        let host = self.host(&d.host, &d.boot_id);
        for answer in d.answers.split([',', ' ']).filter(|a| !a.is_empty()) {
            let names = host.resolved.entry(answer.to_string()).or_default();
            if !names.contains(&d.name) {
                names.push(d.name.clone());
            }
        }
        let effect = Effect {
            kind: node_kind::LOOKUP,
            label: format!("lookup {}", d.name),
            observed: Observed::Lookup { name: &d.name },
            notable: true,
            who: who_of!(d),
        };
        self.effect(&d.host, &d.boot_id, key, effect, now_ns, out);
    }

    fn connection(&mut self, c: &NetConnectionRow, now_ns: u64, out: &mut GraphRows) {
        if c.direction != direction::CONNECT || c.remote_addr.is_empty() || c.result != 0 {
            return;
        }
        let Some(key) = self.session_key(&c.host, &c.boot_id, c.pid) else { return };
        let resolved = self.host(&c.host, &c.boot_id).resolved.get(&c.remote_addr).cloned().unwrap_or_default();
        let port = u16::try_from(c.remote_port).unwrap_or(0);
        let effect = Effect {
            kind: node_kind::CONNECT,
            label: format!("connect {}", endpoint(&c.remote_addr, port)),
            observed: Observed::Connect { addr: &c.remote_addr, port, resolved_from: &resolved },
            notable: true,
            who: who_of!(c),
        };
        self.effect(&c.host, &c.boot_id, key, effect, now_ns, out);
    }

    fn ipc_event(&mut self, i: &IpcEventRow, now_ns: u64) {
        let Some(key) = self.session_key(&i.host, &i.boot_id, i.pid) else { return };
        let host = self.host(&i.host, &i.boot_id);
        let session = host.sessions.get_mut(&key).expect("found above");
        *session.blocked.entry(i.object_id).or_default() += i.read_blocked_ns + i.write_blocked_ns;
        session.last_wall_ns = session.last_wall_ns.max(i.wall_ns);
        session.touched_ns = now_ns;
        host.ipc_users.entry(i.object_id).or_default().insert(session.id.clone());
    }

    /// Judges turns whose settling time passed, and open turns whose window
    /// elapsed with no next call; checks time blocked on other agents.
    fn loss(&mut self, l: &LossMarkerRow) {
        let losses = &mut self.host(&l.host, &l.boot_id).losses;
        if losses.len() == MAX_LOSSES {
            losses.pop_front();
        }
        losses.push_back(Loss { kind: l.kind.clone(), count: l.count, from_ns: l.from_ns, to_ns: l.to_ns });
    }

    pub fn tick(&mut self, now_ns: u64) -> GraphRows {
        let mut out = GraphRows::default();
        self.judge_due(now_ns, &mut out);
        out
    }

    fn host(&mut self, host: &str, boot_id: &str) -> &mut Host {
        if self.hosts.get(host).is_none_or(|boots| !boots.contains_key(boot_id)) {
            self.hosts.entry(host.to_string()).or_default().insert(boot_id.to_string(), Host::default());
        }
        self.hosts.get_mut(host).and_then(|boots| boots.get_mut(boot_id)).expect("inserted above")
    }

    /// The session `pid` on this host belongs to, if any.
    fn session_key(&self, host: &str, boot_id: &str, pid: u32) -> Option<ProcessKey> {
        session_of(self.hosts.get(host)?.get(boot_id)?, pid)
    }

    fn session(&mut self, host: &str, boot_id: &str, key: ProcessKey) -> Option<&mut Session> {
        self.hosts.get_mut(host)?.get_mut(boot_id)?.sessions.get_mut(&key)
    }

    fn llm_call(&mut self, call: &LlmCallRow, now_ns: u64, out: &mut GraphRows) {
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
        });
    }

    /// An effect of a process of session `key` on this host.
    fn effect(
        &mut self,
        host_name: &str,
        boot_id: &str,
        key: ProcessKey,
        effect: Effect<'_>,
        now_ns: u64,
        out: &mut GraphRows,
    ) {
        let settings = &self.settings;
        let host = self.hosts.get_mut(host_name).and_then(|boots| boots.get_mut(boot_id)).expect("has the session");
        let llm_endpoints = &host.llm_endpoints;
        let session = host.sessions.get_mut(&key).expect("found by the caller");
        session.touched_ns = now_ns;
        if effect.who.wall_ns < session.first_wall_ns {
            return;
        }
        let secret = matches!(effect.observed, Observed::File { path, .. } if is_secret(settings, path));
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
            // The first claim still waiting for this effect takes it; one
            // run does not verify two claims of it.
            let node = session.next_node;
            let waiting = turn.tools.iter_mut().find_map(|tool| {
                let at = (0..tool.claim.expected.len())
                    .find(|&i| tool.matched[i].is_none() && tool.claim.expected[i].matches(&effect.observed))?;
                tool.matched[at] = Some(node);
                Some((tool, at))
            });
            let named = match waiting {
                Some(found) => Some(found),
                None => turn.tools.iter_mut().find_map(|tool| {
                    let at = tool.claim.expected.iter().position(|e| e.matches(&effect.observed))?;
                    tool.also.push(node);
                    Some((tool, at))
                }),
            };
            if let Some((tool, at)) = named {
                let reason = format!("{} claimed {}", tool.name, tool.claim.expected[at].describe());
                cause = Some((reason, tool.node, tool.tainted));
            }
        }
        if cause.is_none() && (is_llm_endpoint || !effect.notable && !secret) {
            return;
        }
        let wall = effect.who.wall_ns;
        session.last_wall_ns = session.last_wall_ns.max(wall);
        session.effects_since_call += 1;
        let node = session.push_node(out, effect.kind, effect.label.clone(), String::new(), 0, effect.who);
        if let Some((reason, tool_node, _)) = &cause {
            session.link(out, *tool_node, node, edge_relation::CAUSED, reason, wall);
        } else if let Some(call_node) = in_window {
            let reason = format!("in the process tree within {} s of the call", settings.window_ns / 1_000_000_000);
            session.link(out, call_node, node, edge_relation::FOLLOWED, &reason, wall);
        }
        // Egress a tool call asked for before any outside content came in is
        // the session's intent; after it, or asked by nobody, it is not.
        let egress = unlisted && !matches!(cause, Some((_, _, false)));
        if secret || egress {
            let why = OutOfScope { secret, caused_by: cause.map(|(reason, _, _)| reason), llm_call: in_window };
            if let Some(finding) = session.out_of_scope_finding(&effect, why, settings) {
                out.findings.push(finding);
            }
        }
    }

    fn judge_due(&mut self, now_ns: u64, out: &mut GraphRows) {
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
            blocked_reported: 0.0,
            written: HashSet::new(),
            reported: HashSet::new(),
            next_node: 1,
            touched_ns: 0,
        }
    }

    /// Adds a node of the session; returns its id.
    fn push_node(
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
    fn verdict(&mut self, out: &mut GraphRows, tool_node: u64, who: Who<'_>, label: String, wall_ns: u64) {
        let node = self.push_node(out, node_kind::VERDICT, label, String::new(), 0, who);
        self.link(out, tool_node, node, edge_relation::JUDGED, "the kernel's record against the claim", wall_ns);
    }

    /// Adds an edge between two of the session's nodes.
    fn link(&self, out: &mut GraphRows, from: u64, to: u64, relation: &str, reason: &str, wall_ns: u64) {
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
