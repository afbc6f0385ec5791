//! GPU capture: CUDA runtime and NCCL calls from the kernel become `CudaCall`
//! and `NcclCall` events carrying the process's device, rank and training
//! job; NCCL calls are placed in their communicator's sequence and kernels
//! are named.
//!
//! The road: [`targets`] recognises libcudart and libnccl, which are hooked
//! (once per file, see [`crate::file_probes`]) wherever processes map them:
//! at start from every process's maps, after an exec, when a process opens
//! one, and on a periodic rescan of every process. Records enter
//! [`GpuCapture::cuda`] and [`GpuCapture::nccl`]; [`process_state`] keeps each
//! process's device and communicators; [`symbols`] names kernels.

pub mod config;
pub mod process_state;
pub mod symbols;
pub mod targets;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use plumbline_ebpf::abi::{self, cuda_api, nccl_op};
use plumbline_proto::v1::{cuda_call, nccl_call, CudaCall, NcclCall};

use crate::{
    file_probes::{AttachFailed, FileProbes, ProbePoint},
    process_hooks::{Host, ProcessAt, ProcessHooks},
};
use config::GpuConfig;
use process_state::{comm_id_hash, GpuProcess};
use symbols::KernelSymbols;
use targets::GpuTarget;

/// How long after an exec a process's memory maps are read again, for the
/// libraries it loaded while starting.
const RESCAN_AFTER_NS: u64 = 1_000_000_000;
/// How long an exited process's state stays: rings are read one after the
/// other, so its last calls can arrive after its exit.
const EXIT_GRACE_NS: u64 = 2_000_000_000;
/// cudaErrorInvalidDevice: cudaSetDevice refused the ordinal, the previous
/// device stays. Any other failure (no driver, say) leaves the process set on
/// the device it asked for.
const CUDA_ERROR_INVALID_DEVICE: i32 = 101;

/// Counters of what GPU capture did, for metrics and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct GpuCounts {
    pub cuda_calls: u64,
    pub nccl_calls: u64,
    /// NCCL calls on a communicator whose creation the agent did not see.
    pub nccl_unknown_communicator: u64,
    /// Kernel launches whose function could not be named.
    pub kernels_unnamed: u64,
    /// libcudart and libnccl files hooked.
    pub libraries_hooked: u64,
}

/// A CUDA call to add, with the strings its batch interns.
#[derive(Debug, Clone, PartialEq)]
pub struct CudaEvent {
    pub call: CudaCall,
    pub kernel: String,
    pub job: String,
}

/// An NCCL call to add: it goes to its communicator's batch
/// (`call.comm_id_hash`), or the host's when that is 0.
#[derive(Debug, Clone, PartialEq)]
pub struct NcclEvent {
    pub call: NcclCall,
    pub job: String,
}

pub struct GpuCapture {
    config: GpuConfig,
    /// None when the object is not loaded (tests of the state alone).
    probes: Option<FileProbes<Vec<&'static str>>>,
    symbols: KernelSymbols,
    processes: HashMap<u32, GpuProcess>,
    /// Processes whose maps are read again at the given time.
    rescans: Vec<(u32, u64)>,
    last_full_scan_ns: u64,
    /// Processes that exited: (pid, start, exit time).
    exited: Vec<(u32, u64, u64)>,
    pub counts: GpuCounts,
}

impl GpuCapture {
    pub fn new(config: GpuConfig, probes: Option<FileProbes<Vec<&'static str>>>, now_ns: u64) -> Self {
        let mut gpu = Self {
            config,
            probes,
            symbols: KernelSymbols::default(),
            processes: HashMap::new(),
            rescans: Vec::new(),
            last_full_scan_ns: now_ns,
            exited: Vec::new(),
            counts: GpuCounts::default(),
        };
        for path in gpu.config.preload.clone() {
            if !gpu.examine(&path) {
                tracing::warn!(path = %path.display(), "preloaded file is neither libcudart nor libnccl, or could not be hooked");
            }
        }
        gpu
    }

    /// Examines a file (once) and hooks it when it is libcudart or libnccl.
    /// True when it is hooked.
    fn examine(&mut self, path: &Path) -> bool {
        let Some(probes) = &mut self.probes else { return false };
        let mut first_look = false;
        let examined = probes.examine(path, |path| {
            first_look = true;
            inspect(path)
        });
        match examined {
            Some(Ok(libraries)) if !libraries.is_empty() => {
                if first_look {
                    self.counts.libraries_hooked += 1;
                    tracing::info!(path = %path.display(), ?libraries, "GPU library hooked");
                }
                true
            }
            Some(Err(AttachFailed { what, error })) => {
                // Not remembered: the next process with this file tries again.
                tracing::warn!(path = %path.display(), libraries = ?what, error = format!("{error:#}"), "GPU library not hooked");
                false
            }
            _ => false,
        }
    }

