// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * CUDA runtime and NCCL calls at the library boundary.
 *
 * The agent attaches these to every file that holds libcudart or libnccl
 * (uprobes live on the file, so every process mapping it is covered). An
 * entry probe remembers the call's arguments per thread; the one return
 * probe of each family sends the record with the result and how long the
 * call took, its header stamped with the entry time.
 *
 * Arguments follow the x86-64 System V ABI: di, si, dx, cx, r8, r9, then the
 * stack above the return address ([sp + 8], [sp + 16] ...), where a struct
 * passed by value that fits no register also goes (ncclUniqueId, 128 bytes).
 * A dim3 (12 bytes) takes two registers: x | y << 32, then z.
 *
 * NCCL carries its own copy of the CUDA runtime, so its internal CUDA calls
 * never pass through libcudart; a program that links the runtime statically
 * (CuPy) is not seen here.
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
	__uint(max_entries, 4 * 1024 * 1024);
} gpu_events SEC(".maps");

/* CUDA calls in flight, by thread (pid_tgid): the record as far as the entry
 * knows it, its header's time the entry's. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct plb_cuda_call);
} cuda_calls SEC(".maps");

struct nccl_pending {
	struct plb_nccl_call rec;
	__u64 comm_out; /* init, split: where the call writes the new ncclComm_t */
};

/* NCCL calls in flight, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct nccl_pending);
} nccl_calls SEC(".maps");

struct nccl_unique_id {
	__u8 bytes[PLB_NCCL_ID_BYTES];
};

/* The ncclUniqueId of each communicator init in flight, by thread: inits are
 * rare, so the id does not weigh on every pending call. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct nccl_unique_id);
} nccl_init_ids SEC(".maps");

/* What a communicator init sends: its record, then the id. */
struct nccl_init_record {
	struct plb_nccl_call rec;
	__u8 id[PLB_NCCL_ID_BYTES];
};

/* ncclResult_t values after which the created communicator is usable. */
#define PLB_NCCL_SUCCESS 0
#define PLB_NCCL_IN_PROGRESS 7

/* The n-th stack argument (1: [sp + 8]). 0 when it cannot be read. */
static __always_inline __u64 stack_arg(struct pt_regs *ctx, int n, __u16 kind)
{
	__u64 value = 0;

	if (bpf_probe_read_user(&value, sizeof(value), (void *)(ctx->sp + 8 * n)) != 0) {
		plb_count(kind, PLB_OUT_READ_FAILED);
		return 0;
	}
	return value;
}

/* ---- CUDA runtime ------------------------------------------------------ */

static __always_inline void cuda_call(struct plb_cuda_call *call, __u16 api)
{
	__builtin_memset(call, 0, sizeof(*call));
	call->api = api;
	call->device = -1;
	call->memcpy_kind = -1;
}

static __always_inline int cuda_enter(struct plb_cuda_call *call)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (plb_filtered(PLB_EV_CUDA))
		return 0;
	call->hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
	if (bpf_map_update_elem(&cuda_calls, &id, call, BPF_ANY) != 0)
		plb_count(PLB_EV_CUDA, PLB_OUT_MAP_FULL);
	return 0;
}

/* cudaError_t cudaLaunchKernel(const void *func, dim3 gridDim, dim3 blockDim,
 *                              void **args, size_t sharedMem, cudaStream_t stream)
 * and cudaLaunchKernel_ptsz. */
SEC("uprobe")
int plb_cuda_launch_kernel(struct pt_regs *ctx)
{
	struct plb_cuda_call call;

	cuda_call(&call, PLB_CUDA_LAUNCH_KERNEL);
	call.handle = ctx->di;
	call.grid[0] = (__u32)ctx->si;
	call.grid[1] = (__u32)(ctx->si >> 32);
	call.grid[2] = (__u32)ctx->dx;
	call.block[0] = (__u32)ctx->cx;
	call.block[1] = (__u32)(ctx->cx >> 32);
	call.block[2] = (__u32)ctx->r8;
	call.bytes = stack_arg(ctx, 1, PLB_EV_CUDA);
	call.stream = stack_arg(ctx, 2, PLB_EV_CUDA);
	return cuda_enter(&call);
}

