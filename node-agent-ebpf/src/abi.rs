//! Rust mirror of `bpf/include/plumbline_abi.h`.
//!
//! Field for field the same layout, checked by the test at the bottom against
//! what the C compiler printed (`bpf/abi_layout.c`, run by build.rs). Kinds and
//! outcomes stay plain integers: a value from the kernel that no Rust enum
//! knows must be representable.

use bytemuck::{Pod, Zeroable};

pub const ABI_VERSION: u32 = 1;
pub const COMM_LEN: usize = 16;
pub const FILENAME_MAX: usize = 256;
pub const ARGS_MAX: usize = 2048;

/// Record kinds (`enum plb_event_kind`).
pub mod kind {
    pub const PROC_EXEC: u16 = 1;
    pub const PROC_FORK: u16 = 2;
    pub const PROC_EXIT: u16 = 3;
    pub const PROC_EXEC_FAILED: u16 = 4;
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
    pub const MAX: u32 = 4;

    pub fn name(outcome: u32) -> &'static str {
        match outcome {
            EMITTED => "emitted",
            RINGBUF_FULL => "ringbuf_full",
            READ_FAILED => "read_failed",
            MAP_FULL => "map_full",
            _ => "unknown",
        }
    }
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
        let mut layout = CLayout {
            structs: BTreeMap::new(),
            fields: BTreeMap::new(),
            consts: BTreeMap::new(),
        };
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["struct", name, size] => {
                    layout
                        .structs
                        .insert(name.to_string(), size.parse().unwrap());
                }
                ["field", name, offset, size] => {
                    layout.fields.insert(
                        name.to_string(),
                        (offset.parse().unwrap(), size.parse().unwrap()),
                    );
                }
                ["const", name, value] => {
                    layout
                        .consts
                        .insert(name.to_string(), value.parse().unwrap());
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
        check_struct!(
            layout,
            checked,
            ProcExit,
            "plb_proc_exit",
            [hdr, start_boot_ns, exit_code, ppid, comm]
        );
        check_struct!(
            layout,
            checked,
            ProcExecFailed,
            "plb_proc_exec_failed",
            [
                hdr,
                start_boot_ns,
                error,
                filename_len,
                args_len,
                args_truncated,
                _pad0,
                comm,
                filename
            ]
        );
        // A field added on the C side without a Rust mirror fails here.
        let unchecked: Vec<&String> = layout
            .fields
            .keys()
            .filter(|k| !checked.contains(k))
            .collect();
        assert!(
            unchecked.is_empty(),
            "C fields with no Rust check: {unchecked:?}"
        );
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
            ("PLB_OUT_MAX", outcome::MAX as i64),
            ("PLB_COUNTERS_LEN", COUNTERS_LEN as i64),
        ];
        for (name, value) in expect {
            assert_eq!(c.get(*name), Some(value), "{name}");
        }
        assert_eq!(
            c.len(),
            expect.len(),
            "C constants with no Rust mirror: {:?}",
            c.keys()
        );
    }
}