    /// Hooks the GPU libraries `pid` maps; true when it maps one.
    fn scan_maps(&mut self, pid: u32) -> bool {
        let mut found = false;
        for file in crate::file_probes::mapped_executables(pid) {
            if targets::is_candidate(&file) {
                found |= self.examine(&file);
            }
        }
        if found {
            self.symbols.remember_maps(pid);
        }
        found
    }

    /// A process started (exec) or was found running (`seeded`).
    pub fn process_started(&mut self, pid: u32, now_ns: u64, seeded: bool) {
        if seeded {
            self.scan_maps(pid);
        } else {
            // A new image: what the pid held before is gone.
            self.processes.remove(&pid);
            self.symbols.forget(pid);
            self.rescans.push((pid, now_ns + RESCAN_AFTER_NS));
        }
    }

    /// A process opened `path` (as it names it): a GPU library it is about to
    /// map is hooked before its first call, if the agent is quick enough.
    pub fn file_opened(&mut self, pid: u32, path: &str) {
        let path = Path::new(path);
        if !targets::is_candidate(path) {
            return;
        }
        let seen_from_process = PathBuf::from(format!("/proc/{pid}/root{}", path.display()));
        if !self.examine(&seen_from_process) {
            self.examine(path);
        }
        self.symbols.remember_maps(pid);
    }

    pub fn process_exited(&mut self, pid: u32, start_ns: u64, now_ns: u64) {
        self.exited.push((pid, start_ns, now_ns));
    }

    /// Periodic work: maps of new processes read again, every process's
    /// maps read on the rescan interval, exited processes forgotten.
    pub fn tick(&mut self, now_ns: u64) {
        let due: Vec<u32> = self.rescans.iter().filter(|(_, at)| *at <= now_ns).map(|(pid, _)| *pid).collect();
        self.rescans.retain(|(_, at)| *at > now_ns);
        for pid in due {
            self.scan_maps(pid);
        }
        if now_ns.saturating_sub(self.last_full_scan_ns) >= self.config.rescan_interval_ms * 1_000_000 {
            self.last_full_scan_ns = now_ns;
            for pid in all_pids() {
                self.scan_maps(pid);
            }
        }
        let over: Vec<(u32, u64)> =
            self.exited.iter().filter(|(.., at)| at + EXIT_GRACE_NS <= now_ns).map(|&(p, s, _)| (p, s)).collect();
        self.exited.retain(|(.., at)| at + EXIT_GRACE_NS > now_ns);
        for (pid, start_ns) in over {
            if self.processes.get(&pid).is_some_and(|p| p.start_ns == start_ns) {
                self.processes.remove(&pid);
            }
            self.symbols.forget(pid);
        }
    }

    /// The jobs of the live processes here that are ranks of one, sorted.
    pub fn live_jobs(&self) -> Vec<String> {
        let mut jobs: Vec<String> = self.processes.values().filter(|p| p.is_rank()).map(GpuProcess::job).collect();
        jobs.sort_unstable();
        jobs.dedup();
        jobs.retain(|job| !job.is_empty());
        jobs
    }

    /// A CUDA call; None for cudaSetDevice, which only changes the
    /// process's device, and for a call this agent does not know.
    pub fn cuda(&mut self, event: &abi::CudaCall, start_ns: u64) -> Option<CudaEvent> {
        let pid = event.hdr.pid;
        let process = process(&mut self.processes, pid, start_ns);
        if event.api == cuda_api::SET_DEVICE {
            if event.result != CUDA_ERROR_INVALID_DEVICE {
                process.device = event.device;
            }
            return None;
        }
        let api = cuda_call::Api::try_from(i32::from(event.api)).ok().filter(|a| *a != cuda_call::Api::Unspecified)?;
        let (device, rank, job) = (process.device, process.rank(), process.job());
        let launch = matches!(api, cuda_call::Api::LaunchKernel | cuda_call::Api::LaunchKernelEx);
        let kernel = if launch { self.symbols.name(pid, event.handle) } else { None };
        self.counts.cuda_calls += 1;
        if launch && kernel.is_none() {
            self.counts.kernels_unnamed += 1;
        }
        let memcpy = matches!(api, cuda_call::Api::Memcpy | cuda_call::Api::MemcpyAsync);
        let call = CudaCall {
            api: api as i32,
            function_sid: 0,
            grid_x: event.grid[0],
            grid_y: event.grid[1],
            grid_z: event.grid[2],
            block_x: event.block[0],
            block_y: event.block[1],
            block_z: event.block[2],
            stream: event.stream,
            bytes: event.bytes,
            result: event.result,
            duration_ns: event.duration_ns,
            device,
            memcpy_kind: if memcpy { event.memcpy_kind } else { 0 },
            rank,
            job_sid: 0,
            handle: if launch || api == cuda_call::Api::GraphLaunch { event.handle } else { 0 },
        };
        Some(CudaEvent { call, kernel: kernel.unwrap_or_default(), job })
    }

