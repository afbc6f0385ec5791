//! Intent capture: TLS plaintext from the kernel becomes LLM calls, attributed
//! to processes and agents, with secrets redacted and guardrails run before
//! anything leaves the node.
//!
//! The road: [`targets`] finds TLS stacks in files and [`attach`] hooks them;
//! TLS records enter [`IntentCapture::tls_data`]; [`connections`] puts each
//! connection's plaintext back into HTTP exchanges; [`calls`] turns an
//! exchange with an LLM endpoint into an `LlmCall`; [`agents`] says which
//! agent a process belongs to.

pub mod agents;
pub mod attach;
pub mod calls;
pub mod config;
pub mod connections;
pub mod targets;

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
};

use plumbline_ebpf::abi::{tls_direction, tls_library, TlsData};
use plumbline_intent::endpoints::EndpointCatalog;
use plumbline_proto::{
    v1::{event::Body, AgentProcess, TlsStack},
    BatchBuilder, Who,
};

use crate::{
    cgroups::CgroupIdentity,
    enforce::llm_enforcement::{LlmEnforcement, Process},
    process_hooks::{Host, ProcessAt, ProcessHooks},
    process_table::{ProcessInfo, ProcessTable},
};
use agents::{AgentMapper, Membership, Placement};
use attach::{Examined, TlsProbes};
use calls::ConnectionInfo;
use config::IntentConfig;
use connections::{Connection, Piece};

/// How long after an exec a process's memory maps are read again, for the
/// libraries it loaded while starting.
const RESCAN_AFTER_NS: u64 = 1_000_000_000;
/// How long an exited process's connections and agent stay: rings are read
/// one after the other, so its last plaintext can arrive after its exit.
const EXIT_GRACE_NS: u64 = 2_000_000_000;

/// Connects remembered per process to name the sockets of TLS connections.
const CONNECTS_KEPT: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Connect {
    ts_ns: u64,
    local: SocketAddr,
    remote: SocketAddr,
}

struct TrackedConnection {
    connection: Connection,
    info: ConnectionInfo,
    tid: u32,
    cgroup_id: u64,
    resolved: bool,
    /// Boot-clock time of its first plaintext: its connect came before.
    first_ns: u64,
    /// Exchanges completed before the connection's socket was known: the
    /// rings are read one after the other, so its connect can come later.
    /// Sent once it is known, or at the next tick regardless.
    waiting: Vec<connections::Exchange>,
}

impl TrackedConnection {
    /// Learns the socket: the fd's, while the process lives, else (node
    /// writes outside the TLS call; short-lived processes are gone) the
    /// process's latest connect before the connection's first plaintext (a
    /// later one, read before the exchange was sent, is another socket's).
    fn resolve(&mut self, pid: u32, connects: Option<&Vec<Connect>>, dns_name: impl Fn(SocketAddr) -> Option<String>) {
        if self.resolved {
            return;
        }
        let socket = (self.info.fd >= 0).then(|| socket_of(pid, self.info.fd)).flatten();
        let before = || {
            let connect = connects?.iter().rev().find(|c| c.ts_ns <= self.first_ns)?;
            Some((connect.local, connect.remote))
        };
        if let Some((local, remote)) = socket.or_else(before) {
            self.resolved = true;
            self.info.local = Some(local);
            self.info.remote = Some(remote);
            self.info.remote_name = dns_name(remote);
        }
    }
}

/// Counters of what intent capture did, for metrics and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntentCounts {
    pub exchanges: u64,
    pub llm_calls: u64,
    pub bytes_lost: u64,
}

pub struct IntentCapture {
    config: IntentConfig,
    catalog: EndpointCatalog,
    connections: HashMap<(u32, u64), TrackedConnection>,
    pub agents: AgentMapper,
    probes: Option<TlsProbes>,
    /// (pid, process start, file) already reported as a TLS stack.
    stacks_reported: HashSet<(u32, u64, PathBuf)>,
    /// (pid, process start) with at least one stack reported.
    processes_reported: HashSet<(u32, u64)>,
    /// Processes whose maps are read again at the given time.
    rescans: Vec<(u32, u64)>,
    /// Processes that exited: (pid, start, exit time).
    exited: Vec<(u32, u64, u64)>,
    /// Each process's latest TCP connects, oldest first: where a TLS
    /// connection went when its socket can no longer be looked up.
    last_connect: HashMap<u32, Vec<Connect>>,
    /// Keyed hash for connection ids: user-space addresses stay on the node.
    conn_seed: u64,
    pub counts: IntentCounts,
    /// `[roles.llm] kill_on_guardrail`: told of what processes write.
    llm: Option<Arc<LlmEnforcement>>,
}

