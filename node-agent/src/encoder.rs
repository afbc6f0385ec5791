//! Everything the agent keeps to turn records into events: the process table
//! (who), the path and DNS memories (what things were called), and which
//! cgroups were already described.

use plumbline_ebpf::record::Record;
use plumbline_proto::{BatchBuilder, Who};

use crate::{
    activity_events, containers::ContainerAnnouncer, dns::DnsTracker, file_paths::PathCache, kernel_events,
    kernel_events::Encoded, process_table::ProcessTable,
};

pub struct Encoder {
    pub table: ProcessTable,
    pub paths: PathCache,
    pub dns: DnsTracker,
    pub containers: ContainerAnnouncer,
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
            sock_seed: uuid::Uuid::new_v4().as_u64_pair().0,
            exited_ttl_ns,
        }
    }

    /// Adds the event(s) `record` describes to `batch`.
    pub fn record(&mut self, record: &Record<'_>, batch: &mut BatchBuilder) -> Encoded {
        let h = *record.header();
        self.containers.announce(h.cgroup_id, h.pid, h.ts_boot_ns, batch);
        match record {
            Record::ProcExec { .. } | Record::ProcFork(_) | Record::ProcExit(_) | Record::ProcExecFailed { .. } => {
                kernel_events::encode_record(record, &mut self.table, batch, self.exited_ttl_ns)
            }
            Record::Unknown(h) => Encoded::UnknownKind(h.kind),
            _ => {
                activity_events::encode(self, record, batch);
                Encoded::Event
            }
        }
    }

    /// Who `pid` is, from the process table; `cgroup_id` 0 takes the
    /// process's own.
    pub fn who(&mut self, pid: u32, tid: u32, cgroup_id: u64, batch: &mut BatchBuilder) -> Who {
        let known = self.table.get(pid);
        let cgroup_id = if cgroup_id != 0 { cgroup_id } else { known.map_or(0, |p| p.cgroup_id) };
        let comm_sid = batch.intern(known.map_or("", |p| p.comm.as_str()));
        let process_start_ns = known.map_or(0, |p| p.start_ns);
        Who { pid, tid, cgroup_id, comm_sid, process_start_ns }
    }

    /// A socket's id on this node: the kernel's pointer, hashed with a key of
    /// this run, kept below 2^63.
    pub fn sock_id(&self, raw: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(&raw.to_le_bytes(), self.sock_seed) & (u64::MAX >> 1)
    }
}