    /// An NCCL call, placed in its communicator. A communicator init carries
    /// the ncclUniqueId it was given (`unique_id`).
    pub fn nccl(&mut self, event: &abi::NcclCall, unique_id: &[u8], start_ns: u64) -> Option<NcclEvent> {
        let op = nccl_call::Op::try_from(i32::from(event.op)).ok().filter(|o| *o != nccl_call::Op::Unspecified)?;
        let process = process(&mut self.processes, event.hdr.pid, start_ns);
        let mut call = NcclCall {
            op: op as i32,
            comm_handle: event.comm,
            rank: -1,
            nranks: -1,
            count: event.count,
            datatype: event.datatype,
            reduce_op: event.reduce_op,
            peer: event.peer,
            stream: event.stream,
            result: event.result,
            duration_ns: event.duration_ns,
            device: process.device,
            global_rank: Some(process.global_rank()).filter(|r| *r >= 0),
            world_size: Some(process.world_size()).filter(|s| *s > 0),
            ..NcclCall::default()
        };
        let mut known = true;
        match event.op {
            nccl_op::COMM_INIT => {
                let id = if unique_id.len() == abi::NCCL_ID_BYTES { comm_id_hash(unique_id) } else { 0 };
                process.joined(event.comm, id, event.rank, event.nranks);
                (call.comm_id_hash, call.rank, call.nranks) = (id, event.rank, event.nranks);
                known = id != 0;
            }
            nccl_op::COMM_SPLIT => {
                let split = process.split(event.parent_comm, event.color, event.comm);
                if let Some(s) = split {
                    (call.comm_id_hash, call.parent_comm_id_hash) = (s.id_hash, s.parent_id_hash);
                    (call.rank, call.nranks, call.seq) = (s.parent_rank, s.parent_nranks, s.nth);
                }
                call.color = event.color;
                known = split.is_some();
            }
            nccl_op::COMM_DESTROY => match process.communicators.remove(&event.comm) {
                Some(comm) => (call.comm_id_hash, call.rank, call.nranks) = (comm.id_hash, comm.rank, comm.nranks),
                None => known = false,
            },
            nccl_op::GROUP_START | nccl_op::GROUP_END => {}
            op => match process.collective(event.comm, matches!(op, nccl_op::SEND | nccl_op::RECV)) {
                Some((comm, seq)) => {
                    (call.comm_id_hash, call.rank, call.nranks, call.seq) = (comm.id_hash, comm.rank, comm.nranks, seq)
                }
                None => known = false,
            },
        }
        self.counts.nccl_calls += 1;
        if !known {
            self.counts.nccl_unknown_communicator += 1;
        }
        Some(NcclEvent { call, job: process.job() })
    }
}

impl ProcessHooks for GpuCapture {
    fn started(&mut self, at: ProcessAt, seeded: bool, _host: &mut Host<'_>) {
        self.process_started(at.pid, at.ts_ns, seeded);
    }

    fn exited(&mut self, at: ProcessAt, start_ns: u64) {
        self.process_exited(at.pid, start_ns, at.ts_ns);
    }

    fn tick(&mut self, now_ns: u64, _host: &mut Host<'_>) {
        GpuCapture::tick(self, now_ns);
    }
}

/// The state of `pid`, new when it was not known or the pid was reused.
fn process(processes: &mut HashMap<u32, GpuProcess>, pid: u32, start_ns: u64) -> &mut GpuProcess {
    let process = processes.entry(pid).or_insert_with(|| GpuProcess::new(start_ns));
    if process.start_ns != start_ns && start_ns != 0 {
        *process = GpuProcess::new(start_ns);
    }
    process.read_environment(pid);
    process
}

