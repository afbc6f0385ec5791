//! Loads Plumbline's BPF objects with aya and attaches their programs.
//!
//! The tracing programs are tracepoints, classic (`tracepoint/`) or BTF-typed
//! (`tp_btf/`), neither of which needs a BPF trampoline, so they load on
//! kernels that refuse fentry/LSM programs; CO-RE relocations fit their reads
//! to the running kernel. DNS is read by cgroup programs on the cgroup v2
//! root. Before loading, each object gets its settings (wake-up threshold,
//! filter flags, ...) and afterwards its filter maps are filled.

use std::{fs::File, path::Path};

use aya::{
    maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, RingBuf},
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr, Lsm, TracePoint,
        UProbe,
    },
    Btf, Ebpf, EbpfLoader,
};
use plumbline_ebpf::{abi, BpfObject};

use crate::{config::CaptureConfig, enforce::tier::Tier, filters::Filters};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Object(#[from] plumbline_ebpf::ObjectError),
    #[error("the kernel has no BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF is needed for CO-RE)")]
    Btf(#[source] aya::BtfError),
    #[error("loading BPF object `{object}` failed (are we root?)")]
    Load {
        object: &'static str,
        #[source]
        source: aya::EbpfError,
    },
    #[error("BPF program `{program}` could not be loaded or attached to {target}")]
    Program {
        program: &'static str,
        target: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("BPF program `{program}` is not in its object: the object and this agent disagree")]
    MissingProgram { program: &'static str },
    #[error("BPF object `{object}` has no map `{map}`")]
    MissingMap { object: &'static str, map: &'static str },
    #[error("BPF map `{map}` has an unexpected type or refused an entry")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {0}")]
    Tracefs(std::io::Error),
}

/// Where a program attaches.
#[derive(Debug, Clone, Copy)]
pub enum Attach {
    /// `tp_btf/<name>`
    BtfTracepoint(&'static str),
    /// `tracepoint/<category>/<name>`
    Tracepoint(&'static str, &'static str),
    /// `cgroup_skb/{ingress,egress}` on the cgroup v2 root.
    CgroupSkb(CgroupSkbAttachType),
    /// `cgroup/sock_create` on the cgroup v2 root.
    CgroupSock,
    /// `cgroup/connect4|6`, `cgroup/sendmsg4|6` (the section names the hook)
    /// on the cgroup v2 root.
    CgroupSockAddr,
    /// `uprobe`/`uretprobe`: loaded now, attached later to each file that
    /// holds the library (see `file_probes`).
    Uprobe,
    /// `lsm/<hook>`: a BPF LSM program (needs `bpf` among the kernel's LSMs).
    Lsm(&'static str),
}

/// One object, declared once: its ring buffer (if it has one), the
/// settings it takes before loading, the maps the agent sweeps, its
/// programs, and who attaches its uprobes.
pub struct ObjectSpec {
    pub object: BpfObject,
    pub ring: Option<Ring>,
    /// Set in `.rodata` before loading, besides the settings every object takes.
    pub globals: &'static [Global],
    /// Maps of totals the agent reads periodically.
    pub sweeps: &'static [SweepMap],
    pub programs: &'static [(&'static str, Attach)],
    /// `None`: every program is attached at load. Otherwise its uprobes are
    /// attached to each file that holds these libraries, as such files are found.
    pub libraries: Option<Libraries>,
    /// Holds the workload policy's maps (see `enforce::kernel`) and
    /// enforces it at this tier.
    pub enforces: Option<Tier>,
}

/// An object's ring buffer: its map and the setting that sizes it.
pub struct Ring {
    pub map: &'static str,
    pub kib: fn(&CaptureConfig) -> u32,
}

/// A setting of one object, written to its `.rodata` before it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `plb_open_window_ns`: repeated opens of a file within it are counted, not sent.
    OpenWindowNs,
    /// `plb_dns_port`: the port whose UDP packets are read as DNS.
    DnsPort,
    /// `plb_tls_max_bytes`: plaintext copied per TLS call at most.
    TlsMaxBytes,
}

impl Global {
    /// Its name in the object and its value there (the bytes the loader writes).
    fn value(self, capture: &CaptureConfig) -> (&'static str, Vec<u8>) {
        match self {
            Global::OpenWindowNs => {
                ("plb_open_window_ns", (capture.open_collapse_ms * 1_000_000).to_ne_bytes().to_vec())
            }
            Global::DnsPort => ("plb_dns_port", capture.dns_port.to_ne_bytes().to_vec()),
            Global::TlsMaxBytes => {
                ("plb_tls_max_bytes", (capture.intent.max_capture_kib * 1024).to_ne_bytes().to_vec())
            }
        }
    }
}

/// A map of totals the kernel accumulates and the agent sweeps (see `sweeps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepMap {
    /// `io_stats`: bytes and blocked time per file and IPC channel.
    IoStats,
    /// `open_repeats`: opens folded into an earlier one's count.
    OpenRepeats,
}

