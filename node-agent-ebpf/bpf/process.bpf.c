// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Process lifecycle: exec (with argv), fork of new processes, exit of the last
 * thread, and execs that failed. One ring buffer of its own, so process
 * events are not crowded out by higher-volume capture.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "emit.bpf.h"
#include "filter.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024); /* the loader sets the configured size */
} proc_events SEC(".maps");

/* An exec record being built: the fixed part, then argv. The buffer is a
 * power of two larger than any record, so masking an offset or a size with
 * SCRATCH_MASK is enough for the verifier to prove every access in bounds
 * (the values themselves are already clamped to PLB_ARGS_MAX). */
#define SCRATCH_SIZE 8192
#define SCRATCH_MASK (SCRATCH_SIZE - 1)
struct plb_exec_scratch {
	union {
		struct plb_proc_exec exec;
		struct plb_proc_exec_failed failed;
		char bytes[SCRATCH_SIZE];
	};
};
_Static_assert(sizeof(struct plb_proc_exec) + 2 * PLB_ARGS_MAX <= SCRATCH_SIZE, "exec scratch");
_Static_assert(sizeof(struct plb_proc_exec_failed) + PLB_ARGS_MAX + PLB_ARG_STR_MAX <= SCRATCH_SIZE,
	       "exec_failed scratch");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct plb_exec_scratch);
} exec_scratch SEC(".maps");

/* The user pointers an execve was called with, kept from syscall entry to
 * exit so a failed exec can report what was asked for. */
struct exec_request {
	__u64 filename;
	__u64 argv;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32); /* tid */
	__type(value, struct exec_request);
} exec_requests SEC(".maps");

static __always_inline struct plb_exec_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&exec_scratch, &zero);
}

/* The bytes of a scratch record to send. The barrier keeps clang from folding
 * the mask into the addition, which would leave the verifier with a bound
 * larger than the buffer. */
static __always_inline __u64 record_size(__u64 size)
{
	barrier_var(size);
	return size & SCRATCH_MASK;
}

/* argv goes right after each variant's fixed part. */
#define EXEC_ARGS(s) ((s)->bytes + sizeof(struct plb_proc_exec))
#define FAILED_ARGS(s) ((s)->bytes + sizeof(struct plb_proc_exec_failed))