impl IntentCapture {
    pub fn new(config: IntentConfig, probes: Option<TlsProbes>, llm: Option<Arc<LlmEnforcement>>) -> Self {
        let catalog = EndpointCatalog::with_extra(config.endpoints.clone());
        let agents = AgentMapper::new(config.agents.clone(), config.agent_rules_file.clone());
        let mut intent = Self {
            config,
            catalog,
            connections: HashMap::new(),
            agents,
            probes,
            stacks_reported: HashSet::new(),
            processes_reported: HashSet::new(),
            rescans: Vec::new(),
            exited: Vec::new(),
            last_connect: HashMap::new(),
            conn_seed: uuid::Uuid::new_v4().as_u64_pair().1,
            counts: IntentCounts::default(),
            llm,
        };
        let preload = intent.config.preload.clone();
        if let Some(probes) = &mut intent.probes {
            probes.preload(&preload);
        }
        intent
    }

    /// A TCP connect the network capture saw.
    pub fn note_connect(&mut self, pid: u32, ts_ns: u64, local: SocketAddr, remote: SocketAddr) {
        let connects = self.last_connect.entry(pid).or_default();
        if connects.len() == CONNECTS_KEPT {
            connects.remove(0);
        }
        connects.push(Connect { ts_ns, local, remote });
    }

    /// The server name (SNI) a TLS client set on a connection.
    pub fn server_name(&mut self, pid: u32, conn_id: u64, name: &str) {
        if name.is_empty() {
            return;
        }
        // A name is set before a handshake: a connection at this address
        // that has already carried plaintext belonged to a freed SSL object.
        if self.connections.get(&(pid, conn_id)).is_some_and(|t| t.connection.last_ns != 0) {
            self.connections.remove(&(pid, conn_id));
        }
        let tracked = self.tracked(pid, conn_id, "openssl", 0, 0);
        tracked.info.server_name = Some(name.to_string());
    }

    fn tracked(
        &mut self,
        pid: u32,
        conn_id: u64,
        library: &'static str,
        tid: u32,
        cgroup_id: u64,
    ) -> &mut TrackedConnection {
        let max_body = self.config.max_body_kib as usize * 1024;
        let max_capture = u64::from(self.config.max_capture_kib) * 1024;
        let id = xxhash_rust::xxh3::xxh3_64_with_seed(&conn_id.to_le_bytes(), self.conn_seed) >> 1;
        self.connections.entry((pid, conn_id)).or_insert_with(|| TrackedConnection {
            connection: Connection::new(max_body, max_capture),
            info: ConnectionInfo { connection_id: id, library, fd: -1, ..ConnectionInfo::default() },
            tid,
            cgroup_id,
            resolved: false,
            first_ns: 0,
            waiting: Vec::new(),
        })
    }

    /// One piece of plaintext: LLM calls it completed go into `batch`.
    #[allow(clippy::too_many_arguments)]
    pub fn tls_data(
        &mut self,
        event: &TlsData,
        data: &[u8],
        who: &Who,
        dns_name: impl Fn(SocketAddr) -> Option<String>,
        table: &ProcessTable,
        batch: &mut BatchBuilder,
    ) {
        let h = event.hdr;
        let library = match event.library {
            tls_library::GO => "go",
            _ => "openssl",
        };
        self.report_stack_in_use(h.pid, who, library, table, batch);
        if let Some(dir) = &self.config.dump_dir {
            dump(dir, h.pid, event, data);
        }
        let tracked = self.tracked(h.pid, event.conn_id, library, h.tid, h.cgroup_id);
        if tracked.first_ns == 0 {
            let started = if event.call_start_ns != 0 { event.call_start_ns } else { h.ts_boot_ns };
            tracked.first_ns = started.min(h.ts_boot_ns);
        }
        if tracked.tid == 0 {
            // Created by its server name, before any plaintext.
            (tracked.tid, tracked.cgroup_id) = (h.tid, h.cgroup_id);
        }
        if tracked.info.fd < 0 && event.fd >= 0 {
            tracked.info.fd = event.fd;
            tracked.resolved = false;
        }
        // Looked up again: `tracked` borrowed all of `self`.
        let tracked = self.connections.get_mut(&(h.pid, event.conn_id)).expect("tracked above");
        tracked.resolve(h.pid, self.last_connect.get(&h.pid), dns_name);
        if let Some(llm) = self.llm.as_deref().filter(|_| event.direction == tls_direction::WRITE) {
            // `[roles.llm] kill_on_guardrail`: what was just sent, checked
            // now; an abort is done, and reported, off this thread.
            let (info, process) = (&tracked.info, || Process::known(table, h.pid, h.tid, h.cgroup_id));
            llm.guardrail_write(h.pid, event.conn_id, info.fd, info.remote, data, h.ts_boot_ns, process);
        }
        let lost_before = tracked.connection.total_lost();
        let exchanges = tracked.connection.feed(Piece {
            write: event.direction == tls_direction::WRITE,
            call_start_ns: event.call_start_ns,
            ts_ns: h.ts_boot_ns,
            call_len: u64::from(event.call_len),
            offset: u64::from(event.offset),
            data,
        });
        let lost = tracked.connection.total_lost() - lost_before;
        tracked.waiting.extend(exchanges);
        let ready = tracked.resolved && !tracked.waiting.is_empty();
        self.counts.bytes_lost += lost;
        if ready {
            self.send_waiting((h.pid, event.conn_id), who, batch);
        }
    }