/// What a file holds, and the probes that hook it.
fn inspect(path: &Path) -> (Vec<&'static str>, Vec<ProbePoint>) {
    match targets::examine(path) {
        Ok(GpuTarget::Hookable { libraries, probes }) => (libraries, probes),
        Ok(GpuTarget::None) | Err(_) => (Vec::new(), Vec::new()),
    }
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable;

    use super::*;

    fn capture() -> GpuCapture {
        GpuCapture::new(GpuConfig::default(), None, 0)
    }

    fn cuda(api: u16) -> abi::CudaCall {
        let mut event = abi::CudaCall::zeroed();
        event.hdr.pid = std::process::id();
        event.api = api;
        event.device = -1;
        event
    }

    fn nccl(op: u16, comm: u64) -> abi::NcclCall {
        let mut event = abi::NcclCall::zeroed();
        event.hdr.pid = std::process::id();
        (event.op, event.comm, event.rank, event.nranks, event.peer) = (op, comm, -1, -1, -1);
        event
    }

    #[test]
    fn the_abi_numbers_calls_as_the_proto_does() {
        use cuda_call::Api;
        for (abi, proto) in [
            (cuda_api::LAUNCH_KERNEL, Api::LaunchKernel),
            (cuda_api::MEMCPY, Api::Memcpy),
            (cuda_api::MEMCPY_ASYNC, Api::MemcpyAsync),
            (cuda_api::MALLOC, Api::Malloc),
            (cuda_api::FREE, Api::Free),
            (cuda_api::STREAM_SYNCHRONIZE, Api::StreamSynchronize),
            (cuda_api::DEVICE_SYNCHRONIZE, Api::DeviceSynchronize),
            (cuda_api::LAUNCH_KERNEL_EX, Api::LaunchKernelEx),
            (cuda_api::GRAPH_LAUNCH, Api::GraphLaunch),
        ] {
            assert_eq!(i32::from(abi), proto as i32, "{proto:?}");
        }
        use nccl_call::Op;
        for (abi, proto) in [
            (nccl_op::COMM_INIT, Op::CommInit),
            (nccl_op::ALL_REDUCE, Op::AllReduce),
            (nccl_op::ALL_GATHER, Op::AllGather),
            (nccl_op::REDUCE_SCATTER, Op::ReduceScatter),
            (nccl_op::BROADCAST, Op::Broadcast),
            (nccl_op::REDUCE, Op::Reduce),
            (nccl_op::SEND, Op::Send),
            (nccl_op::RECV, Op::Recv),
            (nccl_op::GROUP_START, Op::GroupStart),
            (nccl_op::GROUP_END, Op::GroupEnd),
            (nccl_op::COMM_SPLIT, Op::CommSplit),
            (nccl_op::COMM_DESTROY, Op::CommDestroy),
        ] {
            assert_eq!(i32::from(abi), proto as i32, "{proto:?}");
        }
    }

    #[test]
    fn calls_carry_the_device_set_before_them_and_a_refused_ordinal_is_not_taken() {
        let mut gpu = capture();
        let mut set = cuda(cuda_api::SET_DEVICE);
        (set.device, set.result) = (3, 35);
        assert_eq!(gpu.cuda(&set, 7), None, "cudaSetDevice is no event of its own");
        let mut malloc = cuda(cuda_api::MALLOC);
        malloc.bytes = 1 << 20;
        let event = gpu.cuda(&malloc, 7).unwrap();
        assert_eq!((event.call.device, event.call.bytes, event.call.rank), (3, 1 << 20, -1));
        (set.device, set.result) = (99, CUDA_ERROR_INVALID_DEVICE);
        gpu.cuda(&set, 7);
        assert_eq!(gpu.cuda(&malloc, 7).unwrap().call.device, 3);
        // The pid reused by another process starts over.
        assert_eq!(gpu.cuda(&malloc, 8).unwrap().call.device, -1);
    }

    #[test]
    fn collectives_are_sequenced_on_the_communicator_their_init_named() {
        let mut gpu = capture();
        let id: Vec<u8> = (0..128u8).collect();
        let mut init = nccl(nccl_op::COMM_INIT, 0x5000);
        (init.rank, init.nranks) = (2, 4);
        let event = gpu.nccl(&init, &id, 7).unwrap();
        let hash = xxhash_rust::xxh3::xxh3_64(&id) & (u64::MAX >> 1);
        assert_eq!((event.call.comm_id_hash, event.call.rank, event.call.nranks), (hash, 2, 4));
        let all_reduce = nccl(nccl_op::ALL_REDUCE, 0x5000);
        let seqs: Vec<u64> = (0..3).map(|_| gpu.nccl(&all_reduce, &[], 7).unwrap().call.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        let send = gpu.nccl(&nccl(nccl_op::SEND, 0x5000), &[], 7).unwrap();
        assert_eq!((send.call.comm_id_hash, send.call.rank, send.call.nranks, send.call.seq), (hash, 2, 4, 0));
        let after = gpu.nccl(&all_reduce, &[], 7).unwrap();
        assert_eq!(after.call.seq, 3, "sends and receives do not shift the collectives' sequence");
        let group = gpu.nccl(&nccl(nccl_op::GROUP_START, 0), &[], 7).unwrap();
        assert_eq!(group.call.comm_id_hash, 0, "a group call belongs to no communicator");

        let cuda_event = gpu.cuda(&cuda(cuda_api::DEVICE_SYNCHRONIZE), 7).unwrap();
        assert_eq!(cuda_event.call.rank, 2, "CUDA calls carry the process's rank");

        let unknown = gpu.nccl(&nccl(nccl_op::ALL_REDUCE, 0), &[], 7).unwrap();
        assert_eq!((unknown.call.comm_id_hash, unknown.call.rank, unknown.call.seq), (0, -1, 0));
        assert_eq!(gpu.counts.nccl_unknown_communicator, 1);

        let destroy = gpu.nccl(&nccl(nccl_op::COMM_DESTROY, 0x5000), &[], 7).unwrap();
        assert_eq!(destroy.call.comm_id_hash, hash);
        assert_eq!(gpu.nccl(&all_reduce, &[], 7).unwrap().call.comm_id_hash, 0, "destroyed");
    }

    #[test]
    fn a_process_that_tried_to_join_a_communicator_keeps_its_job_live_until_it_is_forgotten() {
        let mut gpu = capture();
        assert!(gpu.live_jobs().is_empty());
        let id = [5u8; 128];
        let mut init = nccl(nccl_op::COMM_INIT, 0);
        (init.rank, init.nranks, init.result) = (0, 2, 1);
        let job = gpu.nccl(&init, &id, 7).unwrap().job;
        assert_eq!(gpu.live_jobs(), [job]);
        gpu.process_exited(std::process::id(), 7, 0);
        gpu.tick(EXIT_GRACE_NS);
        assert!(gpu.live_jobs().is_empty());
    }

    #[test]
    fn a_failed_init_names_its_communicator_but_registers_no_handle() {
        let mut gpu = capture();
        let id = [7u8; 128];
        let mut init = nccl(nccl_op::COMM_INIT, 0);
        (init.rank, init.nranks, init.result) = (2, 4, 1);
        let event = gpu.nccl(&init, &id, 7).unwrap();
        assert_eq!(event.call.comm_id_hash, xxhash_rust::xxh3::xxh3_64(&id) & (u64::MAX >> 1));
        assert_eq!((event.call.result, event.call.comm_handle), (1, 0));
        let all_reduce = gpu.nccl(&nccl(nccl_op::ALL_REDUCE, 0), &[], 7).unwrap();
        assert_eq!((all_reduce.call.comm_id_hash, all_reduce.call.rank), (0, -1));
    }

    #[test]
    fn a_split_is_named_after_its_parent_color_and_order() {
        let mut gpu = capture();
        let id = [9u8; 128];
        let mut init = nccl(nccl_op::COMM_INIT, 0x10);
        (init.rank, init.nranks) = (0, 8);
        let parent = gpu.nccl(&init, &id, 7).unwrap().call.comm_id_hash;
        let mut split = nccl(nccl_op::COMM_SPLIT, 0x20);
        (split.parent_comm, split.color, split.peer) = (0x10, 1, 5);
        let event = gpu.nccl(&split, &[], 7).unwrap();
        assert_eq!(event.call.parent_comm_id_hash, parent);
        assert_eq!((event.call.color, event.call.peer), (1, 5), "the color and the key");
        assert_eq!((event.call.rank, event.call.nranks, event.call.seq), (0, 8, 0), "the caller in the parent");
        assert_eq!(event.call.comm_id_hash, process_state::split_id_hash(parent, 1, 0));
        let on_split = gpu.nccl(&nccl(nccl_op::ALL_GATHER, 0x20), &[], 7).unwrap();
        assert_eq!(
            (on_split.call.comm_id_hash, on_split.call.rank, on_split.call.seq),
            (event.call.comm_id_hash, -1, 0)
        );
    }
}
