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
pub const PROCESS: BpfObject = BpfObject {
    name: "process",
    bytes: aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/process.bpf.o")),
};
