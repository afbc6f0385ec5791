// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Shared memory between processes: SysV segments created or found (shmget)
 * and attached (shmat). POSIX shared memory is a file under /dev/shm and is
 * seen by the file programs; pipes and unix sockets by the IO accounting.
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
	__uint(max_entries, 256 * 1024);
} ipc_events SEC(".maps");

struct shm_call {
	__u64 key;
	__u64 size;
	__s32 shmid;
	__u32 op;
	__u32 flags;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tid */
	__type(value, struct shm_call);
} shm_calls SEC(".maps");

static __always_inline int remember(struct shm_call *call)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (plb_filtered(PLB_EV_SHM))
		return 0;
	bpf_map_update_elem(&shm_calls, &tid, call, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_shmget")
int plb_enter_shmget(struct plb_syscall_enter_ctx *ctx)
{
	struct shm_call call = { .key = ctx->args[0], .size = ctx->args[1], .flags = ctx->args[2], .op = PLB_SHM_GET };
	return remember(&call);
}

SEC("tracepoint/syscalls/sys_enter_shmat")
int plb_enter_shmat(struct plb_syscall_enter_ctx *ctx)
{
	struct shm_call call = { .shmid = ctx->args[0], .flags = ctx->args[2], .op = PLB_SHM_ATTACH };
	return remember(&call);
}

static __always_inline int shm_exit(struct plb_syscall_exit_ctx *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct shm_call *call = bpf_map_lookup_elem(&shm_calls, &tid);
	struct plb_shm *e;

	if (!call)
		return 0;
	e = plb_reserve(&ipc_events, sizeof(*e), PLB_EV_SHM);
	if (e) {
		plb_fill_header(&e->hdr, PLB_EV_SHM, sizeof(*e), (struct task_struct *)bpf_get_current_task());
		e->result = ctx->ret;
		e->key = call->key;
		e->size = call->size;
		e->shmid = call->op == PLB_SHM_GET ? (ctx->ret >= 0 ? ctx->ret : -1) : call->shmid;
		e->op = call->op;
		e->flags = call->flags;
		e->_pad0 = 0;
		plb_submit(&ipc_events, e, PLB_EV_SHM);
	}
	bpf_map_delete_elem(&shm_calls, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_shmget")
int plb_exit_shmget(struct plb_syscall_exit_ctx *ctx)
{
	return shm_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_shmat")
int plb_exit_shmat(struct plb_syscall_exit_ctx *ctx)
{
	return shm_exit(ctx);
}
