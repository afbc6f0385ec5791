//! Turns records into events: one match names every kind of record and hands
//! each to its handler with only the state that handler needs. What the agent
//! remembers of the host (who, and what things are called) is [`HostState`];
//! the captures that follow processes (intent, GPU) hear of every start,
//! fork and exit from one place here, through [`ProcessHooks`].

use std::sync::Arc;

use plumbline_ebpf::{
    abi::{CudaCall, EventHeader, NcclCall, TlsSni},
    record::Record,
};
use plumbline_proto::{v1::event::Body, BatchBuilder};

use crate::{
    activity_events::{self, Activity},
    batches::JobBatches,
    containers::ContainerAnnouncer,
    dns::DnsTracker,
    enforce::{enforcer::WorkloadSelector, llm_enforcement::LlmEnforcement, names::RoleNames},
    enforcement_events::{self, DecisionCounts},
    file_paths::PathCache,
    gpu::{GpuCapture, GpuCounts},
    intent::{IntentCapture, IntentCounts},
    kernel_events::{self, encode_seen, Encoded},
    process_hooks::{Host, ProcessAt, ProcessHooks},
    process_table::{ProcessInfo, ProcessTable},
};

/// What the agent remembers of the host: the process table (who), the path
/// and DNS memories (what things were called), and which cgroups were
/// already described.
pub struct HostState {
    pub table: ProcessTable,
    pub paths: PathCache,
    pub dns: DnsTracker,
    pub containers: ContainerAnnouncer,
    /// Keyed hash for socket ids: kernel addresses stay on the node.
    sock_seed: u64,
}

impl HostState {
    fn new() -> Self {
        Self {
            table: ProcessTable::default(),
            paths: PathCache::default(),
            dns: DnsTracker::default(),
            containers: ContainerAnnouncer::default(),
            sock_seed: uuid::Uuid::new_v4().as_u64_pair().0,
        }
    }

    fn hooks_view<'a>(&'a mut self, batch: &'a mut BatchBuilder) -> Host<'a> {
        Host { table: &self.table, containers: &mut self.containers, dns: &self.dns, batch }
    }
}

/// The captures that follow processes; `None` when turned off.
#[derive(Default)]
pub struct Followers {
    /// Enrols the processes a workload rule selects, before the others hear of them.
    pub enforce: Option<WorkloadSelector>,
    /// TLS plaintext into LLM calls.
    pub intent: Option<IntentCapture>,
    /// CUDA and NCCL calls.
    pub gpu: Option<GpuCapture>,
}

impl Followers {
    /// Those that are on, in the order they hear of a process: enforcement,
    /// intent, GPU.
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut dyn ProcessHooks> {
        let enforce = self.enforce.as_mut().map(|enforce| enforce as &mut dyn ProcessHooks);
        let intent = self.intent.as_mut().map(|intent| intent as &mut dyn ProcessHooks);
        let gpu = self.gpu.as_mut().map(|gpu| gpu as &mut dyn ProcessHooks);
        enforce.into_iter().chain(intent).chain(gpu)
    }
}

/// A change in a process's life, as the followers hear of it.
#[derive(Debug, Clone, Copy)]
enum Change {
    Started { seeded: bool },
    Forked,
    Exited { start_ns: u64 },
}

pub struct Encoder {
    pub host: HostState,
    followers: Followers,
    /// How long an exited process stays in the table.
    exited_ttl_ns: u64,
    /// The enforced roles' names, by the ids policy decisions carry.
    roles: RoleNames,
    /// Policy decisions made so far, for `/metrics`.
    decisions: DecisionCounts,
    /// `[roles.llm]`: its aborts report their decisions here.
    llm: Option<Arc<LlmEnforcement>>,
}

impl Encoder {
    pub fn new(
        exited_ttl_ns: u64,
        followers: Followers,
        roles: RoleNames,
        decisions: DecisionCounts,
        llm: Option<Arc<LlmEnforcement>>,
    ) -> Self {
        Self { host: HostState::new(), followers, exited_ttl_ns, roles, decisions, llm }
    }

    pub fn intent_counts(&self) -> Option<IntentCounts> {
        self.followers.intent.as_ref().map(|intent| intent.counts)
    }

