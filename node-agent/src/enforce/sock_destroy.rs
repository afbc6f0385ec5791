//! Aborting TCP connections with `bpf_sock_destroy` (a kfunc, Linux 6.5+),
//! called from the enforce object's `iter/tcp` program
//! (`plb_llm_sock_destroy`): it destroys the sockets `llm_socks` marks as
//! refused (a disallowed TLS server name) or to abort (a guardrail match).
//! The owner's next call fails with ECONNABORTED, the peer gets a RST.
//!
//! aya resolves no kfunc externs, so the program calls the kfunc through a
//! raw instruction whose immediate is a marker; [`patch_kfunc`] writes the
//! running kernel's BTF id of `bpf_sock_destroy` there before the object is
//! loaded. A kernel without it (Debian's 6.1) keeps the marker and the
//! program is never loaded: [`Aborter::available`] says so, and callers
//! fall back (the refused socket's packets stay dropped; a guardrail match
//! kills the process). An [`Aborter`] holds what aborting takes; the one
//! task that aborts owns it (`super::llm_enforcement`).
//!
//! An iterator walks only the network namespace of the task that creates
//! it: [`Aborter::destroy_in`] enters the process's namespace (`setns`) on a
//! thread of its own, creates the iterator there and reads it to its end.

use std::{
    borrow::Cow,
    fs::File,
    io::Read,
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
    sync::OnceLock,
};

use anyhow::{bail, Context};
use aya::{
    maps::{Array, HashMap as BpfHashMap, MapData},
    programs::Iter,
    Btf, Ebpf,
};

/// `call` with src `BPF_PSEUDO_KFUNC_CALL` and the marker 0x7ac0ffee as
/// immediate (see `llm_endpoints.bpf.h`).
const KFUNC_CALL: [u8; 8] = [0x85, 0x20, 0x00, 0x00, 0xee, 0xff, 0xc0, 0x7a];
const PROGRAM: &str = "plb_llm_sock_destroy";

const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_ITER_CREATE: libc::c_long = 33;
const BPF_TRACE_ITER: u32 = 28;

/// The kernel's BTF id of `bpf_sock_destroy`, if it has the kfunc. Kept
/// for the process's life: a fact of the running kernel, which does not
/// change under it, asked twice (patching the object before it is loaded,
/// then loading the iterator) and reading the kernel's whole BTF each time
/// otherwise. No state of the agent's is in it.
fn kfunc_id() -> Option<u32> {
    static ID: OnceLock<Option<u32>> = OnceLock::new();
    *ID.get_or_init(|| {
        let btf = Btf::from_sys_fs().ok()?;
        btf.id_by_type_name_kind("bpf_sock_destroy", aya_obj::btf::BtfKind::Func).ok()
    })
}

/// `object` with the kfunc marker replaced by the kernel's id of
/// `bpf_sock_destroy`; as it is when the kernel has none (or the object
/// calls no kfunc).
pub fn patch_kfunc(object: &[u8]) -> Cow<'_, [u8]> {
    let Some(id) = kfunc_id() else { return Cow::Borrowed(object) };
    let mut at = Vec::new();
    let mut i = 0;
    while i + KFUNC_CALL.len() <= object.len() {
        if object[i..i + KFUNC_CALL.len()] == KFUNC_CALL {
            at.push(i);
            i += KFUNC_CALL.len();
        } else {
            i += 1;
        }
    }
    if at.is_empty() {
        return Cow::Borrowed(object);
    }
    let mut patched = object.to_vec();
    for i in at {
        patched[i + 4..i + 8].copy_from_slice(&id.to_le_bytes());
    }
    Cow::Owned(patched)
}

/// `llm_socks` value of a connection to abort (`SOCK_ABORT`).
const SOCK_ABORT: u8 = 4;

/// `struct plb_llm_sock` (llm_endpoints.bpf.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LlmSock {
    pub role: u32,
    pub pod: u32,
    pub tgid: u32,
    pub state: u8,
    pub llm_addr: u8,
    pub _pad0: u16,
}

// SAFETY: plain old data, laid out as the kernel's.
unsafe impl aya::Pod for LlmSock {}

/// The loaded iterator program, its link, and the count of sockets it
/// destroyed.
struct Destroyer {
    link: OwnedFd,
    destroyed: Array<MapData, u64>,
}

/// What aborting a connection takes of the enforce object: the sockets it
/// marks (`llm_socks`) and the iterator that destroys them, where the kernel
/// has `bpf_sock_destroy`. Owned by the one task that aborts.
pub struct Aborter {
    socks: BpfHashMap<MapData, u64, LlmSock>,
    destroyer: Result<Destroyer, String>,
}