SEC("tp_btf/sched_process_exec")
int BPF_PROG(plb_sched_process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct plb_exec_scratch *s = scratch();
	struct plb_proc_exec *e;
	unsigned long arg_start, arg_end;
	__u64 len;
	long n;
	__u32 old_tid = old_pid;

	bpf_map_delete_elem(&exec_requests, &old_tid);
	if (!s || plb_filtered(PLB_EV_PROC_EXEC))
		return 0;
	e = &s->exec;

	e->start_boot_ns = plb_task_start_boot_ns(task);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->gid = BPF_CORE_READ(task, cred, gid.val);
	e->old_tid = old_pid;
	e->args_truncated = 0;
	e->_pad0[0] = e->_pad0[1] = e->_pad0[2] = 0;
	BPF_CORE_READ_INTO(&e->comm, task, comm);

	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n : 0;

	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len > PLB_ARGS_MAX) {
		len = PLB_ARGS_MAX;
		e->args_truncated = 1;
	}
	if (len && bpf_probe_read_user(EXEC_ARGS(s), len & (2 * PLB_ARGS_MAX - 1), (void *)arg_start) != 0) {
		len = 0;
		plb_count(PLB_EV_PROC_EXEC, PLB_OUT_READ_FAILED);
	}
	if (e->filename_len == 0)
		plb_count(PLB_EV_PROC_EXEC, PLB_OUT_READ_FAILED);
	e->args_len = len;

	plb_fill_header(&e->hdr, PLB_EV_PROC_EXEC, sizeof(*e) + len, task);
	plb_emit(&proc_events, e, record_size(sizeof(*e) + len), PLB_EV_PROC_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(plb_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	struct plb_proc_fork *e;

	/* A new thread shares its parent's process: only new processes count.
	 * Kernel threads never exec and would only add noise. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid) || (BPF_CORE_READ(child, flags) & PF_KTHREAD))
		return 0;
	/* The parent runs this: its comm and cgroup are the child's. */
	if (plb_filtered_tgid(BPF_CORE_READ(parent, tgid), PLB_EV_PROC_FORK))
		return 0;

	e = plb_reserve(&proc_events, sizeof(*e), PLB_EV_PROC_FORK);
	if (!e)
		return 0;
	plb_fill_header(&e->hdr, PLB_EV_PROC_FORK, sizeof(*e), child);
	e->start_boot_ns = plb_task_start_boot_ns(child);
	e->parent_pid = BPF_CORE_READ(parent, tgid);
	e->parent_tid = BPF_CORE_READ(parent, pid);
	e->uid = BPF_CORE_READ(child, cred, uid.val);
	e->gid = BPF_CORE_READ(child, cred, gid.val);
	BPF_CORE_READ_INTO(&e->comm, child, comm);
	plb_submit(&proc_events, e, PLB_EV_PROC_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(plb_sched_process_exit, struct task_struct *task)
{
	struct plb_proc_exit *e;

	/* do_exit() decrements signal->live before this tracepoint; zero means
	 * the last thread of the process is leaving. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0 || (BPF_CORE_READ(task, flags) & PF_KTHREAD))
		return 0;
	if (plb_filtered(PLB_EV_PROC_EXIT))
		return 0;

	e = plb_reserve(&proc_events, sizeof(*e), PLB_EV_PROC_EXIT);
	if (!e)
		return 0;
	plb_fill_header(&e->hdr, PLB_EV_PROC_EXIT, sizeof(*e), task);
	e->start_boot_ns = plb_task_start_boot_ns(task);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_INTO(&e->comm, task, comm);
	plb_submit(&proc_events, e, PLB_EV_PROC_EXIT);
	return 0;
}

static __always_inline int remember_exec_request(__u64 filename, __u64 argv)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_request req = { .filename = filename, .argv = argv };

	if (plb_filtered(PLB_EV_PROC_EXEC_FAILED))
		return 0;

	if (bpf_map_update_elem(&exec_requests, &tid, &req, BPF_ANY) != 0)
		plb_count(PLB_EV_PROC_EXEC_FAILED, PLB_OUT_MAP_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int plb_sys_enter_execve(struct plb_syscall_enter_ctx *ctx)
{
	return remember_exec_request(ctx->args[0], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int plb_sys_enter_execveat(struct plb_syscall_enter_ctx *ctx)
{
	return remember_exec_request(ctx->args[1], ctx->args[2]);
}

/* Reads argv pointer by pointer into the scratch tail; returns bytes used. */
static __always_inline __u32 read_user_argv(struct plb_exec_scratch *s, const char *const *argv, __u8 *truncated)
{
	char *args = FAILED_ARGS(s);
	__u32 off = 0;

	for (int i = 0; i < PLB_EXEC_FAILED_ARGC_MAX; i++) {
		const char *arg = 0;
		long n;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) != 0 || !arg)
			return off;
		if (off >= PLB_ARGS_MAX) {
			*truncated = 1;
			return PLB_ARGS_MAX;
		}
		n = bpf_probe_read_user_str(args + (off & (PLB_ARGS_MAX - 1)), PLB_ARG_STR_MAX, arg);
		if (n <= 0)
			return off;
		off += n;
	}
	return off;
}

static __always_inline int report_failed_exec(struct plb_syscall_exit_ctx *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_request *req = bpf_map_lookup_elem(&exec_requests, &tid);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct plb_exec_scratch *s;
	struct plb_proc_exec_failed *e;
	__u32 len;
	long n;

	if (!req)
		return 0;
	if (ctx->ret >= 0 || !(s = scratch())) {
		bpf_map_delete_elem(&exec_requests, &tid);
		return 0;
	}
	e = &s->failed;
	e->start_boot_ns = plb_task_start_boot_ns(task);
	e->error = ctx->ret;
	e->args_truncated = 0;
	__builtin_memset(e->_pad0, 0, sizeof(e->_pad0));
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	n = bpf_probe_read_user_str(e->filename, sizeof(e->filename), (const char *)req->filename);
	e->filename_len = n > 0 ? n : 0;
	len = read_user_argv(s, (const char *const *)req->argv, &e->args_truncated);
	if (len > PLB_ARGS_MAX) {
		len = PLB_ARGS_MAX;
		e->args_truncated = 1;
	}
	if (e->filename_len == 0)
		plb_count(PLB_EV_PROC_EXEC_FAILED, PLB_OUT_READ_FAILED);
	bpf_map_delete_elem(&exec_requests, &tid);
	e->args_len = len;

	plb_fill_header(&e->hdr, PLB_EV_PROC_EXEC_FAILED, sizeof(*e) + len, task);
	plb_emit(&proc_events, e, record_size(sizeof(*e) + len), PLB_EV_PROC_EXEC_FAILED);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int plb_sys_exit_execve(struct plb_syscall_exit_ctx *ctx)
{
	return report_failed_exec(ctx);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int plb_sys_exit_execveat(struct plb_syscall_exit_ctx *ctx)
{
	return report_failed_exec(ctx);
}