impl SweepMap {
    pub fn map(self) -> &'static str {
        match self {
            SweepMap::IoStats => "io_stats",
            SweepMap::OpenRepeats => "open_repeats",
        }
    }
}

/// The libraries an object's uprobes are attached to, each by its own capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libraries {
    /// OpenSSL and Go's crypto/tls (see `intent::attach`).
    Tls,
    /// libcudart and libnccl (see `gpu`).
    Gpu,
}

const fn sys(name: &'static str) -> Attach {
    Attach::Tracepoint("syscalls", name)
}

pub const PROCESS: ObjectSpec = ObjectSpec {
    object: plumbline_ebpf::PROCESS,
    ring: Some(Ring { map: "proc_events", kib: |c| c.ring_buffer_kib }),
    globals: &[],
    sweeps: &[],
    programs: &[
        ("plb_sched_process_exec", Attach::BtfTracepoint("sched_process_exec")),
        ("plb_sched_process_fork", Attach::BtfTracepoint("sched_process_fork")),
        ("plb_sched_process_exit", Attach::BtfTracepoint("sched_process_exit")),
        ("plb_sys_enter_execve", sys("sys_enter_execve")),
        ("plb_sys_enter_execveat", sys("sys_enter_execveat")),
        ("plb_sys_exit_execve", sys("sys_exit_execve")),
        ("plb_sys_exit_execveat", sys("sys_exit_execveat")),
    ],
    libraries: None,
    enforces: None,
};

pub const FILE: ObjectSpec = ObjectSpec {
    object: plumbline_ebpf::FILE,
    ring: Some(Ring { map: "file_events", kib: |c| c.file_ring_kib }),
    globals: &[Global::OpenWindowNs],
    sweeps: &[SweepMap::OpenRepeats],
    programs: &[
        ("plb_exit_open", sys("sys_exit_open")),
        ("plb_exit_creat", sys("sys_exit_creat")),
        ("plb_exit_openat", sys("sys_exit_openat")),
        ("plb_exit_openat2", sys("sys_exit_openat2")),
        ("plb_exit_unlink", sys("sys_exit_unlink")),
        ("plb_exit_unlinkat", sys("sys_exit_unlinkat")),
        ("plb_exit_rmdir", sys("sys_exit_rmdir")),
        ("plb_exit_rename", sys("sys_exit_rename")),
        ("plb_exit_renameat", sys("sys_exit_renameat")),
        ("plb_exit_renameat2", sys("sys_exit_renameat2")),
    ],
    libraries: None,
    enforces: None,
};