    /// Sends a connection's completed exchanges as they are.
    fn send_waiting(&mut self, key: (u32, u64), process: &Who, batch: &mut BatchBuilder) {
        let Some(tracked) = self.connections.get_mut(&key) else { return };
        let waiting = std::mem::take(&mut tracked.waiting);
        let info = tracked.info.clone();
        let who = Who { tid: tracked.tid, cgroup_id: tracked.cgroup_id, ..*process };
        for exchange in waiting {
            self.emit(&exchange, &info, &who, batch);
        }
    }

    fn emit(&mut self, exchange: &connections::Exchange, info: &ConnectionInfo, who: &Who, batch: &mut BatchBuilder) {
        self.counts.exchanges += 1;
        let agent = self.agents.agent_of(who.pid).map(|m| m.agent.clone()).unwrap_or_default();
        if let Some(call) = calls::llm_call(exchange, &self.catalog, info, &agent, self.config.prompt_capture, batch) {
            self.counts.llm_calls += 1;
            batch.push_by(exchange.start_ns, who, Body::LlmCall(call));
        }
    }

    /// A process started (exec) or was found running: map it to its agent and
    /// look at the TLS stacks it holds.
    pub fn process_started(
        &mut self,
        process: &ProcessInfo,
        identity: Option<CgroupIdentity>,
        who: &Who,
        now_ns: u64,
        seeded: bool,
        batch: &mut BatchBuilder,
    ) {
        self.place(process, identity, who, now_ns, batch);
        // The file itself: a uprobe cannot be placed through /proc/PID/exe.
        let exe = std::fs::read_link(format!("/proc/{}/exe", process.pid))
            .ok()
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(&process.exe));
        self.examine_and_report(process, &exe, who, now_ns, batch);
        if seeded {
            self.scan_maps(process, who, now_ns, batch);
        } else {
            self.rescans.push((process.pid, now_ns + RESCAN_AFTER_NS));
        }
    }

    /// A process forked: it belongs to its parent's agent.
    pub fn process_forked(
        &mut self,
        process: &ProcessInfo,
        identity: Option<CgroupIdentity>,
        who: &Who,
        now_ns: u64,
        batch: &mut BatchBuilder,
    ) {
        self.place(process, identity, who, now_ns, batch);
    }

    /// A process exited: its connections are over once its last plaintext
    /// had time to arrive.
    pub fn process_exited(&mut self, pid: u32, start_ns: u64, now_ns: u64) {
        self.exited.push((pid, start_ns, now_ns));
    }

    /// Ends a connection: a response that ran until the close is complete
    /// now. `process` is who the connection's process is; the thread and
    /// cgroup are the connection's own.
    fn finish_connection(&mut self, key: (u32, u64), process: &Who, batch: &mut BatchBuilder) {
        if let Some(tracked) = self.connections.get_mut(&key) {
            let finished = tracked.connection.finish();
            tracked.waiting.extend(finished);
        }
        self.send_waiting(key, process, batch);
        self.connections.remove(&key);
    }

    fn close_out(&mut self, pid: u32, start_ns: u64, who: &Who, batch: &mut BatchBuilder) {
        let gone: Vec<(u32, u64)> = self.connections.keys().filter(|(p, _)| *p == pid).copied().collect();
        for key in gone {
            self.finish_connection(key, who, batch);
        }
        self.agents.forget(pid, start_ns);
        self.last_connect.remove(&pid);
        self.stacks_reported.retain(|(p, s, _)| *p != pid || *s != start_ns);
        self.processes_reported.remove(&(pid, start_ns));
    }

    /// Periodic work: idle connections closed out, maps of new processes read
    /// again, the rules file re-read.
    pub fn tick(&mut self, now_ns: u64, host: &mut Host<'_>) {
        let table = host.table;
        let dns_name = |pid: u32, addr: SocketAddr| host.dns.name_for(pid, addr.ip(), now_ns).map(str::to_string);
        let who = |pid: u32, batch: &mut BatchBuilder| table.who(pid, pid, 0, batch);
        let batch = &mut *host.batch;
        // Exchanges that waited for their socket go now, named if it is known.
        let waiting: Vec<(u32, u64)> =
            self.connections.iter().filter(|(_, t)| !t.waiting.is_empty()).map(|(k, _)| *k).collect();
        for key in waiting {
            if let Some(tracked) = self.connections.get_mut(&key) {
                tracked.resolve(key.0, self.last_connect.get(&key.0), |addr| dns_name(key.0, addr));
            }
            let process = who(key.0, batch);
            self.send_waiting(key, &process, batch);
        }
        let over: Vec<(u32, u64, u64)> =
            self.exited.iter().filter(|(.., at)| at + EXIT_GRACE_NS <= now_ns).copied().collect();
        self.exited.retain(|(.., at)| at + EXIT_GRACE_NS > now_ns);
        for (pid, start_ns, _) in over {
            let who = Who { process_start_ns: start_ns, ..who(pid, batch) };
            self.close_out(pid, start_ns, &who, batch);
        }
        let idle_ns = self.config.idle_connection_ms * 1_000_000;
        let idle: Vec<(u32, u64)> =
            self.connections.iter().filter(|(_, t)| t.connection.last_ns + idle_ns < now_ns).map(|(k, _)| *k).collect();
        for key in idle {
            let process = who(key.0, batch);
            self.finish_connection(key, &process, batch);
        }
        let due: Vec<u32> = self.rescans.iter().filter(|(_, at)| *at <= now_ns).map(|(pid, _)| *pid).collect();
        self.rescans.retain(|(_, at)| *at > now_ns);
        for pid in due {
            if let Some(process) = table.get(pid).filter(|p| p.exit_ns.is_none()).cloned() {
                let who = who(pid, batch);
                self.scan_maps(&process, &who, now_ns, batch);
            }
        }
        if self.agents.reload_file() {
            // `remap_all` takes a shared closure; naming a cgroup may update its cache.
            let containers = std::cell::RefCell::new(&mut *host.containers);
            let changes =
                self.agents.remap_all(table, |p| Placement::of(containers.borrow_mut().identity(p.cgroup_id, p.pid)));
            for (process, membership) in changes {
                let who = who(process.pid, batch);
                push_membership(membership.as_ref(), &who, now_ns, batch);
            }
        }
    }

    fn place(
        &mut self,
        process: &ProcessInfo,
        identity: Option<CgroupIdentity>,
        who: &Who,
        now_ns: u64,
        batch: &mut BatchBuilder,
    ) {
        if let Some(change) = self.agents.place(process, &Placement::of(identity)) {
            push_membership(change.as_ref(), who, now_ns, batch);
        }
    }

    /// Reads the process's memory maps: every mapped file with a TLS stack
    /// is examined (and hooked) and reported.
    fn scan_maps(&mut self, process: &ProcessInfo, who: &Who, now_ns: u64, batch: &mut BatchBuilder) {
        for file in crate::file_probes::mapped_executables(process.pid) {
            self.examine_and_report(process, &file, who, now_ns, batch);
        }
    }

    fn examine_and_report(
        &mut self,
        process: &ProcessInfo,
        path: &std::path::Path,
        who: &Who,
        now_ns: u64,
        batch: &mut BatchBuilder,
    ) {
        let Some(probes) = &mut self.probes else { return };
        let Some(examined) = probes.examine(path) else { return };
        self.report_stack(process, &examined, who, now_ns, batch);
    }

    fn report_stack(
        &mut self,
        process: &ProcessInfo,
        examined: &Examined,
        who: &Who,
        now_ns: u64,
        batch: &mut BatchBuilder,
    ) {
        let shown = shown_path(process, &examined.path);
        if !self.stacks_reported.insert((process.pid, process.start_ns, shown.clone())) {
            return;
        }
        self.processes_reported.insert((process.pid, process.start_ns));
        if !examined.hooked {
            tracing::info!(pid = process.pid, comm = %process.comm, library = examined.library, reason = %examined.reason, "TLS stack not hooked");
        }
        let stack = TlsStack {
            library_sid: batch.intern(examined.library),
            path_sid: batch.intern(&shown.to_string_lossy()),
            hooked: examined.hooked,
            reason_sid: batch.intern(&examined.reason),
        };
        batch.push_by(now_ns, who, Body::TlsStack(stack));
    }

    /// Plaintext arrived from a process whose stack was not reported yet (it
    /// loaded the hooked library before its maps were read).
    fn report_stack_in_use(
        &mut self,
        pid: u32,
        who: &Who,
        library: &'static str,
        table: &ProcessTable,
        batch: &mut BatchBuilder,
    ) {
        let start = who.process_start_ns;
        if self.processes_reported.contains(&(pid, start)) {
            return;
        }
        let process = table.get(pid).cloned().unwrap_or(ProcessInfo { pid, start_ns: start, ..ProcessInfo::default() });
        // Which file it came from is no longer known: the process may be gone.
        let examined = Examined { library, path: PathBuf::new(), hooked: true, reason: String::new() };
        self.report_stack(&process, &examined, who, node_now(), batch);
    }
}

