/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one ABI shared by Plumbline's BPF programs and the node agent.
 *
 * Every record a BPF program writes to a ring buffer starts with
 * struct plb_event_header; the header's kind says which struct follows and
 * size says how many bytes the whole record holds, so a reader can skip kinds
 * it does not know. Types are fixed-width and padding is explicit: the Rust
 * mirror (node-agent-ebpf/src/abi.rs) derives bytemuck::Pod, which refuses
 * implicit padding, and a layout test compares every offset with this file.
 *
 * Bump PLB_ABI_VERSION on any change; the agent refuses an object whose
 * version differs from the one it was built against.
 */
#ifndef PLUMBLINE_ABI_H
#define PLUMBLINE_ABI_H

#define PLB_ABI_VERSION 1

#define PLB_COMM_LEN 16
#define PLB_FILENAME_MAX 256
/* Bytes of NUL-separated argv sent with an exec. A power of two: the BPF side
 * masks offsets with PLB_ARGS_MAX - 1 so the verifier can bound them. */
#define PLB_ARGS_MAX 2048
/* Longest single argument read when argv is walked pointer by pointer. */
#define PLB_ARG_STR_MAX 1024
/* Arguments walked for a failed execve (read from the caller's memory). */
#define PLB_EXEC_FAILED_ARGC_MAX 32

/* Record kinds. Values are stable: they travel in ring buffers and index the
 * counters map. Rust keeps them as plain integers, never as an enum. */
enum plb_event_kind {
	PLB_EV_PROC_EXEC = 1,
	PLB_EV_PROC_FORK = 2,
	PLB_EV_PROC_EXIT = 3,
	PLB_EV_PROC_EXEC_FAILED = 4,
	PLB_EV_KIND_MAX = 64,
};

/* What happened to an event a program tried to emit. */
enum plb_outcome {
	PLB_OUT_EMITTED = 0,      /* written to the ring buffer */
	PLB_OUT_RINGBUF_FULL = 1, /* lost: no room in the ring buffer */
	PLB_OUT_READ_FAILED = 2,  /* emitted, but a string read failed (field empty) */
	PLB_OUT_MAP_FULL = 3,     /* a helper map could not take an entry */
	PLB_OUT_MAX = 4,
};

/* Index into the per-CPU counters map: one slot per (kind, outcome). */
#define PLB_COUNTER_INDEX(kind, outcome) ((kind) * PLB_OUT_MAX + (outcome))
#define PLB_COUNTERS_LEN (PLB_EV_KIND_MAX * PLB_OUT_MAX)

struct plb_event_header {
	__u64 ts_boot_ns; /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id;  /* cgroup v2 id of the task */
	__u32 pid;        /* thread-group id */
	__u32 tid;
	__u16 kind;       /* enum plb_event_kind */
	__u16 size;       /* bytes in the whole record, header included */
	__u32 _pad0;
};

/* sched_process_exec. Followed by args_len bytes of argv (NUL-separated),
 * read from the new image's mm->arg_start, where the kernel has just copied
 * them (so the pages are resident). */
struct plb_proc_exec {
	struct plb_event_header hdr;
	__u64 start_boot_ns;  /* task start, CLOCK_BOOTTIME ns */
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 old_tid;        /* the thread that called execve */
	__u16 filename_len;   /* bytes in filename including the NUL; 0 = unread */
	__u16 args_len;
	__u8 args_truncated;
	__u8 _pad0[3];
	char comm[PLB_COMM_LEN];
	char filename[PLB_FILENAME_MAX];
};

/* sched_process_fork of a new process (threads and kernel threads are not
 * reported). The header names the child. */
struct plb_proc_fork {
	struct plb_event_header hdr;
	__u64 start_boot_ns;  /* child start */
	__u32 parent_pid;
	__u32 parent_tid;
	__u32 uid;
	__u32 gid;
	char comm[PLB_COMM_LEN];
};

/* sched_process_exit of the last thread of a user process. */
struct plb_proc_exit {
	struct plb_event_header hdr;
	__u64 start_boot_ns;
	__u32 exit_code;      /* wait status: code << 8 | core dump 0x80 | signal */
	__u32 ppid;
	char comm[PLB_COMM_LEN];
};

/* sys_exit_execve/execveat with an error. Followed by args_len bytes of argv,
 * read at syscall exit from the caller's memory, which the kernel has just
 * touched while copying it. */
struct plb_proc_exec_failed {
	struct plb_event_header hdr;
	__u64 start_boot_ns;  /* start of the process that called execve */
	__s32 error;          /* negative errno */
	__u16 filename_len;
	__u16 args_len;
	__u8 args_truncated;
	__u8 _pad0[7];
	char comm[PLB_COMM_LEN];
	char filename[PLB_FILENAME_MAX];
};

_Static_assert(sizeof(struct plb_event_header) == 32, "plb_event_header size");
_Static_assert(sizeof(struct plb_proc_exec) == 336, "plb_proc_exec size");
_Static_assert(sizeof(struct plb_proc_fork) == 72, "plb_proc_fork size");
_Static_assert(sizeof(struct plb_proc_exit) == 64, "plb_proc_exit size");
_Static_assert(sizeof(struct plb_proc_exec_failed) == 328, "plb_proc_exec_failed size");
_Static_assert((PLB_ARGS_MAX & (PLB_ARGS_MAX - 1)) == 0, "PLB_ARGS_MAX is a power of two");

#endif /* PLUMBLINE_ABI_H */
