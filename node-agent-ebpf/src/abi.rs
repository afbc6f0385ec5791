//! The ABI shared with the BPF programs: `bpf/include/plumbline_abi.h` in Rust.
//!
//! Every struct and constant is written once, in the header; bindgen turns it
//! into the checked-in `abi/generated.rs` (`tests/generated_abi_is_fresh.rs`
//! keeps it fresh and says how to regenerate it), whose compile-time asserts
//! hold every struct's size and alignment and every field's offset to what
//! clang laid out. This file adds what C cannot say. Kinds and outcomes stay
//! plain integers: a value from the kernel that no Rust enum knows must be
//! representable.

mod generated {
    include!("abi/generated.rs");
}

pub use generated::*;

/// Record kinds (`enum plb_event_kind`).
pub mod kind {
    pub use super::generated::kind::*;

    /// The name used in metrics and loss markers, or `None` for a kind this
    /// agent does not know.
    pub fn name(kind: u16) -> Option<&'static str> {
        Some(match kind {
            PROC_EXEC => "proc_exec",
            PROC_FORK => "proc_fork",
            PROC_EXIT => "proc_exit",
            PROC_EXEC_FAILED => "proc_exec_failed",
            FILE_OPEN => "file_open",
            FILE_UNLINK => "file_unlink",
            FILE_RENAME => "file_rename",
            IO => "io",
            NET_CONNECT => "net_connect",
            NET_ACCEPT => "net_accept",
            NET_CLOSE => "net_close",
            NET_DNS => "net_dns",
            UNIX_CONNECT => "unix_connect",
            SHM => "shm",
            TLS_DATA => "tls_data",
            TLS_SNI => "tls_sni",
            CUDA => "cuda",
            NCCL => "nccl",
            ENFORCE_NET => "enforce_net",
            ENFORCE_EXEC => "enforce_exec",
            ENFORCE_FILE => "enforce_file",
            _ => return None,
        })
    }
}

/// What happened to an event a program tried to emit (`enum plb_outcome`).
pub mod outcome {
    pub use super::generated::outcome::*;

    pub fn name(outcome: u32) -> &'static str {
        match outcome {
            EMITTED => "emitted",
            RINGBUF_FULL => "ringbuf_full",
            READ_FAILED => "read_failed",
            MAP_FULL => "map_full",
            FILTERED => "filtered",
            COLLAPSED => "collapsed",
            _ => "unknown",
        }
    }
}

/// `enum plb_filter_flags` and `enum plb_filter_verdict`.
pub mod filter {
    pub use super::generated::{filter_flags::*, filter_verdict::*};
}

/// Slots in the per-CPU `plb_counters` map: one per (kind, outcome)
/// (`PLB_COUNTERS_LEN`, which bindgen cannot evaluate).
pub const COUNTERS_LEN: u32 = kind::MAX as u32 * outcome::MAX;

/// `PLB_COUNTER_INDEX(kind, outcome)`.
pub const fn counter_index(kind: u16, outcome: u32) -> u32 {
    kind as u32 * outcome::MAX + outcome
}

// SAFETY: the types the agent reads from or writes to BPF maps are repr(C)
// with explicit padding (bytemuck::Pod, derived in generated.rs, refuses
// anything else).
unsafe impl aya::Pod for OpenKey {}
unsafe impl aya::Pod for OpenRepeats {}
unsafe impl aya::Pod for IoKey {}
unsafe impl aya::Pod for IoStats {}
unsafe impl aya::Pod for CommKey {}
unsafe impl aya::Pod for Pod {}
unsafe impl aya::Pod for Role {}
unsafe impl aya::Pod for NetRuleAddr {}
unsafe impl aya::Pod for NetRule {}
unsafe impl aya::Pod for RoleInode {}
unsafe impl aya::Pod for DnsName {}
unsafe impl aya::Pod for RateRule {}
unsafe impl aya::Pod for RateKey {}
unsafe impl aya::Pod for RateBucket {}
