// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * IO accounting: bytes written to regular files, and bytes and time spent
 * inside read/write calls on pipes, FIFOs and unix sockets, per (process,
 * file or channel). Totals live in a map that only grows; the agent sweeps
 * it and reports what changed, so a write costs a map update, not a record.
 *
 * At syscall entry the file descriptor is classified; only interesting ones
 * (regular files for writes; pipes and unix sockets both ways) are followed
 * to the exit, where the result and the time spent are added.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "emit.bpf.h"
#include "filter.bpf.h"
#include "task_files.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, struct plb_io_key);
	__type(value, struct plb_io_stats);
} io_stats SEC(".maps");

/* A call in progress, from entry to exit. */
struct io_call {
	struct plb_io_key key;
	__u64 start_ns;
	__u64 peer_ino;
	__u32 peer_tgid;
	__u32 write;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct io_call);
} io_calls SEC(".maps");

static __always_inline int io_enter(long fd, __u32 write)
{
	struct file *file = plb_current_fd_file(fd);
	struct inode *inode;
	struct io_call call = {};
	__u32 tid;

	if (!file)
		return 0;
	inode = BPF_CORE_READ(file, f_inode);
	switch (BPF_CORE_READ(inode, i_mode) & S_IFMT) {
	case S_IFREG:
		if (!write)
			return 0; /* file reads are not accounted */
		call.key.kind = PLB_IO_FILE;
		break;
	case S_IFIFO:
		call.key.kind = PLB_IO_PIPE;
		break;
	case S_IFSOCK: {
		struct socket *sock = BPF_CORE_READ(file, private_data);
		struct sock *sk = BPF_CORE_READ(sock, sk);
		struct unix_sock *usk = (struct unix_sock *)sk;

		if (BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
			return 0; /* network bytes come from the TCP counters */
		call.key.kind = PLB_IO_UNIX;
		call.peer_ino = plb_socket_ino(BPF_CORE_READ(usk, peer, sk_socket));
		call.peer_tgid = plb_pid_nr(BPF_CORE_READ(sk, sk_peer_pid));
		break;
	}
	default:
		return 0;
	}
	if (plb_filtered(PLB_EV_IO))
		return 0;
	call.key.tgid = bpf_get_current_pid_tgid() >> 32;
	call.key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	call.key.ino = BPF_CORE_READ(inode, i_ino);
	call.key.gen = BPF_CORE_READ(inode, i_generation);
	call.start_ns = bpf_ktime_get_boot_ns();
	call.write = write;
	tid = (__u32)bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&io_calls, &tid, &call, BPF_ANY) != 0)
		plb_count(PLB_EV_IO, PLB_OUT_MAP_FULL);
	return 0;
}

static __always_inline int io_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct io_call *found = bpf_map_lookup_elem(&io_calls, &tid);
	struct plb_io_stats *stats;
	struct io_call call;
	__u64 now, spent, bytes;

	if (!found)
		return 0;
	call = *found;
	bpf_map_delete_elem(&io_calls, &tid);
	now = bpf_ktime_get_boot_ns();
	spent = now - call.start_ns;
	bytes = ret > 0 ? ret : 0;

	stats = bpf_map_lookup_elem(&io_stats, &call.key);
	if (!stats) {
		struct plb_io_stats fresh = { .first_ns = call.start_ns };

		bpf_map_update_elem(&io_stats, &call.key, &fresh, BPF_NOEXIST);
		stats = bpf_map_lookup_elem(&io_stats, &call.key);
		if (!stats) {
			plb_count(PLB_EV_IO, PLB_OUT_MAP_FULL);
			return 0;
		}
	}
	if (call.write) {
		__sync_fetch_and_add(&stats->bytes_written, bytes);
		__sync_fetch_and_add(&stats->writes, 1);
		__sync_fetch_and_add(&stats->write_blocked_ns, spent);
	} else {
		__sync_fetch_and_add(&stats->bytes_read, bytes);
		__sync_fetch_and_add(&stats->reads, 1);
		__sync_fetch_and_add(&stats->read_blocked_ns, spent);
	}
	stats->last_ns = now;
	if (call.peer_ino) {
		stats->peer_ino = call.peer_ino;
		stats->peer_tgid = call.peer_tgid;
	}
	plb_count(PLB_EV_IO, PLB_OUT_EMITTED);
	return 0;
}

#define IO_PROGRAMS(syscall, write)                                       \
	SEC("tracepoint/syscalls/sys_enter_" #syscall)                    \
	int plb_enter_##syscall(struct plb_syscall_enter_ctx *ctx)       \
	{                                                                 \
		return io_enter(ctx->args[0], write);                     \
	}                                                                 \
	SEC("tracepoint/syscalls/sys_exit_" #syscall)                     \
	int plb_exit_##syscall(struct plb_syscall_exit_ctx *ctx)         \
	{                                                                 \
		return io_exit(ctx->ret);                                 \
	}

IO_PROGRAMS(read, 0)
IO_PROGRAMS(readv, 0)
IO_PROGRAMS(pread64, 0)
IO_PROGRAMS(recvfrom, 0)
IO_PROGRAMS(recvmsg, 0)
IO_PROGRAMS(write, 1)
IO_PROGRAMS(writev, 1)
IO_PROGRAMS(pwrite64, 1)
IO_PROGRAMS(sendto, 1)
IO_PROGRAMS(sendmsg, 1)
