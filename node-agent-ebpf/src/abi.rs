//! Rust mirror of `bpf/include/plumbline_abi.h`.
//!
//! Field for field the same layout, checked by the test at the bottom against
//! what the C compiler printed (`bpf/abi_layout.c`, run by build.rs). Kinds and
//! outcomes stay plain integers: a value from the kernel that no Rust enum
//! knows must be representable.

use bytemuck::{Pod, Zeroable};

pub const ABI_VERSION: u32 = 7;
pub const COMM_LEN: usize = 16;
pub const FILENAME_MAX: usize = 256;
pub const ARGS_MAX: usize = 2048;
pub const PATH_BASE_MAX: usize = 4096;
pub const PATH_REL_MAX: usize = 1024;
pub const DNS_MAX: usize = 512;
pub const UNIX_PATH_MAX: usize = 108;
/// TLS plaintext bytes per record, and records per call at most.
pub const TLS_CHUNK: usize = 16384;
pub const TLS_MAX_CHUNKS: usize = 256;
pub const TLS_SNI_MAX: usize = 256;
/// Bytes of an `ncclUniqueId`.
pub const NCCL_ID_BYTES: usize = 128;

/// Record kinds (`enum plb_event_kind`).
pub mod kind {
    pub const PROC_EXEC: u16 = 1;
    pub const PROC_FORK: u16 = 2;
    pub const PROC_EXIT: u16 = 3;
    pub const PROC_EXEC_FAILED: u16 = 4;
    pub const FILE_OPEN: u16 = 10;
    pub const FILE_UNLINK: u16 = 11;
    pub const FILE_RENAME: u16 = 12;
    /// IO accounting in maps (counters only, no records).
    pub const IO: u16 = 15;
    pub const NET_CONNECT: u16 = 20;
    pub const NET_ACCEPT: u16 = 21;
    pub const NET_CLOSE: u16 = 22;
    pub const NET_DNS: u16 = 23;
    pub const UNIX_CONNECT: u16 = 24;
    pub const SHM: u16 = 30;
    pub const TLS_DATA: u16 = 40;
    pub const TLS_SNI: u16 = 41;
    pub const CUDA: u16 = 50;
    pub const NCCL: u16 = 51;
    /// Exclusive upper bound; sizes the counters map.
    pub const MAX: u16 = 64;

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
            _ => return None,
        })
    }
}