    pub fn gpu_counts(&self) -> Option<GpuCounts> {
        self.followers.gpu.as_ref().map(|gpu| gpu.counts)
    }

    /// Jobs with a rank alive on this host.
    pub fn live_jobs(&self) -> Vec<String> {
        self.followers.gpu.as_ref().map(|gpu| gpu.live_jobs()).unwrap_or_default()
    }

    /// Describes processes found running at start as `seen` events (and
    /// their cgroups).
    pub fn announce_running(&mut self, running: &[ProcessInfo], now_ns: u64, batch: &mut BatchBuilder) {
        for info in running {
            self.host.containers.announce(info.cgroup_id, info.pid, now_ns, batch);
            encode_seen(info, now_ns, batch);
        }
    }

    /// Puts processes found running at start in the table and tells the
    /// followers of each.
    pub fn seed(&mut self, running: Vec<ProcessInfo>, now_ns: u64, batch: &mut BatchBuilder) {
        for info in running {
            self.host.table.seed(info);
        }
        let seeded: Vec<ProcessAt> = (self.host.table.iter())
            .map(|p| ProcessAt { pid: p.pid, tid: p.pid, cgroup_id: p.cgroup_id, ts_ns: now_ns })
            .collect();
        let mut host = self.host.hooks_view(batch);
        for follower in self.followers.iter_mut() {
            for process in &seeded {
                follower.started(*process, true, &mut host);
            }
        }
    }

    /// The followers' periodic work, and the LLM aborts done since the last
    /// tick.
    pub fn tick(&mut self, now_ns: u64, batch: &mut BatchBuilder) {
        let mut host = self.host.hooks_view(batch);
        for follower in self.followers.iter_mut() {
            follower.tick(now_ns, &mut host);
        }
        for decided in self.llm.iter().flat_map(|llm| llm.finished()) {
            enforcement_events::push_llm(decided, &self.decisions, batch);
        }
    }

    /// Adds the event(s) `record` describes to `batch`, or an NCCL call of a
    /// known job to that job's batch. Every kind of record is named: a new
    /// one does not compile until it is handled here.
    pub fn record(&mut self, record: &Record<'_>, batch: &mut BatchBuilder, jobs: &mut JobBatches) -> Encoded {
        let h = *record.header();
        let at = ProcessAt { pid: h.pid, tid: h.tid, cgroup_id: h.cgroup_id, ts_ns: h.ts_boot_ns };
        let host = &mut self.host;
        host.containers.announce(h.cgroup_id, h.pid, h.ts_boot_ns, batch);
        match record {
            Record::ProcExec { .. } => {
                let encoded = self.process(record, batch);
                self.process_changed(Change::Started { seeded: false }, at, batch);
                encoded
            }
            Record::ProcFork(_) => {
                let encoded = self.process(record, batch);
                self.process_changed(Change::Forked, at, batch);
                encoded
            }
            Record::ProcExit(event) => {
                let encoded = self.process(record, batch);
                self.process_changed(Change::Exited { start_ns: event.start_boot_ns }, at, batch);
                encoded
            }
            Record::ProcExecFailed { .. } => self.process(record, batch),
            Record::Cuda(event) => {
                if let Some(gpu) = &mut self.followers.gpu {
                    encode_cuda(gpu, &host.table, &h, event, batch);
                }
                Encoded::Event
            }
            Record::Nccl { event, unique_id } => {
                if let Some(gpu) = &mut self.followers.gpu {
                    encode_nccl(gpu, &host.table, &h, event, unique_id, batch, jobs);
                }
                Encoded::Event
            }
            Record::TlsData { event, data } => {
                let who = host.table.who(h.pid, h.tid, h.cgroup_id, batch);
                if let Some(intent) = &mut self.followers.intent {
                    let dns = &host.dns;
                    let name =
                        |addr: std::net::SocketAddr| dns.name_for(h.pid, addr.ip(), h.ts_boot_ns).map(str::to_string);
                    intent.tls_data(event, data, &who, name, &host.table, batch);
                }
                Encoded::Event
            }
            Record::TlsSni(event) => {
                if let Some(intent) = &mut self.followers.intent {
                    server_name(intent, &h, event);
                }
                Encoded::Event
            }
            Record::EnforceNet(event) => {
                let llm = self.llm.as_deref();
                enforcement_events::encode_net(event, llm, &self.roles, &self.decisions, &host.table, batch);
                Encoded::Event
            }
            Record::EnforceRate(event) => {
                enforcement_events::encode_rate(event, &self.roles, &self.decisions, &host.table, batch);
                Encoded::Event
            }
            Record::EnforceExec { event, path } => {
                enforcement_events::encode_exec(event, path, &self.roles, &self.decisions, &host.table, batch);
                Encoded::Event
            }
            Record::EnforceFile { event, path } => {
                enforcement_events::encode_file(event, path, &self.roles, &self.decisions, &host.table, batch);
                Encoded::Event
            }
            Record::Unknown(h) => Encoded::UnknownKind(h.kind),
            Record::FileOpen { event, path } => {
                if let Some(gpu) = &mut self.followers.gpu {
                    if event.result >= 0 {
                        gpu.file_opened(h.pid, &path.to_path());
                    }
                }
                self.activity(record, batch)
            }
            Record::FileUnlink { .. }
            | Record::FileRename { .. }
            | Record::NetConnect(_)
            | Record::NetClose(_)
            | Record::UnixConnect { .. }
            | Record::Dns { .. }
            | Record::Shm(_) => self.activity(record, batch),
        }
    }