pub const IO: ObjectSpec = ObjectSpec {
    object: plumbline_ebpf::IO,
    ring: None,
    globals: &[],
    sweeps: &[SweepMap::IoStats],
    programs: &[
        ("plb_enter_read", sys("sys_enter_read")),
        ("plb_exit_read", sys("sys_exit_read")),
        ("plb_enter_readv", sys("sys_enter_readv")),
        ("plb_exit_readv", sys("sys_exit_readv")),
        ("plb_enter_pread64", sys("sys_enter_pread64")),
        ("plb_exit_pread64", sys("sys_exit_pread64")),
        ("plb_enter_recvfrom", sys("sys_enter_recvfrom")),
        ("plb_exit_recvfrom", sys("sys_exit_recvfrom")),
        ("plb_enter_recvmsg", sys("sys_enter_recvmsg")),
        ("plb_exit_recvmsg", sys("sys_exit_recvmsg")),
        ("plb_enter_write", sys("sys_enter_write")),
        ("plb_exit_write", sys("sys_exit_write")),
        ("plb_enter_writev", sys("sys_enter_writev")),
        ("plb_exit_writev", sys("sys_exit_writev")),
        ("plb_enter_pwrite64", sys("sys_enter_pwrite64")),
        ("plb_exit_pwrite64", sys("sys_exit_pwrite64")),
        ("plb_enter_sendto", sys("sys_enter_sendto")),
        ("plb_exit_sendto", sys("sys_exit_sendto")),
        ("plb_enter_sendmsg", sys("sys_enter_sendmsg")),
        ("plb_exit_sendmsg", sys("sys_exit_sendmsg")),
    ],
    libraries: None,
    enforces: None,
};

pub const NET: ObjectSpec = ObjectSpec {
    object: plumbline_ebpf::NET,
    ring: Some(Ring { map: "net_events", kib: |c| c.net_ring_kib }),
    globals: &[Global::DnsPort],
    sweeps: &[],
    programs: &[
        ("plb_inet_sock_set_state", Attach::Tracepoint("sock", "inet_sock_set_state")),
        ("plb_enter_connect", sys("sys_enter_connect")),
        ("plb_exit_connect", sys("sys_exit_connect")),
        ("plb_enter_accept", sys("sys_enter_accept")),
        ("plb_exit_accept", sys("sys_exit_accept")),
        ("plb_enter_accept4", sys("sys_enter_accept4")),
        ("plb_exit_accept4", sys("sys_exit_accept4")),
        ("plb_sock_create", Attach::CgroupSock),
        ("plb_dns_egress", Attach::CgroupSkb(CgroupSkbAttachType::Egress)),
        ("plb_dns_ingress", Attach::CgroupSkb(CgroupSkbAttachType::Ingress)),
    ],
    libraries: None,
    enforces: None,
};

pub const IPC: ObjectSpec = ObjectSpec {
    object: plumbline_ebpf::IPC,
    ring: Some(Ring { map: "ipc_events", kib: |c| c.ipc_ring_kib }),
    globals: &[],
    sweeps: &[],
    programs: &[
        ("plb_enter_shmget", sys("sys_enter_shmget")),
        ("plb_exit_shmget", sys("sys_exit_shmget")),
        ("plb_enter_shmat", sys("sys_enter_shmat")),
        ("plb_exit_shmat", sys("sys_exit_shmat")),
    ],
    libraries: None,
    enforces: None,
};

pub const TLS: ObjectSpec = ObjectSpec {
    object: plumbline_ebpf::TLS,
    ring: Some(Ring { map: "tls_events", kib: |c| c.intent.ring_kib }),
    globals: &[Global::TlsMaxBytes],
    sweeps: &[],
    programs: &[
        ("plb_ssl_write", Attach::Uprobe),
        ("plb_ssl_read", Attach::Uprobe),
        ("plb_ssl_write_ex", Attach::Uprobe),
        ("plb_ssl_read_ex", Attach::Uprobe),
        ("plb_ssl_return", Attach::Uprobe),
        ("plb_ssl_ctrl", Attach::Uprobe),
        ("plb_go_tls_write", Attach::Uprobe),
        ("plb_go_tls_read", Attach::Uprobe),
        ("plb_go_tls_read_return", Attach::Uprobe),
        ("plb_tls_fd_write", sys("sys_enter_write")),
        ("plb_tls_fd_read", sys("sys_enter_read")),
        ("plb_tls_fd_sendto", sys("sys_enter_sendto")),
        ("plb_tls_fd_recvfrom", sys("sys_enter_recvfrom")),
    ],
    libraries: Some(Libraries::Tls),
    enforces: None,
};