/// What happened to an event a program tried to emit (`enum plb_outcome`).
pub mod outcome {
    pub const EMITTED: u32 = 0;
    pub const RINGBUF_FULL: u32 = 1;
    pub const READ_FAILED: u32 = 2;
    pub const MAP_FULL: u32 = 3;
    pub const FILTERED: u32 = 4;
    pub const COLLAPSED: u32 = 5;
    pub const MAX: u32 = 6;

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

/// `enum plb_io_kind`.
pub mod io_kind {
    pub const FILE: u32 = 1;
    pub const PIPE: u32 = 2;
    pub const UNIX: u32 = 3;
}

/// `enum plb_transport`.
pub mod transport {
    pub const TCP: u16 = 1;
    pub const UDP: u16 = 2;
    pub const UNIX_STREAM: u16 = 3;
    pub const UNIX_DGRAM: u16 = 4;
}

/// `enum plb_direction`.
pub mod direction {
    pub const CONNECT: u16 = 1;
    pub const ACCEPT: u16 = 2;
}

/// `enum plb_filter_flags` and `enum plb_filter_verdict`.
pub mod filter {
    pub const ALLOW_PIDS: u32 = 1;
    pub const ALLOW_CGROUPS: u32 = 2;
    pub const ALLOW_COMMS: u32 = 4;
    pub const HAS_PIDS: u32 = 8;
    pub const HAS_CGROUPS: u32 = 16;
    pub const HAS_COMMS: u32 = 32;
    pub const ALLOW: u8 = 1;
    pub const DENY: u8 = 2;
}

/// `enum plb_shm_op`.
pub mod shm_op {
    pub const GET: u32 = 1;
    pub const ATTACH: u32 = 2;
}

/// `enum plb_tls_library`.
pub mod tls_library {
    pub const OPENSSL: u8 = 1;
    pub const GO: u8 = 2;
}

/// `enum plb_tls_direction`.
pub mod tls_direction {
    pub const WRITE: u8 = 1;
    pub const READ: u8 = 2;
}

/// `enum plb_cuda_api`.
pub mod cuda_api {
    pub const LAUNCH_KERNEL: u16 = 1;
    pub const MEMCPY: u16 = 2;
    pub const MEMCPY_ASYNC: u16 = 3;
    pub const MALLOC: u16 = 4;
    pub const FREE: u16 = 5;
    pub const STREAM_SYNCHRONIZE: u16 = 6;
    pub const DEVICE_SYNCHRONIZE: u16 = 7;
    pub const LAUNCH_KERNEL_EX: u16 = 8;
    pub const GRAPH_LAUNCH: u16 = 9;
    pub const SET_DEVICE: u16 = 10;
}

/// `enum plb_nccl_op`.
pub mod nccl_op {
    pub const COMM_INIT: u16 = 1;
    pub const ALL_REDUCE: u16 = 2;
    pub const ALL_GATHER: u16 = 3;
    pub const REDUCE_SCATTER: u16 = 4;
    pub const BROADCAST: u16 = 5;
    pub const REDUCE: u16 = 6;
    pub const SEND: u16 = 7;
    pub const RECV: u16 = 8;
    pub const GROUP_START: u16 = 9;
    pub const GROUP_END: u16 = 10;
    pub const COMM_SPLIT: u16 = 11;
    pub const COMM_DESTROY: u16 = 12;
}

/// Slots in the per-CPU `plb_counters` map: one per (kind, outcome).
pub const COUNTERS_LEN: u32 = kind::MAX as u32 * outcome::MAX;

/// `PLB_COUNTER_INDEX(kind, outcome)`.
pub const fn counter_index(kind: u16, outcome: u32) -> u32 {
    kind as u32 * outcome::MAX + outcome
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct EventHeader {
    pub ts_boot_ns: u64,
    pub cgroup_id: u64,
    pub pid: u32,
    pub tid: u32,
    pub kind: u16,
    pub size: u16,
    pub _pad0: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ProcExec {
    pub hdr: EventHeader,
    pub start_boot_ns: u64,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub old_tid: u32,
    pub filename_len: u16,
    pub args_len: u16,
    pub args_truncated: u8,
    pub _pad0: [u8; 3],
    pub comm: [u8; COMM_LEN],
    pub filename: [u8; FILENAME_MAX],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ProcFork {
    pub hdr: EventHeader,
    pub start_boot_ns: u64,
    pub parent_pid: u32,
    pub parent_tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ProcExit {
    pub hdr: EventHeader,
    pub start_boot_ns: u64,
    pub exit_code: u32,
    pub ppid: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ProcExecFailed {
    pub hdr: EventHeader,
    pub start_boot_ns: u64,
    pub error: i32,
    pub filename_len: u16,
    pub args_len: u16,
    pub args_truncated: u8,
    pub _pad0: [u8; 7],
    pub comm: [u8; COMM_LEN],
    pub filename: [u8; FILENAME_MAX],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq, Hash)]
pub struct OpenKey {
    pub tgid: u32,
    pub flags: u32,
    pub dev: u64,
    pub ino: u64,
    pub result: i32,
    pub gen: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct OpenRepeats {
    pub window_start_ns: u64,
    pub last_ns: u64,
    pub repeats: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PathLens {
    pub base_len: u16,
    pub rel_len: u16,
    pub truncated: u8,
    pub _pad0: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct FileOpen {
    pub hdr: EventHeader,
    pub key: OpenKey,
    pub result: i64,
    pub mode: u32,
    pub _pad0: u32,
    pub path: PathLens,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct FileUnlink {
    pub hdr: EventHeader,
    pub result: i64,
    pub flags: u32,
    pub _pad0: u32,
    pub path: PathLens,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct FileRename {
    pub hdr: EventHeader,
    pub result: i64,
    pub flags: u32,
    pub _pad0: u32,
    pub from: PathLens,
    pub to: PathLens,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq, Hash)]
pub struct IoKey {
    pub tgid: u32,
    pub kind: u32,
    pub dev: u64,
    pub ino: u64,
    pub gen: u32,
    pub _pad0: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq, Default)]
pub struct IoStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub reads: u64,
    pub writes: u64,
    pub read_blocked_ns: u64,
    pub write_blocked_ns: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub peer_ino: u64,
    pub peer_tgid: u32,
    pub _pad0: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SockAddr {
    pub addr: [u8; 16],
    pub port: u16,
    pub family: u16,
    pub _pad0: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct NetConnect {
    pub hdr: EventHeader,
    pub local: SockAddr,
    pub remote: SockAddr,
    pub sock_id: u64,
    pub latency_ns: u64,
    pub result: i32,
    pub transport: u16,
    pub direction: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct NetClose {
    pub hdr: EventHeader,
    pub local: SockAddr,
    pub remote: SockAddr,
    pub sock_id: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub established_ns: u64,
    pub closed_ns: u64,
    pub old_state: u32,
    pub direction: u16,
    pub shutdown: u8,
    pub _pad0: u8,
    pub snd_una: u32,
    pub write_seq: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct UnixConnect {
    pub hdr: EventHeader,
    pub ino: u64,
    pub peer_ino: u64,
    pub latency_ns: u64,
    pub peer_tgid: u32,
    pub result: i32,
    pub direction: u16,
    pub transport: u16,
    pub path_len: u16,
    pub _pad0: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct DnsPacket {
    pub hdr: EventHeader,
    pub local: SockAddr,
    pub remote: SockAddr,
    pub cookie: u64,
    pub len: u16,
    pub egress: u8,
    pub _pad0: [u8; 5],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Shm {
    pub hdr: EventHeader,
    pub result: i64,
    pub key: u64,
    pub size: u64,
    pub shmid: i32,
    pub op: u32,
    pub flags: u32,
    pub _pad0: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TlsData {
    pub hdr: EventHeader,
    pub conn_id: u64,
    pub call_start_ns: u64,
    pub call_len: u32,
    pub offset: u32,
    pub len: u32,
    pub fd: i32,
    pub direction: u8,
    pub library: u8,
    pub _pad0: [u8; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TlsSni {
    pub hdr: EventHeader,
    pub conn_id: u64,
    pub name_len: u16,
    pub _pad0: [u8; 6],
    pub name: [u8; TLS_SNI_MAX],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CudaCall {
    pub hdr: EventHeader,
    pub duration_ns: u64,
    pub handle: u64,
    pub stream: u64,
    pub bytes: u64,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub result: i32,
    pub memcpy_kind: i32,
    pub device: i32,
    pub api: u16,
    pub _pad0: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct NcclCall {
    pub hdr: EventHeader,
    pub duration_ns: u64,
    pub comm: u64,
    pub parent_comm: u64,
    pub count: u64,
    pub stream: u64,
    pub result: i32,
    pub datatype: i32,
    pub reduce_op: i32,
    pub peer: i32,
    pub nranks: i32,
    pub rank: i32,
    pub color: i32,
    pub op: u16,
    pub id_len: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq, Hash)]
pub struct CommKey {
    pub comm: [u8; COMM_LEN],
}

// SAFETY: the types the agent reads from or writes to BPF maps are repr(C)
// with explicit padding (bytemuck::Pod, derived above, refuses anything else).
unsafe impl aya::Pod for OpenKey {}
unsafe impl aya::Pod for OpenRepeats {}
unsafe impl aya::Pod for IoKey {}
unsafe impl aya::Pod for IoStats {}
unsafe impl aya::Pod for CommKey {}

#[cfg(test)]
mod layout_tests {
    use std::collections::BTreeMap;

    use super::*;

    /// What `bpf/abi_layout.c` printed: struct sizes, field (offset, size), constants.
    struct CLayout {
        structs: BTreeMap<String, usize>,
        fields: BTreeMap<String, (usize, usize)>,
        consts: BTreeMap<String, i64>,
    }

    fn c_layout() -> CLayout {
        let text = include_str!(concat!(env!("OUT_DIR"), "/abi_layout.txt"));
        let mut layout = CLayout { structs: BTreeMap::new(), fields: BTreeMap::new(), consts: BTreeMap::new() };
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["struct", name, size] => {
                    layout.structs.insert(name.to_string(), size.parse().unwrap());
                }
                ["field", name, offset, size] => {
                    layout.fields.insert(name.to_string(), (offset.parse().unwrap(), size.parse().unwrap()));
                }
                ["const", name, value] => {
                    layout.consts.insert(name.to_string(), value.parse().unwrap());
                }
                _ => panic!("unexpected abi_layout line: {line}"),
            }
        }
        layout
    }

    /// Field size without constructing a value.
    fn size_of_field<T, F>(_: fn(&T) -> &F) -> usize {
        std::mem::size_of::<F>()
    }

    macro_rules! check_struct {
        ($layout:expr, $checked:expr, $rust:ty, $c:literal, [$($field:ident),* $(,)?]) => {{
            assert_eq!(
                std::mem::size_of::<$rust>(),
                $layout.structs[$c],
                "size of {} vs struct {}", stringify!($rust), $c
            );
            $(
                let key = format!("{}.{}", $c, stringify!($field));
                let (c_offset, c_size) = *$layout.fields.get(&key).unwrap_or_else(|| panic!("C has no field {key}"));
                assert_eq!(std::mem::offset_of!($rust, $field), c_offset, "offset of {key}");
                assert_eq!(size_of_field(|s: &$rust| &s.$field), c_size, "size of {key}");
                $checked.push(key);
            )*
        }};
    }

    #[test]
    fn rust_structs_match_the_c_abi_header_field_by_field() {
        let layout = c_layout();
        let mut checked: Vec<String> = Vec::new();
        check_struct!(
            layout,
            checked,
            EventHeader,
            "plb_event_header",
            [ts_boot_ns, cgroup_id, pid, tid, kind, size, _pad0]
        );
        check_struct!(
            layout,
            checked,
            ProcExec,
            "plb_proc_exec",
            [
                hdr,
                start_boot_ns,
                ppid,
                uid,
                gid,
                old_tid,
                filename_len,
                args_len,
                args_truncated,
                _pad0,
                comm,
                filename
            ]
        );
        check_struct!(
            layout,
            checked,
            ProcFork,
            "plb_proc_fork",
            [hdr, start_boot_ns, parent_pid, parent_tid, uid, gid, comm]
        );
        check_struct!(layout, checked, ProcExit, "plb_proc_exit", [hdr, start_boot_ns, exit_code, ppid, comm]);
        check_struct!(
            layout,
            checked,
            ProcExecFailed,
            "plb_proc_exec_failed",
            [hdr, start_boot_ns, error, filename_len, args_len, args_truncated, _pad0, comm, filename]
        );
        check_struct!(layout, checked, OpenKey, "plb_open_key", [tgid, flags, dev, ino, result, gen]);
        check_struct!(layout, checked, OpenRepeats, "plb_open_repeats", [window_start_ns, last_ns, repeats]);
        check_struct!(layout, checked, PathLens, "plb_path_lens", [base_len, rel_len, truncated, _pad0]);
        check_struct!(layout, checked, FileOpen, "plb_file_open", [hdr, key, result, mode, _pad0, path]);
        check_struct!(layout, checked, FileUnlink, "plb_file_unlink", [hdr, result, flags, _pad0, path]);
        check_struct!(layout, checked, FileRename, "plb_file_rename", [hdr, result, flags, _pad0, from, to]);
        check_struct!(layout, checked, IoKey, "plb_io_key", [tgid, kind, dev, ino, gen, _pad0]);
        check_struct!(
            layout,
            checked,
            IoStats,
            "plb_io_stats",
            [
                bytes_read,
                bytes_written,
                reads,
                writes,
                read_blocked_ns,
                write_blocked_ns,
                first_ns,
                last_ns,
                peer_ino,
                peer_tgid,
                _pad0
            ]
        );
        check_struct!(layout, checked, SockAddr, "plb_sockaddr", [addr, port, family, _pad0]);
        check_struct!(
            layout,
            checked,
            NetConnect,
            "plb_net_connect",
            [hdr, local, remote, sock_id, latency_ns, result, transport, direction]
        );
        check_struct!(
            layout,
            checked,
            NetClose,
            "plb_net_close",
            [
                hdr,
                local,
                remote,
                sock_id,
                bytes_acked,
                bytes_received,
                established_ns,
                closed_ns,
                old_state,
                direction,
                shutdown,
                _pad0,
                snd_una,
                write_seq
            ]
        );
        check_struct!(
            layout,
            checked,
            UnixConnect,
            "plb_unix_connect",
            [hdr, ino, peer_ino, latency_ns, peer_tgid, result, direction, transport, path_len, _pad0]
        );
        check_struct!(layout, checked, DnsPacket, "plb_dns_packet", [hdr, local, remote, cookie, len, egress, _pad0]);
        check_struct!(layout, checked, Shm, "plb_shm", [hdr, result, key, size, shmid, op, flags, _pad0]);
        check_struct!(
            layout,
            checked,
            TlsData,
            "plb_tls_data",
            [hdr, conn_id, call_start_ns, call_len, offset, len, fd, direction, library, _pad0]
        );
        check_struct!(layout, checked, TlsSni, "plb_tls_sni", [hdr, conn_id, name_len, _pad0, name]);
        check_struct!(
            layout,
            checked,
            CudaCall,
            "plb_cuda_call",
            [hdr, duration_ns, handle, stream, bytes, grid, block, result, memcpy_kind, device, api, _pad0]
        );
        check_struct!(
            layout,
            checked,
            NcclCall,
            "plb_nccl_call",
            [
                hdr,
                duration_ns,
                comm,
                parent_comm,
                count,
                stream,
                result,
                datatype,
                reduce_op,
                peer,
                nranks,
                rank,
                color,
                op,
                id_len
            ]
        );
        check_struct!(layout, checked, CommKey, "plb_comm_key", [comm]);
        // A field added on the C side without a Rust mirror fails here.
        let unchecked: Vec<&String> = layout.fields.keys().filter(|k| !checked.contains(k)).collect();
        assert!(unchecked.is_empty(), "C fields with no Rust check: {unchecked:?}");
    }

    #[test]
    fn rust_constants_match_the_c_abi_header() {
        let c = c_layout().consts;
        let expect: &[(&str, i64)] = &[
            ("PLB_ABI_VERSION", ABI_VERSION as i64),
            ("PLB_COMM_LEN", COMM_LEN as i64),
            ("PLB_FILENAME_MAX", FILENAME_MAX as i64),
            ("PLB_ARGS_MAX", ARGS_MAX as i64),
            ("PLB_EV_PROC_EXEC", kind::PROC_EXEC as i64),
            ("PLB_EV_PROC_FORK", kind::PROC_FORK as i64),
            ("PLB_EV_PROC_EXIT", kind::PROC_EXIT as i64),
            ("PLB_EV_PROC_EXEC_FAILED", kind::PROC_EXEC_FAILED as i64),
            ("PLB_EV_KIND_MAX", kind::MAX as i64),
            ("PLB_OUT_EMITTED", outcome::EMITTED as i64),
            ("PLB_OUT_RINGBUF_FULL", outcome::RINGBUF_FULL as i64),
            ("PLB_OUT_READ_FAILED", outcome::READ_FAILED as i64),
            ("PLB_OUT_MAP_FULL", outcome::MAP_FULL as i64),
            ("PLB_OUT_FILTERED", outcome::FILTERED as i64),
            ("PLB_OUT_COLLAPSED", outcome::COLLAPSED as i64),
            ("PLB_OUT_MAX", outcome::MAX as i64),
            ("PLB_COUNTERS_LEN", COUNTERS_LEN as i64),
            ("PLB_PATH_BASE_MAX", PATH_BASE_MAX as i64),
            ("PLB_PATH_REL_MAX", PATH_REL_MAX as i64),
            ("PLB_DNS_MAX", DNS_MAX as i64),
            ("PLB_UNIX_PATH_MAX", UNIX_PATH_MAX as i64),
            ("PLB_EV_FILE_OPEN", kind::FILE_OPEN as i64),
            ("PLB_EV_FILE_UNLINK", kind::FILE_UNLINK as i64),
            ("PLB_EV_FILE_RENAME", kind::FILE_RENAME as i64),
            ("PLB_EV_IO", kind::IO as i64),
            ("PLB_EV_NET_CONNECT", kind::NET_CONNECT as i64),
            ("PLB_EV_NET_ACCEPT", kind::NET_ACCEPT as i64),
            ("PLB_EV_NET_CLOSE", kind::NET_CLOSE as i64),
            ("PLB_EV_NET_DNS", kind::NET_DNS as i64),
            ("PLB_EV_UNIX_CONNECT", kind::UNIX_CONNECT as i64),
            ("PLB_EV_SHM", kind::SHM as i64),
            ("PLB_IO_FILE", io_kind::FILE as i64),
            ("PLB_IO_PIPE", io_kind::PIPE as i64),
            ("PLB_IO_UNIX", io_kind::UNIX as i64),
            ("PLB_TRANSPORT_TCP", transport::TCP as i64),
            ("PLB_TRANSPORT_UDP", transport::UDP as i64),
            ("PLB_TRANSPORT_UNIX_STREAM", transport::UNIX_STREAM as i64),
            ("PLB_TRANSPORT_UNIX_DGRAM", transport::UNIX_DGRAM as i64),
            ("PLB_DIR_CONNECT", direction::CONNECT as i64),
            ("PLB_DIR_ACCEPT", direction::ACCEPT as i64),
            ("PLB_FILTER_ALLOW_PIDS", filter::ALLOW_PIDS as i64),
            ("PLB_FILTER_ALLOW_CGROUPS", filter::ALLOW_CGROUPS as i64),
            ("PLB_FILTER_ALLOW_COMMS", filter::ALLOW_COMMS as i64),
            ("PLB_FILTER_HAS_PIDS", filter::HAS_PIDS as i64),
            ("PLB_FILTER_HAS_CGROUPS", filter::HAS_CGROUPS as i64),
            ("PLB_FILTER_HAS_COMMS", filter::HAS_COMMS as i64),
            ("PLB_FILTER_ALLOW", filter::ALLOW as i64),
            ("PLB_FILTER_DENY", filter::DENY as i64),
            ("PLB_SHM_GET", shm_op::GET as i64),
            ("PLB_SHM_ATTACH", shm_op::ATTACH as i64),
            ("PLB_EV_TLS_DATA", kind::TLS_DATA as i64),
            ("PLB_TLS_CHUNK", TLS_CHUNK as i64),
            ("PLB_TLS_MAX_CHUNKS", TLS_MAX_CHUNKS as i64),
            ("PLB_TLS_OPENSSL", tls_library::OPENSSL as i64),
            ("PLB_TLS_GO", tls_library::GO as i64),
            ("PLB_TLS_WRITE", tls_direction::WRITE as i64),
            ("PLB_TLS_READ", tls_direction::READ as i64),
            ("PLB_EV_TLS_SNI", kind::TLS_SNI as i64),
            ("PLB_TLS_SNI_MAX", TLS_SNI_MAX as i64),
            ("PLB_EV_CUDA", kind::CUDA as i64),
            ("PLB_EV_NCCL", kind::NCCL as i64),
            ("PLB_NCCL_ID_BYTES", NCCL_ID_BYTES as i64),
            ("PLB_CUDA_LAUNCH_KERNEL", cuda_api::LAUNCH_KERNEL as i64),
            ("PLB_CUDA_MEMCPY", cuda_api::MEMCPY as i64),
            ("PLB_CUDA_MEMCPY_ASYNC", cuda_api::MEMCPY_ASYNC as i64),
            ("PLB_CUDA_MALLOC", cuda_api::MALLOC as i64),
            ("PLB_CUDA_FREE", cuda_api::FREE as i64),
            ("PLB_CUDA_STREAM_SYNCHRONIZE", cuda_api::STREAM_SYNCHRONIZE as i64),
            ("PLB_CUDA_DEVICE_SYNCHRONIZE", cuda_api::DEVICE_SYNCHRONIZE as i64),
            ("PLB_CUDA_LAUNCH_KERNEL_EX", cuda_api::LAUNCH_KERNEL_EX as i64),
            ("PLB_CUDA_GRAPH_LAUNCH", cuda_api::GRAPH_LAUNCH as i64),
            ("PLB_CUDA_SET_DEVICE", cuda_api::SET_DEVICE as i64),
            ("PLB_NCCL_COMM_INIT", nccl_op::COMM_INIT as i64),
            ("PLB_NCCL_ALL_REDUCE", nccl_op::ALL_REDUCE as i64),
            ("PLB_NCCL_ALL_GATHER", nccl_op::ALL_GATHER as i64),
            ("PLB_NCCL_REDUCE_SCATTER", nccl_op::REDUCE_SCATTER as i64),
            ("PLB_NCCL_BROADCAST", nccl_op::BROADCAST as i64),
            ("PLB_NCCL_REDUCE", nccl_op::REDUCE as i64),
            ("PLB_NCCL_SEND", nccl_op::SEND as i64),
            ("PLB_NCCL_RECV", nccl_op::RECV as i64),
            ("PLB_NCCL_GROUP_START", nccl_op::GROUP_START as i64),
            ("PLB_NCCL_GROUP_END", nccl_op::GROUP_END as i64),
            ("PLB_NCCL_COMM_SPLIT", nccl_op::COMM_SPLIT as i64),
            ("PLB_NCCL_COMM_DESTROY", nccl_op::COMM_DESTROY as i64),
        ];
        for (name, value) in expect {
            assert_eq!(c.get(*name), Some(value), "{name}");
        }
        assert_eq!(c.len(), expect.len(), "C constants with no Rust mirror: {:?}", c.keys());
    }
}