/* The head of cudaLaunchConfig_t: dim3 gridDim, dim3 blockDim,
 * size_t dynamicSmemBytes, cudaStream_t stream. */
struct cuda_launch_config {
	__u32 grid[3];
	__u32 block[3];
	__u64 dynamic_smem_bytes;
	__u64 stream;
};

/* cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t *config,
 *                                 const void *func, void **args)
 * and cudaLaunchKernelExC_ptsz. */
SEC("uprobe")
int plb_cuda_launch_kernel_ex(struct pt_regs *ctx)
{
	struct plb_cuda_call call;
	struct cuda_launch_config config;

	cuda_call(&call, PLB_CUDA_LAUNCH_KERNEL_EX);
	call.handle = ctx->si;
	if (bpf_probe_read_user(&config, sizeof(config), (void *)ctx->di) == 0) {
		__builtin_memcpy(call.grid, config.grid, sizeof(call.grid));
		__builtin_memcpy(call.block, config.block, sizeof(call.block));
		call.bytes = config.dynamic_smem_bytes;
		call.stream = config.stream;
	} else {
		plb_count(PLB_EV_CUDA, PLB_OUT_READ_FAILED);
	}
	return cuda_enter(&call);
}

/* cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream)
 * and cudaGraphLaunch_ptsz. */
SEC("uprobe")
int plb_cuda_graph_launch(struct pt_regs *ctx)
{
	struct plb_cuda_call call;

	cuda_call(&call, PLB_CUDA_GRAPH_LAUNCH);
	call.handle = ctx->di;
	call.stream = ctx->si;
	return cuda_enter(&call);
}

/* cudaError_t cudaMemcpy(void *dst, const void *src, size_t count,
 *                        enum cudaMemcpyKind kind), and cudaMemcpy_ptds;
 * cudaMemcpyAsync(..., cudaStream_t stream) and its _ptsz add the stream. */
static __always_inline int cuda_memcpy(struct pt_regs *ctx, __u16 api, __u64 stream)
{
	struct plb_cuda_call call;

	cuda_call(&call, api);
	call.bytes = ctx->dx;
	call.memcpy_kind = (__s32)ctx->cx;
	call.stream = stream;
	return cuda_enter(&call);
}

SEC("uprobe")
int plb_cuda_memcpy(struct pt_regs *ctx)
{
	return cuda_memcpy(ctx, PLB_CUDA_MEMCPY, 0);
}

SEC("uprobe")
int plb_cuda_memcpy_async(struct pt_regs *ctx)
{
	return cuda_memcpy(ctx, PLB_CUDA_MEMCPY_ASYNC, ctx->r8);
}

/* cudaError_t cudaMalloc(void **devPtr, size_t size) */
SEC("uprobe")
int plb_cuda_malloc(struct pt_regs *ctx)
{
	struct plb_cuda_call call;

	cuda_call(&call, PLB_CUDA_MALLOC);
	call.bytes = ctx->si;
	return cuda_enter(&call);
}

/* A call of which only the call itself is kept. */
static __always_inline int cuda_enter_bare(__u16 api)
{
	struct plb_cuda_call call;

	cuda_call(&call, api);
	return cuda_enter(&call);
}

/* cudaError_t cudaFree(void *devPtr) */
SEC("uprobe")
int plb_cuda_free(struct pt_regs *ctx)
{
	return cuda_enter_bare(PLB_CUDA_FREE);
}

/* cudaError_t cudaStreamSynchronize(cudaStream_t stream), and _ptsz. */
SEC("uprobe")
int plb_cuda_stream_synchronize(struct pt_regs *ctx)
{
	struct plb_cuda_call call;

	cuda_call(&call, PLB_CUDA_STREAM_SYNCHRONIZE);
	call.stream = ctx->di;
	return cuda_enter(&call);
}