impl ProcessHooks for IntentCapture {
    fn started(&mut self, at: ProcessAt, seeded: bool, host: &mut Host<'_>) {
        let who = host.table.who(at.pid, at.tid, at.cgroup_id, host.batch);
        let Some(process) = host.table.get(at.pid) else { return };
        let identity = host.containers.identity(process.cgroup_id, process.pid);
        self.process_started(process, identity, &who, at.ts_ns, seeded, host.batch);
    }

    fn forked(&mut self, at: ProcessAt, host: &mut Host<'_>) {
        let who = host.table.who(at.pid, at.tid, at.cgroup_id, host.batch);
        let Some(process) = host.table.get(at.pid) else { return };
        let identity = host.containers.identity(process.cgroup_id, process.pid);
        self.process_forked(process, identity, &who, at.ts_ns, host.batch);
    }

    fn exited(&mut self, at: ProcessAt, start_ns: u64) {
        self.process_exited(at.pid, start_ns, at.ts_ns);
    }

    fn tick(&mut self, now_ns: u64, host: &mut Host<'_>) {
        IntentCapture::tick(self, now_ns, host);
    }
}

/// Appends a piece to its connection's dump file (see `dump_dir`).
fn dump(dir: &std::path::Path, pid: u32, event: &TlsData, data: &[u8]) {
    use std::io::Write;
    let side = if event.direction == tls_direction::WRITE { "written" } else { "read" };
    let path = dir.join(format!("{pid}-{:x}.{side}.bin", event.conn_id));
    let appended =
        std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| f.write_all(data));
    if let Err(err) = appended {
        tracing::warn!(path = %path.display(), %err, "dumping plaintext failed");
    }
}

