//! Loads Plumbline's BPF objects with aya and attaches their programs.
//!
//! Every program here is a tracepoint: classic (`tracepoint/`) or BTF-typed
//! (`tp_btf/`), neither of which needs a BPF trampoline, so they load on
//! kernels that refuse fentry/LSM programs. The sched tracepoints are BTF-typed
//! to read the task structs they are handed; CO-RE relocations fit the reads
//! to the running kernel.

use std::path::Path;

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, TracePoint},
    Btf, Ebpf, EbpfLoader,
};
use plumbline_ebpf::{BpfObject, PROCESS};

use crate::config::CaptureConfig;

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
    #[error("BPF map `{map}` has an unexpected type")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {0}")]
    Tracefs(std::io::Error),
}

/// Where a program attaches.
enum Attach {
    /// `tp_btf/<name>`
    BtfTracepoint(&'static str),
    /// `tracepoint/<category>/<name>`
    Tracepoint(&'static str, &'static str),
}

const PROCESS_PROGRAMS: &[(&str, Attach)] = &[
    ("plb_sched_process_exec", Attach::BtfTracepoint("sched_process_exec")),
    ("plb_sched_process_fork", Attach::BtfTracepoint("sched_process_fork")),
    ("plb_sched_process_exit", Attach::BtfTracepoint("sched_process_exit")),
    ("plb_sys_enter_execve", Attach::Tracepoint("syscalls", "sys_enter_execve")),
    ("plb_sys_enter_execveat", Attach::Tracepoint("syscalls", "sys_enter_execveat")),
    ("plb_sys_exit_execve", Attach::Tracepoint("syscalls", "sys_exit_execve")),
    ("plb_sys_exit_execveat", Attach::Tracepoint("syscalls", "sys_exit_execveat")),
];

/// The process-lifecycle programs, attached, with their ring and counters.
pub struct ProcessProbes {
    /// Keeps programs and links alive: dropping it detaches everything.
    _ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    pub counters: PerCpuArray<MapData, u64>,
}

impl ProcessProbes {
    pub fn attach(capture: &CaptureConfig) -> Result<Self, ProbeError> {
        ensure_tracefs()?;
        let btf = Btf::from_sys_fs().map_err(ProbeError::Btf)?;
        let mut ebpf = load(&PROCESS, &btf, capture)?;
        for (program, attach) in PROCESS_PROGRAMS {
            attach_program(&mut ebpf, program, attach, &btf)?;
        }
        let ring = RingBuf::try_from(take_map(&mut ebpf, PROCESS.name, "proc_events")?)
            .map_err(|source| ProbeError::Map { map: "proc_events", source })?;
        let counters = PerCpuArray::try_from(take_map(&mut ebpf, PROCESS.name, "plb_counters")?)
            .map_err(|source| ProbeError::Map { map: "plb_counters", source })?;
        tracing::info!(
            object = PROCESS.name,
            programs = PROCESS_PROGRAMS.len(),
            ring_kib = capture.ring_buffer_kib,
            "attached"
        );
        Ok(Self { _ebpf: ebpf, ring, counters })
    }
}

fn load(object: &BpfObject, btf: &Btf, capture: &CaptureConfig) -> Result<Ebpf, ProbeError> {
    let wakeup_bytes = u64::from(capture.wakeup_kib) * 1024;
    EbpfLoader::new()
        .btf(Some(btf))
        .override_global("plb_wakeup_bytes", &wakeup_bytes, true)
        .map_max_entries("proc_events", capture.ring_buffer_kib * 1024)
        .load(object.bytes()?)
        .map_err(|source| ProbeError::Load { object: object.name, source })
}

fn attach_program(ebpf: &mut Ebpf, program: &'static str, attach: &Attach, btf: &Btf) -> Result<(), ProbeError> {
    let (target, result) = match attach {
        Attach::BtfTracepoint(name) => {
            let result = match ebpf.program_mut(program).map(<&mut BtfTracePoint>::try_from) {
                Some(Ok(p)) => p.load(name, btf).and_then(|()| p.attach().map(drop)),
                Some(Err(e)) => Err(e),
                None => return Err(ProbeError::MissingProgram { program }),
            };
            (format!("tp_btf/{name}"), result)
        }
        Attach::Tracepoint(category, name) => {
            let result = match ebpf.program_mut(program).map(<&mut TracePoint>::try_from) {
                Some(Ok(p)) => p.load().and_then(|()| p.attach(category, name).map(drop)),
                Some(Err(e)) => Err(e),
                None => return Err(ProbeError::MissingProgram { program }),
            };
            (format!("tracepoint/{category}/{name}"), result)
        }
    };
    result.map_err(|source| ProbeError::Program { program, target, source })
}

fn take_map(ebpf: &mut Ebpf, object: &'static str, map: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(map).ok_or(ProbeError::MissingMap { object, map })
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