/* cudaError_t cudaDeviceSynchronize(void) */
SEC("uprobe")
int plb_cuda_device_synchronize(struct pt_regs *ctx)
{
	return cuda_enter_bare(PLB_CUDA_DEVICE_SYNCHRONIZE);
}

/* cudaError_t cudaSetDevice(int device) */
SEC("uprobe")
int plb_cuda_set_device(struct pt_regs *ctx)
{
	struct plb_cuda_call call;

	cuda_call(&call, PLB_CUDA_SET_DEVICE);
	call.device = (__s32)ctx->di;
	return cuda_enter(&call);
}

/* The return of any of the above. */
SEC("uretprobe")
int plb_cuda_return(struct pt_regs *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct plb_cuda_call *call = bpf_map_lookup_elem(&cuda_calls, &id);
	struct plb_cuda_call *rec;
	__u64 start;

	if (!call)
		return 0;
	start = call->hdr.ts_boot_ns;
	rec = plb_reserve(&gpu_events, sizeof(*rec), PLB_EV_CUDA);
	if (rec) {
		*rec = *call;
		plb_fill_header(&rec->hdr, PLB_EV_CUDA, sizeof(*rec), task);
		rec->hdr.ts_boot_ns = start;
		rec->duration_ns = bpf_ktime_get_boot_ns() - start;
		/* cudaError_t is an int: only eax is the function's. */
		rec->result = (__s32)ctx->ax;
		plb_submit(&gpu_events, rec, PLB_EV_CUDA);
	}
	bpf_map_delete_elem(&cuda_calls, &id);
	return 0;
}

/* ---- NCCL -------------------------------------------------------------- */

/* Fields a call does not have stay -1 (0 is a real rank, type and op). */
static __always_inline void nccl_call(struct nccl_pending *call, __u16 op)
{
	__builtin_memset(call, 0, sizeof(*call));
	call->rec.op = op;
	call->rec.datatype = -1;
	call->rec.reduce_op = -1;
	call->rec.peer = -1;
	call->rec.nranks = -1;
	call->rec.rank = -1;
	call->rec.color = -1;
}

/* Remembers the call until its return; false when it is filtered out or
 * could not be remembered. */
static __always_inline bool nccl_remember(struct nccl_pending *call)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (plb_filtered(PLB_EV_NCCL))
		return false;
	call->rec.hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
	if (bpf_map_update_elem(&nccl_calls, &id, call, BPF_ANY) != 0) {
		plb_count(PLB_EV_NCCL, PLB_OUT_MAP_FULL);
		return false;
	}
	return true;
}

static __always_inline int nccl_enter(struct nccl_pending *call)
{
	nccl_remember(call);
	return 0;
}

/* ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
 *               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
 *               cudaStream_t stream); ncclReduceScatter has the same
 * registers, its count being recvcount. */
static __always_inline int nccl_reduction(struct pt_regs *ctx, __u16 op)
{
	struct nccl_pending call;

	nccl_call(&call, op);
	call.rec.count = ctx->dx;
	call.rec.datatype = (__s32)ctx->cx;
	call.rec.reduce_op = (__s32)ctx->r8;
	call.rec.comm = ctx->r9;
	call.rec.stream = stack_arg(ctx, 1, PLB_EV_NCCL);
	return nccl_enter(&call);
}

SEC("uprobe")
int plb_nccl_all_reduce(struct pt_regs *ctx)
{
	return nccl_reduction(ctx, PLB_NCCL_ALL_REDUCE);
}

SEC("uprobe")
int plb_nccl_reduce_scatter(struct pt_regs *ctx)
{
	return nccl_reduction(ctx, PLB_NCCL_REDUCE_SCATTER);
}

/* ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
 *               ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) */