    /// A process record: its event, and the table kept current.
    fn process(&mut self, record: &Record<'_>, batch: &mut BatchBuilder) -> Encoded {
        kernel_events::encode_record(record, &mut self.host.table, batch, self.exited_ttl_ns)
    }

    /// Tells the followers of a process's change: the one place they hear of it.
    fn process_changed(&mut self, change: Change, process: ProcessAt, batch: &mut BatchBuilder) {
        let mut host = self.host.hooks_view(batch);
        for follower in self.followers.iter_mut() {
            match change {
                Change::Started { seeded } => follower.started(process, seeded, &mut host),
                Change::Forked => follower.forked(process, &mut host),
                Change::Exited { start_ns } => follower.exited(process, start_ns),
            }
        }
    }

    fn activity(&mut self, record: &Record<'_>, batch: &mut BatchBuilder) -> Encoded {
        let mut activity = Activity {
            table: &self.host.table,
            paths: &mut self.host.paths,
            dns: &mut self.host.dns,
            intent: self.followers.intent.as_mut(),
            sock_seed: self.host.sock_seed,
        };
        activity_events::encode(&mut activity, record, batch);
        Encoded::Event
    }
}

fn encode_cuda(
    gpu: &mut GpuCapture,
    table: &ProcessTable,
    h: &EventHeader,
    event: &CudaCall,
    batch: &mut BatchBuilder,
) {
    let start_ns = table.get(h.pid).map_or(0, |p| p.start_ns);
    let Some(mut cuda) = gpu.cuda(event, start_ns) else { return };
    cuda.call.function_sid = batch.intern(&cuda.kernel);
    cuda.call.job_sid = batch.intern(&cuda.job);
    let who = table.who(h.pid, h.tid, h.cgroup_id, batch);
    batch.push_by(h.ts_boot_ns, &who, Body::Cuda(cuda.call));
}

/// An NCCL call of a known job goes to that job's batch.
fn encode_nccl(
    gpu: &mut GpuCapture,
    table: &ProcessTable,
    h: &EventHeader,
    event: &NcclCall,
    unique_id: &[u8],
    host_batch: &mut BatchBuilder,
    jobs: &mut JobBatches,
) {
    let start_ns = table.get(h.pid).map_or(0, |p| p.start_ns);
    let Some(mut nccl) = gpu.nccl(event, unique_id, start_ns) else { return };
    let batch = jobs.route(&nccl.job, host_batch);
    nccl.call.job_sid = batch.intern(&nccl.job);
    let who = table.who(h.pid, h.tid, h.cgroup_id, batch);
    batch.push_by(h.ts_boot_ns, &who, Body::Nccl(nccl.call));
}

fn server_name(intent: &mut IntentCapture, h: &EventHeader, event: &TlsSni) {
    let name = plumbline_ebpf::record::c_str(&event.name);
    intent.server_name(h.pid, event.conn_id, &String::from_utf8_lossy(name));
}