fn node_now() -> u64 {
    crate::node::boot_ns()
}

/// A path as the process sees it (without the `/proc/PID/root` or
/// `/proc/PID/exe` the agent read it through).
fn shown_path(process: &ProcessInfo, path: &std::path::Path) -> PathBuf {
    let text = path.to_string_lossy();
    let root = format!("/proc/{}/root", process.pid);
    if let Some(rest) = text.strip_prefix(&root) {
        return PathBuf::from(rest);
    }
    path.to_path_buf()
}

fn push_membership(membership: Option<&Membership>, who: &Who, now_ns: u64, batch: &mut BatchBuilder) {
    let body = AgentProcess {
        agent_sid: batch.intern(membership.map_or("", |m| m.agent.as_str())),
        rule_sid: batch.intern(membership.map_or("", |m| m.rule.as_str())),
        matched_on_sid: batch.intern(membership.map_or("", |m| m.matched_on)),
    };
    batch.push_by(now_ns, who, Body::Agent(body));
}

/// The TCP socket behind `fd` of `pid`: (local, remote).
fn socket_of(pid: u32, fd: i32) -> Option<(SocketAddr, SocketAddr)> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let inode: u64 = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()?;
    let process = procfs::process::Process::new(pid as i32).ok()?;
    let entries = process.tcp().ok().into_iter().flatten().chain(process.tcp6().ok().into_iter().flatten());
    entries.filter(|e| e.inode == inode).map(|e| (e.local_address, e.remote_address)).next()
}
