//! Everything the agent keeps to turn records into events: the process table
//! (who), the path and DNS memories (what things were called), and which
//! cgroups were already described.

use plumbline_ebpf::record::Record;
use plumbline_proto::{v1::event::Body, BatchBuilder, Who};

use crate::{
    activity_events::{self, Activity},
    batches::JobBatches,
    containers::ContainerAnnouncer,
    dns::DnsTracker,
    file_paths::PathCache,
    gpu::GpuCapture,
    intent::IntentCapture,
    kernel_events,
    kernel_events::Encoded,
    process_table::ProcessTable,
};

pub struct Encoder {
    pub table: ProcessTable,
    pub paths: PathCache,
    pub dns: DnsTracker,
    pub containers: ContainerAnnouncer,
    /// TLS plaintext into LLM calls; `None` when TLS capture is off.
    pub intent: Option<IntentCapture>,
    /// CUDA and NCCL calls; `None` when GPU capture is off.
    pub gpu: Option<GpuCapture>,
    /// Keyed hash for socket ids: kernel addresses stay on the node.
    sock_seed: u64,
    exited_ttl_ns: u64,
}

impl Encoder {
    pub fn new(exited_ttl_ns: u64) -> Self {
        Self {
            table: ProcessTable::default(),
            paths: PathCache::default(),
            dns: DnsTracker::default(),
            containers: ContainerAnnouncer::default(),
            intent: None,
            gpu: None,
            sock_seed: uuid::Uuid::new_v4().as_u64_pair().0,
            exited_ttl_ns,
        }
    }

    /// Adds the event(s) `record` describes to `batch`, or an NCCL call of a
    /// known job to that job's batch. Every kind of record is named: a new
    /// one does not compile until it is handled here.
    pub fn record(&mut self, record: &Record<'_>, batch: &mut BatchBuilder, comms: &mut JobBatches) -> Encoded {
        let h = *record.header();
        self.containers.announce(h.cgroup_id, h.pid, h.ts_boot_ns, batch);
        match record {
            Record::ProcExec { .. } | Record::ProcFork(_) | Record::ProcExit(_) | Record::ProcExecFailed { .. } => {
                let encoded = kernel_events::encode_record(record, &mut self.table, batch, self.exited_ttl_ns);
                self.process_intent(record, batch);
                self.process_gpu(record);
                encoded
            }
            Record::Cuda(event) => {
                let start_ns = self.table.get(h.pid).map_or(0, |p| p.start_ns);
                let Some(gpu) = &mut self.gpu else { return Encoded::Event };
                let Some(mut cuda) = gpu.cuda(event, start_ns) else { return Encoded::Event };
                cuda.call.function_sid = batch.intern(&cuda.kernel);
                cuda.call.job_sid = batch.intern(&cuda.job);
                let who = self.table.who(h.pid, h.tid, h.cgroup_id, batch);
                batch.push_by(h.ts_boot_ns, &who, Body::Cuda(cuda.call));
                Encoded::Event
            }
            Record::Nccl { event, unique_id } => {
                let start_ns = self.table.get(h.pid).map_or(0, |p| p.start_ns);
                let Some(gpu) = &mut self.gpu else { return Encoded::Event };
                let Some(mut nccl) = gpu.nccl(event, unique_id, start_ns) else { return Encoded::Event };
                let batch = comms.route(&nccl.job, batch);
                nccl.call.job_sid = batch.intern(&nccl.job);
                let who = self.table.who(h.pid, h.tid, h.cgroup_id, batch);
                batch.push_by(h.ts_boot_ns, &who, Body::Nccl(nccl.call));
                Encoded::Event
            }
            Record::TlsData { event, data } => {
                let who = self.table.who(h.pid, h.tid, h.cgroup_id, batch);
                if let Some(intent) = &mut self.intent {
                    let dns = &self.dns;
                    let name =
                        |addr: std::net::SocketAddr| dns.name_for(h.pid, addr.ip(), h.ts_boot_ns).map(str::to_string);
                    intent.tls_data(event, data, &who, name, &self.table, batch);
                }
                Encoded::Event
            }
            Record::TlsSni(event) => {
                if let Some(intent) = &mut self.intent {
                    let name = plumbline_ebpf::record::c_str(&event.name);
                    intent.server_name(h.pid, event.conn_id, &String::from_utf8_lossy(name));
                }
                Encoded::Event
            }
            Record::Unknown(h) => Encoded::UnknownKind(h.kind),
            Record::FileOpen { .. }
            | Record::FileUnlink { .. }
            | Record::FileRename { .. }
            | Record::NetConnect(_)
            | Record::NetClose(_)
            | Record::UnixConnect { .. }
            | Record::Dns { .. }
            | Record::Shm(_) => {
                if let (Record::FileOpen { event, path }, Some(gpu)) = (record, &mut self.gpu) {
                    if event.result >= 0 {
                        gpu.file_opened(h.pid, &path.to_path());
                    }
                }
                let mut activity = Activity {
                    table: &self.table,
                    paths: &mut self.paths,
                    dns: &mut self.dns,
                    intent: self.intent.as_mut(),
                    sock_seed: self.sock_seed,
                };
                activity_events::encode(&mut activity, record, batch);
                Encoded::Event
            }
        }
    }