pub const GPU: ObjectSpec = ObjectSpec {
    object: plumbline_ebpf::GPU,
    ring: Some(Ring { map: "gpu_events", kib: |c| c.gpu.ring_kib }),
    globals: &[],
    sweeps: &[],
    programs: &[
        ("plb_cuda_launch_kernel", Attach::Uprobe),
        ("plb_cuda_launch_kernel_ex", Attach::Uprobe),
        ("plb_cuda_graph_launch", Attach::Uprobe),
        ("plb_cuda_memcpy", Attach::Uprobe),
        ("plb_cuda_memcpy_async", Attach::Uprobe),
        ("plb_cuda_malloc", Attach::Uprobe),
        ("plb_cuda_free", Attach::Uprobe),
        ("plb_cuda_stream_synchronize", Attach::Uprobe),
        ("plb_cuda_device_synchronize", Attach::Uprobe),
        ("plb_cuda_set_device", Attach::Uprobe),
        ("plb_cuda_return", Attach::Uprobe),
        ("plb_nccl_all_reduce", Attach::Uprobe),
        ("plb_nccl_reduce_scatter", Attach::Uprobe),
        ("plb_nccl_all_gather", Attach::Uprobe),
        ("plb_nccl_broadcast", Attach::Uprobe),
        ("plb_nccl_reduce", Attach::Uprobe),
        ("plb_nccl_send", Attach::Uprobe),
        ("plb_nccl_recv", Attach::Uprobe),
        ("plb_nccl_group_start", Attach::Uprobe),
        ("plb_nccl_group_end", Attach::Uprobe),
        ("plb_nccl_comm_init_rank", Attach::Uprobe),
        ("plb_nccl_comm_split", Attach::Uprobe),
        ("plb_nccl_comm_destroy", Attach::Uprobe),
        ("plb_nccl_return", Attach::Uprobe),
    ],
    libraries: Some(Libraries::Gpu),
    enforces: None,
};

/// Workload policy (see `enforce`): pods inherited at fork, network decided
/// at connect and unconnected send, DNS answers to enrolled processes read
/// for the host names their roles allow, on every tier; the LLM request
/// rate's uprobes are attached to each OpenSSL file (see `enforce::rate`).
const ENFORCE_COMMON: [(&str, Attach); 11] = [
    ("plb_enforce_fork", Attach::BtfTracepoint("sched_process_fork")),
    ("plb_enforce_exit", Attach::BtfTracepoint("sched_process_exit")),
    ("plb_enforce_connect4", Attach::CgroupSockAddr),
    ("plb_enforce_connect6", Attach::CgroupSockAddr),
    ("plb_enforce_sendmsg4", Attach::CgroupSockAddr),
    ("plb_enforce_sendmsg6", Attach::CgroupSockAddr),
    ("plb_enforce_dns_answer", Attach::CgroupSkb(CgroupSkbAttachType::Ingress)),
    ("plb_enforce_llm_egress", Attach::CgroupSkb(CgroupSkbAttachType::Egress)),
    ("plb_rate_ssl_write", Attach::Uprobe),
    ("plb_rate_ssl_write_ex", Attach::Uprobe),
    ("plb_rate_ssl_ctrl", Attach::Uprobe),
];