SEC("uprobe")
int plb_nccl_all_gather(struct pt_regs *ctx)
{
	struct nccl_pending call;

	nccl_call(&call, PLB_NCCL_ALL_GATHER);
	call.rec.count = ctx->dx;
	call.rec.datatype = (__s32)ctx->cx;
	call.rec.comm = ctx->r8;
	call.rec.stream = ctx->r9;
	return nccl_enter(&call);
}

/* ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
 *               ncclDataType_t datatype, int root, ncclComm_t comm,
 *               cudaStream_t stream) */
SEC("uprobe")
int plb_nccl_broadcast(struct pt_regs *ctx)
{
	struct nccl_pending call;

	nccl_call(&call, PLB_NCCL_BROADCAST);
	call.rec.count = ctx->dx;
	call.rec.datatype = (__s32)ctx->cx;
	call.rec.peer = (__s32)ctx->r8;
	call.rec.comm = ctx->r9;
	call.rec.stream = stack_arg(ctx, 1, PLB_EV_NCCL);
	return nccl_enter(&call);
}

/* ncclReduce(const void *sendbuff, void *recvbuff, size_t count,
 *            ncclDataType_t datatype, ncclRedOp_t op, int root,
 *            ncclComm_t comm, cudaStream_t stream) */
SEC("uprobe")
int plb_nccl_reduce(struct pt_regs *ctx)
{
	struct nccl_pending call;

	nccl_call(&call, PLB_NCCL_REDUCE);
	call.rec.count = ctx->dx;
	call.rec.datatype = (__s32)ctx->cx;
	call.rec.reduce_op = (__s32)ctx->r8;
	call.rec.peer = (__s32)ctx->r9;
	call.rec.comm = stack_arg(ctx, 1, PLB_EV_NCCL);
	call.rec.stream = stack_arg(ctx, 2, PLB_EV_NCCL);
	return nccl_enter(&call);
}

/* ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype,
 *          int peer, ncclComm_t comm, cudaStream_t stream); ncclRecv alike. */
static __always_inline int nccl_point_to_point(struct pt_regs *ctx, __u16 op)
{
	struct nccl_pending call;

	nccl_call(&call, op);
	call.rec.count = ctx->si;
	call.rec.datatype = (__s32)ctx->dx;
	call.rec.peer = (__s32)ctx->cx;
	call.rec.comm = ctx->r8;
	call.rec.stream = ctx->r9;
	return nccl_enter(&call);
}

SEC("uprobe")
int plb_nccl_send(struct pt_regs *ctx)
{
	return nccl_point_to_point(ctx, PLB_NCCL_SEND);
}

SEC("uprobe")
int plb_nccl_recv(struct pt_regs *ctx)
{
	return nccl_point_to_point(ctx, PLB_NCCL_RECV);
}

/* ncclGroupStart(void) and ncclGroupEnd(void) */
static __always_inline int nccl_group(__u16 op)
{
	struct nccl_pending call;

	nccl_call(&call, op);
	return nccl_enter(&call);
}

SEC("uprobe")
int plb_nccl_group_start(struct pt_regs *ctx)
{
	return nccl_group(PLB_NCCL_GROUP_START);
}

SEC("uprobe")
int plb_nccl_group_end(struct pt_regs *ctx)
{
	return nccl_group(PLB_NCCL_GROUP_END);
}

/* ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank)
 * and ncclCommInitRankConfig(..., int rank, ncclConfig_t *config): the id
 * takes no register, it is the first thing on the stack. */
SEC("uprobe")
int plb_nccl_comm_init_rank(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct nccl_unique_id unique_id;
	struct nccl_pending call;

	nccl_call(&call, PLB_NCCL_COMM_INIT);
	call.comm_out = ctx->di;
	call.rec.nranks = (__s32)ctx->si;
	call.rec.rank = (__s32)ctx->dx;
	if (!nccl_remember(&call))
		return 0;
	if (bpf_probe_read_user(&unique_id, sizeof(unique_id), (void *)(ctx->sp + 8)) == 0) {
		if (bpf_map_update_elem(&nccl_init_ids, &id, &unique_id, BPF_ANY) != 0)
			plb_count(PLB_EV_NCCL, PLB_OUT_MAP_FULL);
	} else {
		/* Sent without its id; an earlier init's must not stand in. */
		bpf_map_delete_elem(&nccl_init_ids, &id);
		plb_count(PLB_EV_NCCL, PLB_OUT_READ_FAILED);
	}
	return 0;
}

/* ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t *newcomm,
 *               ncclConfig_t *config) */
SEC("uprobe")
int plb_nccl_comm_split(struct pt_regs *ctx)
{
	struct nccl_pending call;

	nccl_call(&call, PLB_NCCL_COMM_SPLIT);
	call.rec.parent_comm = ctx->di;
	call.rec.color = (__s32)ctx->si;
	call.rec.peer = (__s32)ctx->dx; /* the key: orders the new ranks */
	call.comm_out = ctx->cx;
	return nccl_enter(&call);
}

/* ncclCommDestroy(ncclComm_t comm) */
SEC("uprobe")
int plb_nccl_comm_destroy(struct pt_regs *ctx)
{
	struct nccl_pending call;

	nccl_call(&call, PLB_NCCL_COMM_DESTROY);
	call.rec.comm = ctx->di;
	return nccl_enter(&call);
}

/* Fills a record from its pending call at return. */
static __always_inline void nccl_finish(struct plb_nccl_call *rec, struct nccl_pending *call, __s32 result,
					__u16 size, struct task_struct *task)
{
	__u64 start = call->rec.hdr.ts_boot_ns;
	__u64 comm = 0;

	*rec = call->rec;
	plb_fill_header(&rec->hdr, PLB_EV_NCCL, size, task);
	rec->hdr.ts_boot_ns = start;
	rec->duration_ns = bpf_ktime_get_boot_ns() - start;
	rec->result = result;
	/* A failed call may leave the caller's variable as it was: only a
	 * created communicator's handle is read. */
	if (call->comm_out) {
		if ((result == PLB_NCCL_SUCCESS || result == PLB_NCCL_IN_PROGRESS) &&
		    bpf_probe_read_user(&comm, sizeof(comm), (void *)call->comm_out) != 0)
			plb_count(PLB_EV_NCCL, PLB_OUT_READ_FAILED);
		rec->comm = comm;
	}
}

/* The return of any NCCL call above. */
SEC("uretprobe")
int plb_nccl_return(struct pt_regs *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	struct nccl_pending *call = bpf_map_lookup_elem(&nccl_calls, &id);
	/* ncclResult_t is an int: only eax is the function's. */
	__s32 result = (__s32)ctx->ax;

	if (!call)
		return 0;
	if (call->rec.op == PLB_NCCL_COMM_INIT) {
		struct nccl_unique_id *unique_id = bpf_map_lookup_elem(&nccl_init_ids, &id);
		struct nccl_init_record *out = plb_reserve(&gpu_events, sizeof(*out), PLB_EV_NCCL);

		if (out) {
			nccl_finish(&out->rec, call, result, sizeof(*out), task);
			if (unique_id) {
				__builtin_memcpy(out->id, unique_id->bytes, sizeof(out->id));
				out->rec.id_len = sizeof(out->id);
			} else {
				__builtin_memset(out->id, 0, sizeof(out->id));
				out->rec.id_len = 0;
				out->rec.hdr.size = sizeof(out->rec);
			}
			plb_submit(&gpu_events, out, PLB_EV_NCCL);
		}
		bpf_map_delete_elem(&nccl_init_ids, &id);
	} else {
		struct plb_nccl_call *rec = plb_reserve(&gpu_events, sizeof(*rec), PLB_EV_NCCL);

		if (rec) {
			nccl_finish(rec, call, result, sizeof(*rec), task);
			plb_submit(&gpu_events, rec, PLB_EV_NCCL);
		}
	}
	bpf_map_delete_elem(&nccl_calls, &id);
	return 0;
}
