//! Plumbline's eBPF programs and the ABI they share with the node agent.
//!
//! The C programs under `bpf/` are compiled by clang-19 in `build.rs` and
//! embedded here; [`abi`] mirrors `bpf/include/plumbline_abi.h` and [`record`]
//! parses what the programs write into their ring buffers.

pub mod abi;
mod object_check;
pub mod record;

pub use object_check::ObjectError;

/// One compiled BPF object: its programs, maps and ring buffer.
#[derive(Debug, Clone, Copy)]
pub struct BpfObject {
    /// Name used in logs and metrics (`process`).
    pub name: &'static str,
    bytes: &'static [u8],
}

impl BpfObject {
    /// The object's ELF bytes, after checking they are present and were built
    /// from the same ABI this crate mirrors. Refusing here is better than
    /// attaching programs that write records the agent would misread.
    pub fn bytes(&self) -> Result<&'static [u8], ObjectError> {
        object_check::check(self.name, self.bytes)?;
        Ok(self.bytes)
    }
}

/// Process lifecycle: exec (with argv), fork, exit, failed exec.
pub const PROCESS: BpfObject =
    BpfObject { name: "process", bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/process.bpf.o")) };

/// Files: opens (absolute paths, repeats collapsed), unlinks, renames.
pub const FILE: BpfObject =
    BpfObject { name: "file", bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/file.bpf.o")) };

/// IO accounting: file write volume, pipe and unix-socket bytes and blocked time.
pub const IO: BpfObject =
    BpfObject { name: "io", bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/io.bpf.o")) };

/// Network: TCP connects, accepts and closes with bytes; unix and UDP connects; DNS.
pub const NET: BpfObject =
    BpfObject { name: "net", bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/net.bpf.o")) };

/// SysV shared memory.
pub const IPC: BpfObject =
    BpfObject { name: "ipc", bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ipc.bpf.o")) };

/// TLS plaintext: OpenSSL's SSL_read/SSL_write (and _ex), Go's crypto/tls.
pub const TLS: BpfObject =
    BpfObject { name: "tls", bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tls.bpf.o")) };

/// GPU: CUDA runtime (libcudart) and NCCL calls.
pub const GPU: BpfObject =
    BpfObject { name: "gpu", bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gpu.bpf.o")) };

/// Workload policy without BPF LSM: network decided at the cgroup2 root
/// (connect, unconnected send), roles inherited at fork. Loaded only when a
/// policy is configured.
pub const ENFORCE: BpfObject =
    BpfObject { name: "enforce", bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/enforce.bpf.o")) };

/// Every object the agent loads.
pub const OBJECTS: [BpfObject; 7] = [PROCESS, FILE, IO, NET, IPC, TLS, GPU];