    /// Tells GPU capture about a process that started or exited.
    fn process_gpu(&mut self, record: &Record<'_>) {
        let Some(gpu) = &mut self.gpu else { return };
        let h = record.header();
        match record {
            Record::ProcExec { .. } => gpu.process_started(h.pid, h.ts_boot_ns, false),
            Record::ProcExit(event) => gpu.process_exited(h.pid, event.start_boot_ns, h.ts_boot_ns),
            _ => {}
        }
    }

    /// Tells intent capture about a process that started, forked or exited.
    fn process_intent(&mut self, record: &Record<'_>, batch: &mut BatchBuilder) {
        if self.intent.is_none() {
            return;
        }
        let h = *record.header();
        match record {
            Record::ProcExec { .. } | Record::ProcFork(_) => {
                let who = self.table.who(h.pid, h.tid, h.cgroup_id, batch);
                let Some(intent) = &mut self.intent else { return };
                let Some(process) = self.table.get(h.pid).cloned() else { return };
                let identity = self.containers.identity(process.cgroup_id, process.pid);
                if matches!(record, Record::ProcExec { .. }) {
                    intent.process_started(&process, identity, &who, h.ts_boot_ns, false, batch);
                } else {
                    intent.process_forked(&process, identity, &who, h.ts_boot_ns, batch);
                }
            }
            Record::ProcExit(event) => {
                if let Some(intent) = &mut self.intent {
                    intent.process_exited(h.pid, event.start_boot_ns, h.ts_boot_ns);
                }
            }
            _ => {}
        }
    }

    /// Intent capture's periodic work.
    pub fn intent_tick(&mut self, now_ns: u64, batch: &mut BatchBuilder) {
        let Some(mut intent) = self.intent.take() else { return };
        let containers = std::cell::RefCell::new(&mut self.containers);
        let table = &self.table;
        let dns = &self.dns;
        intent.tick(
            now_ns,
            table,
            |p| containers.borrow_mut().identity(p.cgroup_id, p.pid),
            |pid, batch| {
                let known = table.get(pid);
                Who {
                    pid,
                    tid: pid,
                    cgroup_id: known.map_or(0, |p| p.cgroup_id),
                    comm_sid: batch.intern(known.map_or("", |p| p.comm.as_str())),
                    process_start_ns: known.map_or(0, |p| p.start_ns),
                }
            },
            |pid, addr| dns.name_for(pid, addr.ip(), now_ns).map(str::to_string),
            batch,
        );
        self.intent = Some(intent);
    }
}