/// The common programs, then a tier's own.
const fn enforce_programs<const N: usize, const ALL: usize>(
    tier: [(&'static str, Attach); N],
) -> [(&'static str, Attach); ALL] {
    let mut all = [ENFORCE_COMMON[0]; ALL];
    let mut i = 0;
    while i < ALL {
        all[i] = if i < ENFORCE_COMMON.len() { ENFORCE_COMMON[i] } else { tier[i - ENFORCE_COMMON.len()] };
        i += 1;
    }
    all
}

/// Without BPF LSM: execs and opens the role does not allow kill the
/// process once they succeeded. Loaded only when a policy file is configured.
pub const ENFORCE_FALLBACK: ObjectSpec = ObjectSpec {
    object: plumbline_ebpf::ENFORCE,
    ring: Some(Ring { map: "enforce_events", kib: |_| 256 }),
    globals: &[Global::DnsPort],
    sweeps: &[],
    programs: &enforce_programs::<5, 16>([
        ("plb_enforce_exec", Attach::BtfTracepoint("sched_process_exec")),
        ("plb_enforce_exit_open", Attach::Tracepoint("syscalls", "sys_exit_open")),
        ("plb_enforce_exit_creat", Attach::Tracepoint("syscalls", "sys_exit_creat")),
        ("plb_enforce_exit_openat", Attach::Tracepoint("syscalls", "sys_exit_openat")),
        ("plb_enforce_exit_openat2", Attach::Tracepoint("syscalls", "sys_exit_openat2")),
    ]),
    libraries: None,
    enforces: Some(Tier::Fallback),
};

/// With BPF LSM: execs and file operations the role does not allow are
/// refused before the effect.
pub const ENFORCE_LSM: ObjectSpec = ObjectSpec {
    programs: &enforce_programs::<9, 20>([
        ("plb_lsm_exec", Attach::Lsm("bprm_check_security")),
        ("plb_lsm_file_open", Attach::Lsm("file_open")),
        ("plb_lsm_mknod", Attach::Lsm("path_mknod")),
        ("plb_lsm_mkdir", Attach::Lsm("path_mkdir")),
        ("plb_lsm_symlink", Attach::Lsm("path_symlink")),
        ("plb_lsm_unlink", Attach::Lsm("path_unlink")),
        ("plb_lsm_rmdir", Attach::Lsm("path_rmdir")),
        ("plb_lsm_rename", Attach::Lsm("path_rename")),
        ("plb_lsm_link", Attach::Lsm("path_link")),
    ]),
    enforces: Some(Tier::Lsm),
    ..ENFORCE_FALLBACK
};

/// An object loaded and attached.
pub struct LoadedObject {
    pub spec: &'static ObjectSpec,
    /// Holds the programs and their links: dropping it detaches everything.
    pub ebpf: Ebpf,
    pub ring: Option<RingBuf<MapData>>,
    pub counters: PerCpuArray<MapData, u64>,
}

impl LoadedObject {
    /// Takes one of the object's maps (for the agent to read).
    pub fn take_map(&mut self, map: &'static str) -> Result<Map, ProbeError> {
        self.ebpf.take_map(map).ok_or(ProbeError::MissingMap { object: self.spec.object.name, map })
    }
}

/// The objects `capture` turns on, in the order they are attached.
pub fn enabled(capture: &CaptureConfig) -> Vec<&'static ObjectSpec> {
    let mut objects = vec![&PROCESS];
    if capture.files {
        objects.push(&FILE);
    }
    if capture.files || capture.ipc {
        objects.push(&IO);
    }
    if capture.network {
        objects.push(&NET);
    }
    if capture.ipc {
        objects.push(&IPC);
    }
    if capture.tls {
        objects.push(&TLS);
    }
    if capture.gpu.enabled {
        objects.push(&GPU);
    }
    if capture.enforce.policy_file.is_some() {
        objects.push(if crate::enforce::tier::bpf_lsm_listed() { &ENFORCE_LSM } else { &ENFORCE_FALLBACK });
    }
    objects
}

/// Loads and attaches every object `capture` turns on.
pub fn attach_all(capture: &CaptureConfig, filters: &Filters) -> Result<Vec<LoadedObject>, ProbeError> {
    ensure_tracefs()?;
    let btf = Btf::from_sys_fs().map_err(ProbeError::Btf)?;
    let cgroup_root = crate::cgroups::cgroup2_mount();
    let attach = |spec| attach(spec, capture, filters, &btf, cgroup_root.as_deref());
    enabled(capture)
        .into_iter()
        .map(|spec| match spec.enforces {
            // Listed is not proof: LSM programs attach and never run when
            // `bpf` is missing from `lsm=`, or fail on a kernel without
            // trampolines.
            Some(Tier::Lsm) => attach(spec)
                .map_err(anyhow::Error::from)
                .and_then(|mut loaded| crate::enforce::tier::lsm_runs(&mut loaded.ebpf).map(|()| loaded))
                .or_else(|err| {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "BPF LSM is listed but its programs do not run here: enforcing at the fallback tier"
                    );
                    attach(&ENFORCE_FALLBACK)
                }),
            _ => attach(spec),
        })
        .collect()
}

fn attach(
    spec: &'static ObjectSpec,
    capture: &CaptureConfig,
    filters: &Filters,
    btf: &Btf,
    cgroup_root: Option<&Path>,
) -> Result<LoadedObject, ProbeError> {
    let name = spec.object.name;
    let wakeup_bytes = u64::from(capture.wakeup_kib) * 1024;
    let flags = filters.flags();
    let globals: Vec<(&str, Vec<u8>)> = spec.globals.iter().map(|global| global.value(capture)).collect();
    let mut loader = EbpfLoader::new();
    loader.btf(Some(btf)).override_global("plb_wakeup_bytes", &wakeup_bytes, true);
    // The policy is never filtered: a process the capture leaves out is still confined.
    let filtered = spec.enforces.is_none();
    if filtered {
        loader.override_global("plb_filter_flags", &flags, true).override_global(
            "plb_ignored_tgid",
            &filters.ignored_tgid,
            true,
        );
    }
    let ring_kib = spec.ring.as_ref().map(|ring| (ring.kib)(capture));
    if let Some(ring) = &spec.ring {
        loader.map_max_entries(ring.map, (ring.kib)(capture) * 1024);
    }
    for (global, value) in &globals {
        loader.override_global(global, value.as_slice(), true);
    }
    // The enforce object's kfunc call gets the kernel's id (see enforce::sock_destroy).
    let bytes = match spec.enforces {
        Some(_) => crate::enforce::sock_destroy::patch_kfunc(spec.object.bytes()?),
        None => std::borrow::Cow::Borrowed(spec.object.bytes()?),
    };
    let mut ebpf = loader.load(&bytes).map_err(|source| ProbeError::Load { object: name, source })?;
    if filtered {
        fill_filters(&mut ebpf, name, filters)?;
    }

    let mut attached = 0;
    for (program, how) in spec.programs {
        match attach_program(&mut ebpf, program, *how, btf, cgroup_root) {
            Ok(true) => attached += 1,
            Ok(false) => {}
            // DNS needs cgroup v2; everything else still works without it.
            Err(err) if matches!(how, Attach::CgroupSkb(_) | Attach::CgroupSock) => {
                let err = anyhow::Error::from(err);
                let off = match *program {
                    "plb_enforce_llm_egress" => {
                        "TLS server names are not checked: an LLM endpoint a role may not call is refused only at \
                         connect, where no allowed endpoint shares its address"
                    }
                    _ if spec.enforces.is_some() => {
                        "host names a policy allows are not learnt from DNS answers (their addresses are refused)"
                    }
                    _ => "DNS capture is off",
                };
                tracing::warn!(error = format!("{err:#}"), program, "{off}");
            }
            Err(err) => return Err(err),
        }
    }
    let ring = match spec.ring {
        Some(Ring { map, .. }) => {
            Some(RingBuf::try_from(take(&mut ebpf, name, map)?).map_err(|source| ProbeError::Map { map, source })?)
        }
        None => None,
    };
    let counters = PerCpuArray::try_from(take(&mut ebpf, name, "plb_counters")?)
        .map_err(|source| ProbeError::Map { map: "plb_counters", source })?;
    tracing::info!(object = name, programs = attached, ring_kib, "attached");
    Ok(LoadedObject { spec, ebpf, ring, counters })
}

/// Attaches one program; false when it was skipped (no cgroup v2 mount).
fn attach_program(
    ebpf: &mut Ebpf,
    program: &'static str,
    how: Attach,
    btf: &Btf,
    cgroup_root: Option<&Path>,
) -> Result<bool, ProbeError> {
    let prog = ebpf.program_mut(program).ok_or(ProbeError::MissingProgram { program })?;
    let fail = |target: String| move |source| ProbeError::Program { program, target, source };
    match how {
        Attach::BtfTracepoint(name) => {
            let p: &mut BtfTracePoint = prog.try_into().map_err(fail(format!("tp_btf/{name}")))?;
            p.load(name, btf).and_then(|()| p.attach().map(drop)).map_err(fail(format!("tp_btf/{name}")))?;
        }
        Attach::Tracepoint(category, name) => {
            let target = format!("tracepoint/{category}/{name}");
            let p: &mut TracePoint = prog.try_into().map_err(fail(target.clone()))?;
            p.load().and_then(|()| p.attach(category, name).map(drop)).map_err(fail(target))?;
        }
        // As BPF links (5.7+), cgroup programs never displace others: link
        // creation takes no multi-attach flag (Single is flags 0).
        Attach::CgroupSkb(direction) => {
            let Some(root) = cgroup_root else { return Ok(false) };
            let target = format!("cgroup_skb/{direction:?} on {}", root.display());
            let cgroup = File::open(root).map_err(|e| fail(target.clone())(aya::programs::ProgramError::IOError(e)))?;
            let p: &mut CgroupSkb = prog.try_into().map_err(fail(target.clone()))?;
            p.load()
                .and_then(|()| p.attach(&cgroup, direction, CgroupAttachMode::Single).map(drop))
                .map_err(fail(target))?;
        }
        Attach::Lsm(hook) => {
            let target = format!("lsm/{hook}");
            let p: &mut Lsm = prog.try_into().map_err(fail(target.clone()))?;
            p.load(hook, btf).and_then(|()| p.attach().map(drop)).map_err(fail(target))?;
        }
        Attach::Uprobe => {
            let p: &mut UProbe = prog.try_into().map_err(fail("uprobe".into()))?;
            p.load().map_err(fail("uprobe".into()))?;
            return Ok(false);
        }
        Attach::CgroupSock => {
            let Some(root) = cgroup_root else { return Ok(false) };
            let target = format!("cgroup/sock_create on {}", root.display());
            let cgroup = File::open(root).map_err(|e| fail(target.clone())(aya::programs::ProgramError::IOError(e)))?;
            let p: &mut CgroupSock = prog.try_into().map_err(fail(target.clone()))?;
            p.load().and_then(|()| p.attach(&cgroup, CgroupAttachMode::Single).map(drop)).map_err(fail(target))?;
        }
        // Without cgroup v2 the network policy cannot be enforced: an error,
        // not a silent skip.
        Attach::CgroupSockAddr => {
            let target = format!("{program} on the cgroup v2 root");
            let root = cgroup_root.ok_or_else(|| {
                let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no cgroup v2 mount");
                fail(target.clone())(aya::programs::ProgramError::IOError(missing))
            })?;
            let cgroup = File::open(root).map_err(|e| fail(target.clone())(aya::programs::ProgramError::IOError(e)))?;
            let p: &mut CgroupSockAddr = prog.try_into().map_err(fail(target.clone()))?;
            p.load().and_then(|()| p.attach(&cgroup, CgroupAttachMode::Single).map(drop)).map_err(fail(target))?;
        }
    }
    Ok(true)
}

fn take(ebpf: &mut Ebpf, object: &'static str, map: &'static str) -> Result<Map, ProbeError> {
    ebpf.take_map(map).ok_or(ProbeError::MissingMap { object, map })
}

fn fill_filters(ebpf: &mut Ebpf, object: &'static str, filters: &Filters) -> Result<(), ProbeError> {
    let map_error = |map| move |source| ProbeError::Map { map, source };
    let mut pids: BpfHashMap<_, u32, u8> = BpfHashMap::try_from(
        ebpf.map_mut("plb_filter_pids").ok_or(ProbeError::MissingMap { object, map: "plb_filter_pids" })?,
    )
    .map_err(map_error("plb_filter_pids"))?;
    for (pid, verdict) in &filters.pids {
        pids.insert(pid, verdict, 0).map_err(map_error("plb_filter_pids"))?;
    }
    let mut comms: BpfHashMap<_, abi::CommKey, u8> = BpfHashMap::try_from(
        ebpf.map_mut("plb_filter_comms").ok_or(ProbeError::MissingMap { object, map: "plb_filter_comms" })?,
    )
    .map_err(map_error("plb_filter_comms"))?;
    for (comm, verdict) in &filters.comms {
        comms.insert(comm, verdict, 0).map_err(map_error("plb_filter_comms"))?;
    }
    let mut cgroups: BpfHashMap<_, u64, u8> = BpfHashMap::try_from(
        ebpf.map_mut("plb_filter_cgroups").ok_or(ProbeError::MissingMap { object, map: "plb_filter_cgroups" })?,
    )
    .map_err(map_error("plb_filter_cgroups"))?;
    for (cgroup, verdict) in &filters.cgroups {
        cgroups.insert(cgroup, verdict, 0).map_err(map_error("plb_filter_cgroups"))?;
    }
    Ok(())
}

/// Classic tracepoints are found through tracefs; mount it if the host has
/// not (minimal hosts and containers often don't).
fn ensure_tracefs() -> Result<(), ProbeError> {
    let tracing = Path::new("/sys/kernel/tracing");
    if tracing.join("events").exists() || Path::new("/sys/kernel/debug/tracing/events").exists() {
        return Ok(());
    }
    // SAFETY: plain mount(2) with static, NUL-terminated strings.
    let rc = unsafe {
        libc::mount(c"tracefs".as_ptr(), c"/sys/kernel/tracing".as_ptr(), c"tracefs".as_ptr(), 0, std::ptr::null())
    };
    if rc != 0 {
        return Err(ProbeError::Tracefs(std::io::Error::last_os_error()));
    }
    tracing::info!("mounted tracefs at /sys/kernel/tracing");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&ObjectSpec; 8] = [&PROCESS, &FILE, &IO, &NET, &IPC, &TLS, &GPU, &ENFORCE_FALLBACK];

    #[test]
    fn objects_with_uprobes_name_the_libraries_they_attach_to() {
        for spec in ALL {
            let uprobes = spec.programs.iter().any(|(_, how)| matches!(how, Attach::Uprobe));
            // The enforce object's LLM rate uprobes are placed by enforce::rate.
            let placed = spec.libraries.is_some() || spec.enforces.is_some();
            assert_eq!(uprobes, placed, "object `{}`", spec.object.name);
        }
    }

    #[test]
    fn each_object_is_declared_once_under_its_own_name() {
        let mut names: Vec<_> = ALL.iter().map(|spec| spec.object.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn ring_sizes_come_from_their_objects_settings() {
        let capture = CaptureConfig::default();
        let kib = |spec: &ObjectSpec| spec.ring.as_ref().map(|ring| (ring.kib)(&capture));
        assert_eq!(kib(&PROCESS), Some(capture.ring_buffer_kib));
        assert_eq!(kib(&FILE), Some(capture.file_ring_kib));
        assert_eq!(kib(&IO), None);
        assert_eq!(kib(&NET), Some(capture.net_ring_kib));
        assert_eq!(kib(&IPC), Some(capture.ipc_ring_kib));
        assert_eq!(kib(&TLS), Some(capture.intent.ring_kib));
        assert_eq!(kib(&GPU), Some(capture.gpu.ring_kib));
    }
}