impl Aborter {
    /// Takes `llm_socks` out of the enforce object and loads its iterator;
    /// says at start whether connections can be aborted on this kernel.
    pub fn load(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        let socks =
            BpfHashMap::try_from(ebpf.take_map("llm_socks").context("the enforce object has no map llm_socks")?)?;
        let destroyer = match Destroyer::load(ebpf) {
            Ok(destroyer) => {
                tracing::info!("bpf_sock_destroy available: refused LLM connections are aborted (iter/tcp)");
                Ok(destroyer)
            }
            Err(err) => {
                let why = format!("{err:#}");
                tracing::warn!(
                    why,
                    "bpf_sock_destroy not available: a refused TLS server name keeps its connection's packets \
                     dropped (the client waits for its own timeout); a guardrail match kills the process"
                );
                Err(why)
            }
        };
        Ok(Self { socks, destroyer })
    }

    /// Connections can be aborted here.
    pub fn available(&self) -> bool {
        self.destroyer.is_ok()
    }

    /// Marks the connection `cookie` of `tgid` (role, pod) to be aborted.
    pub fn mark_abort(&mut self, cookie: u64, role: u32, pod: u32, tgid: u32) -> anyhow::Result<()> {
        let sock = LlmSock { role, pod, tgid, state: SOCK_ABORT, llm_addr: 0, _pad0: 0 };
        self.socks.insert(cookie, sock, 0).context("marking the connection to abort")
    }

    /// Runs the iterator in the network namespace of `pid`: every socket
    /// `llm_socks` marks refused or to abort there is destroyed. Returns how
    /// many were.
    pub fn destroy_in(&self, pid: u32) -> anyhow::Result<u64> {
        let destroyer = match &self.destroyer {
            Ok(destroyer) => destroyer,
            Err(why) => bail!("bpf_sock_destroy is not available: {why}"),
        };
        let before = destroyer.destroyed.get(&0, 0).unwrap_or(0);
        let netns = File::open(format!("/proc/{pid}/ns/net")).with_context(|| format!("the netns of pid {pid}"))?;
        let link = destroyer.link.as_raw_fd();
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> anyhow::Result<()> {
                    // This thread only: it ends here.
                    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(std::io::Error::last_os_error()).context("setns into the process's netns");
                    }
                    let mut attr = [0u64; 2];
                    attr[0] = u64::from(link as u32);
                    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_ITER_CREATE, attr.as_mut_ptr(), 16usize) };
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error()).context("BPF_ITER_CREATE");
                    }
                    let mut iter = unsafe { File::from_raw_fd(fd as i32) };
                    let mut sink = Vec::new();
                    iter.read_to_end(&mut sink).context("running the iter/tcp program")?;
                    Ok(())
                })
                .join()
                .unwrap_or_else(|_| bail!("the iterator thread panicked"))
        })?;
        Ok(destroyer.destroyed.get(&0, 0).unwrap_or(0).saturating_sub(before))
    }
}

impl Destroyer {
    fn load(ebpf: &mut Ebpf) -> anyhow::Result<Self> {
        if kfunc_id().is_none() {
            bail!("the kernel's BTF has no bpf_sock_destroy (it came in Linux 6.5)");
        }
        let btf = Btf::from_sys_fs().context("the kernel's BTF")?;
        let program: &mut Iter = ebpf
            .program_mut(PROGRAM)
            .context("the enforce object has no iter/tcp program")?
            .try_into()
            .context("plb_llm_sock_destroy is not an iterator")?;
        program.load("tcp", &btf).context("loading the iter/tcp program")?;
        let prog = program.fd().context("the iter/tcp program's fd")?;
        let mut attr = [0u64; 8];
        // prog_fd, target_fd (0), attach_type, flags (0)
        attr[0] = u64::from(prog.as_fd().as_raw_fd() as u32);
        attr[1] = u64::from(BPF_TRACE_ITER);
        let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_CREATE, attr.as_mut_ptr(), 64usize) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("BPF_LINK_CREATE for the iter/tcp program");
        }
        let link = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let destroyed = Array::try_from(ebpf.take_map("llm_destroyed").context("no map llm_destroyed")?)?;
        Ok(Self { link, destroyed })
    }
}

/// The cookie of socket `fd` of process `pid` (its copy taken with
/// pidfd_getfd, asked for SO_COOKIE, closed).
pub fn socket_cookie(pid: u32, fd: i32) -> anyhow::Result<u64> {
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if pidfd < 0 {
        return Err(std::io::Error::last_os_error()).context("pidfd_open");
    }
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error()).context("pidfd_getfd");
    }
    let copy = unsafe { OwnedFd::from_raw_fd(copy as i32) };
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    let ret = unsafe {
        libc::getsockopt(
            copy.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("SO_COOKIE");
    }
    Ok(cookie)
}
