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
//! guardrail hits are findings too. A workload policy's decision on a
//! session's process is a node of its own, linked like an effect
//! ([`decisions`](self::decisions)); what it refused is not an effect.
//!
//! Rows are taken in event time, not in the order they arrived: one step's
//! rows are sorted by when they happened (an LLM call when its response
//! ended), and the session stage holds rows back until each host's clock
//! has passed them ([`sessions`](crate::sessions)). All times within a host
//! are its boot clock (`ts_ns`); each host's state is its own, which is why
//! node agents key batches by host.

use std::collections::{HashMap, HashSet};

use plumbline_store::{
    direction, edge_relation, file_op, node_kind, DnsQueryRow, EnforcementDecisionRow, FileEventRow, FindingRow,
    IpcEventRow, LlmCallRow, LossMarkerRow, NetConnectionRow, ProcessEventKind, ProcessEventRow, RowSet,
    SessionEdgeRow, SessionNodeRow,
};
use serde::Deserialize;

use crate::claims::{announcements, claim, Claim, Expected, Observed};

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
    /// Out-of-scope findings and policy refusals of the settling time.
    settling: Settling,
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
    /// Effects a claim took, and the attempts a policy refused: a refusal
    /// undoes the effect of the same process on the same object, whichever
    /// of the two came first.
    taken: Vec<Attempt>,
    refused: Vec<Attempt>,
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
    /// For each, the node of a policy decision that refused it.
    refused: Vec<Option<u64>>,
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
    /// Set when this is a policy's decision about the effect, not the effect.
    policy: Option<Ruling>,
}

/// What a workload policy decided about an effect.
struct Ruling {
    /// `decision::*`: the relation of the decision's edge.
    decision: u8,
    /// "role agent (exec, enforce) does not allow exec /usr/bin/touch".
    why: String,
}

/// A policy decision may reach the graph just before or just after the
/// effect it stopped (an open killed once it succeeded): an out-of-scope
/// finding is held for the settling time, and a refusal remembered as long,
/// so that what did not take place is never reported as done.
#[derive(Default)]
struct Settling {
    /// (due on the processing clock, pid, object, the finding)
    findings: Vec<(u64, u32, String, FindingRow)>,
    /// (until on the processing clock, pid, object)
    refusals: Vec<(u64, u32, String)>,
}

/// An effect's node, or a decision's, by process and object (the file
/// exec'd or opened, the address), to join the two.
struct Attempt {
    node: u64,
    pid: u32,
    object: String,
    label: String,
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
    Decision(&'a EnforcementDecisionRow),
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
    inputs.extend(rows.enforcement_decisions.iter().map(|d| (d.ts_ns, 2, Input::Decision(d))));
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
                Input::Decision(d) => self.enforcement_decision(d, now_ns, &mut out),
                Input::Loss(l) => self.loss(l),
            }
        }
        self.judge_due(now_ns, &mut out);
        out
    }

    pub fn tick(&mut self, now_ns: u64) -> GraphRows {
        let mut out = GraphRows::default();
        self.judge_due(now_ns, &mut out);
        out
    }

    /// Sessions held, on every host: until a session's process has exited
    /// and it has been quiet past its last turn.
    pub fn open_sessions(&self) -> usize {
        self.hosts.values().flat_map(|boots| boots.values()).map(|host| host.sessions.len()).sum()
    }

    fn host(&mut self, host: &str, boot_id: &str) -> &mut Host {
        if self.hosts.get(host).is_none_or(|boots| !boots.contains_key(boot_id)) {
            self.hosts.entry(host.to_string()).or_default().insert(boot_id.to_string(), Host::default());
        }
        self.hosts.get_mut(host).and_then(|boots| boots.get_mut(boot_id)).expect("inserted above")
    }

    /// The processes of `session` on `host` the graph knows alive: the
    /// session's own and its descendants', sorted.
    pub fn session_pids(&self, host: &str, boot_id: &str, session: &str) -> Vec<u32> {
        let Some(known) = self.hosts.get(host).and_then(|boots| boots.get(boot_id)) else { return Vec::new() };
        let Some(key) = known.sessions.iter().find(|(_, s)| s.id == session).map(|(key, _)| *key) else {
            return Vec::new();
        };
        let mut pids: Vec<u32> = known
            .processes
            .iter()
            .filter(|(pid, process)| !process.exited && session_of(known, **pid) == Some(key))
            .map(|(pid, _)| *pid)
            .collect();
        pids.sort_unstable();
        pids
    }

    /// The session `pid` on this host belongs to, if any.
    fn session_key(&self, host: &str, boot_id: &str, pid: u32) -> Option<ProcessKey> {
        session_of(self.hosts.get(host)?.get(boot_id)?, pid)
    }

    fn session(&mut self, host: &str, boot_id: &str, key: ProcessKey) -> Option<&mut Session> {
        self.hosts.get_mut(host)?.get_mut(boot_id)?.sessions.get_mut(&key)
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

fn excerpt(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max).collect();
    format!("{cut}…")
}

mod decisions;
mod effects;
mod findings;
mod turns;
