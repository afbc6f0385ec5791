// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Network: TCP connects (completed or failed, with latency), accepts, and the
 * end of every TCP connection with its byte counts; connects of unix and UDP
 * sockets; DNS messages to and from port 53.
 *
 * TCP comes from sock:inet_sock_set_state, so every path that moves data
 * (write, send, sendto, sendmsg, sendfile, splice) is counted alike: the
 * bytes at close are the kernel's own tcp_sock counters. The process is
 * remembered per socket when it connects (SYN_SENT runs in its context) or
 * accepts (the syscall's exit), since later transitions run in softirq.
 *
 * DNS is read from packets by cgroup_skb programs on the root cgroup; a
 * cgroup/sock_create program remembers which process made each UDP socket.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "emit.bpf.h"
#include "filter.bpf.h"
#include "task_files.bpf.h"
#include "udp.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The DNS server port whose traffic is captured. */
const volatile __u16 plb_dns_port = 53;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} net_events SEC(".maps");

/* What is known of a TCP socket while it lives. */
struct tcp_owner {
	__u32 tgid;
	__u32 tid;
	__u64 syn_ns;         /* connect: SYN sent */
	__u64 established_ns;
	__u16 direction;
	__u16 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct tcp_owner);
} tcp_owners SEC(".maps");

/* The creator of each UDP socket, by socket cookie (for DNS). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64); /* pid_tgid */
} udp_owners SEC(".maps");

/* connect/accept arguments from syscall entry to exit. */
struct net_call {
	__u64 start_ns;
	__u64 addr; /* connect: user sockaddr */
	__s32 fd;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct net_call);
} net_calls SEC(".maps");

/* Records are small; the DNS record carries up to PLB_DNS_MAX bytes. */
#define SCRATCH_SIZE 1024
#define SCRATCH_MASK (SCRATCH_SIZE - 1)

struct net_scratch {
	char bytes[SCRATCH_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct net_scratch);
} net_scratch SEC(".maps");

static __always_inline void *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&net_scratch, &zero);
}

static __always_inline void fill_addrs(struct plb_sockaddr *local, struct plb_sockaddr *remote,
				       struct plb_inet_sock_set_state_ctx *ctx)
{
	__builtin_memset(local, 0, sizeof(*local));
	__builtin_memset(remote, 0, sizeof(*remote));
	local->family = remote->family = ctx->family;
	local->port = ctx->sport;
	remote->port = ctx->dport;
	if (ctx->family == AF_INET) {
		__builtin_memcpy(local->addr, ctx->saddr, 4);
		__builtin_memcpy(remote->addr, ctx->daddr, 4);
	} else {
		__builtin_memcpy(local->addr, ctx->saddr_v6, 16);
		__builtin_memcpy(remote->addr, ctx->daddr_v6, 16);
	}
}

/* Addresses of a socket from its struct sock (accept, UDP connect). */
static __always_inline void sock_addrs(struct sock *sk, struct plb_sockaddr *local, struct plb_sockaddr *remote)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	__builtin_memset(local, 0, sizeof(*local));
	__builtin_memset(remote, 0, sizeof(*remote));
	local->family = remote->family = family;
	local->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	remote->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__be32 local_v4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 remote_v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(local->addr, &local_v4, 4);
		__builtin_memcpy(remote->addr, &remote_v4, 4);
	} else {
		/* &array: the read takes the size of the whole address. */
		BPF_CORE_READ_INTO(&local->addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&remote->addr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline void header_for(struct plb_event_header *hdr, __u16 kind, __u16 size, __u32 tgid, __u32 tid)
{
	hdr->ts_boot_ns = bpf_ktime_get_boot_ns();
	hdr->cgroup_id = tgid == (bpf_get_current_pid_tgid() >> 32) ? bpf_get_current_cgroup_id() : 0;
	hdr->pid = tgid;
	hdr->tid = tid;
	hdr->kind = kind;
	hdr->size = size;
	hdr->_pad0 = 0;
}

static __always_inline void emit_connect(struct plb_inet_sock_set_state_ctx *ctx, struct tcp_owner *owner, __s32 result)
{
	struct plb_net_connect *e = plb_reserve(&net_events, sizeof(*e), PLB_EV_NET_CONNECT);

	if (!e)
		return;
	header_for(&e->hdr, PLB_EV_NET_CONNECT, sizeof(*e), owner->tgid, owner->tid);
	fill_addrs(&e->local, &e->remote, ctx);
	e->sock_id = (__u64)ctx->skaddr;
	e->latency_ns = e->hdr.ts_boot_ns - owner->syn_ns;
	e->result = result;
	e->transport = PLB_TRANSPORT_TCP;
	e->direction = PLB_DIR_CONNECT;
	plb_submit(&net_events, e, PLB_EV_NET_CONNECT);
}

static __always_inline void emit_close(struct plb_inet_sock_set_state_ctx *ctx, struct tcp_owner *owner)
{
	struct tcp_sock *tp = (struct tcp_sock *)ctx->skaddr;
	struct plb_net_close *e = plb_reserve(&net_events, sizeof(*e), PLB_EV_NET_CLOSE);

	if (!e)
		return;
	header_for(&e->hdr, PLB_EV_NET_CLOSE, sizeof(*e), owner ? owner->tgid : 0, owner ? owner->tid : 0);
	fill_addrs(&e->local, &e->remote, ctx);
	e->sock_id = (__u64)ctx->skaddr;
	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->established_ns = owner ? owner->established_ns : 0;
	e->closed_ns = e->hdr.ts_boot_ns;
	e->old_state = ctx->oldstate;
	e->direction = owner ? owner->direction : 0;
	e->shutdown = BPF_CORE_READ_BITFIELD_PROBED((struct sock *)tp, sk_shutdown);
	e->_pad0 = 0;
	e->snd_una = BPF_CORE_READ(tp, snd_una);
	e->write_seq = BPF_CORE_READ(tp, write_seq);
	plb_submit(&net_events, e, PLB_EV_NET_CLOSE);
}

SEC("tracepoint/sock/inet_sock_set_state")
int plb_inet_sock_set_state(struct plb_inet_sock_set_state_ctx *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	struct tcp_owner *owner;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;

	if (ctx->newstate == TCP_SYN_SENT) {
		/* connect(): this runs in the connecting process. */
		__u64 pid_tgid = bpf_get_current_pid_tgid();
		struct tcp_owner fresh = {
			.tgid = pid_tgid >> 32,
			.tid = (__u32)pid_tgid,
			.syn_ns = bpf_ktime_get_boot_ns(),
			.direction = PLB_DIR_CONNECT,
		};

		if (plb_filtered(PLB_EV_NET_CONNECT))
			return 0;
		if (bpf_map_update_elem(&tcp_owners, &sk, &fresh, BPF_ANY) != 0)
			plb_count(PLB_EV_NET_CONNECT, PLB_OUT_MAP_FULL);
		return 0;
	}

	owner = bpf_map_lookup_elem(&tcp_owners, &sk);
	if (ctx->oldstate == TCP_SYN_SENT) {
		if (!owner)
			return 0;
		if (ctx->newstate == TCP_ESTABLISHED) {
			owner->established_ns = bpf_ktime_get_boot_ns();
			emit_connect(ctx, owner, 0);
			return 0;
		}
		if (ctx->newstate == TCP_CLOSE) {
			struct sock *sock = (struct sock *)ctx->skaddr;

			emit_connect(ctx, owner, -BPF_CORE_READ(sock, sk_err));
			bpf_map_delete_elem(&tcp_owners, &sk);
		}
		return 0;
	}
	if (ctx->oldstate == TCP_SYN_RECV && ctx->newstate == TCP_ESTABLISHED) {
		/* A passive open: the owner is known once accept() returns it. */
		struct tcp_owner fresh = { .established_ns = bpf_ktime_get_boot_ns(), .direction = PLB_DIR_ACCEPT };

		bpf_map_update_elem(&tcp_owners, &sk, &fresh, BPF_ANY);
		return 0;
	}
	/* A listening socket closing is not a connection. */
	if (ctx->newstate == TCP_CLOSE && ctx->oldstate != TCP_LISTEN) {
		/* Connections the agent never saw open (older, or filtered) are
		 * reported too, without an owner, unless filtered. */
		if (owner && owner->tgid == 0 && owner->direction == PLB_DIR_ACCEPT && owner->established_ns == 0)
			owner = 0;
		emit_close(ctx, owner);
		if (owner)
			bpf_map_delete_elem(&tcp_owners, &sk);
	}
	return 0;
}

static __always_inline int remember_call(long fd, __u64 addr, __u16 kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct net_call call = { .start_ns = bpf_ktime_get_boot_ns(), .addr = addr, .fd = fd };

	if (plb_filtered(kind))
		return 0;
	bpf_map_update_elem(&net_calls, &tid, &call, BPF_ANY);
	return 0;
}

static __always_inline struct net_call *take_call(struct net_call *out)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct net_call *call = bpf_map_lookup_elem(&net_calls, &tid);

	if (!call)
		return 0;
	*out = *call;
	bpf_map_delete_elem(&net_calls, &tid);
	return out;
}

/* The unix socket record for `sk`, with its path from `path_from` (the
 * caller's sockaddr at connect, the bound address at accept). */
static __always_inline void emit_unix(struct sock *sk, struct socket *sock, struct net_call *call, long ret,
				      __u16 direction, const void *user_path, const void *kernel_path)
{
	struct plb_unix_connect *e = scratch();
	struct unix_sock *usk = (struct unix_sock *)sk;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	char *path;
	long n = 0;

	if (!e)
		return;
	header_for(&e->hdr, PLB_EV_UNIX_CONNECT, 0, pid_tgid >> 32, (__u32)pid_tgid);
	e->ino = plb_socket_ino(sock);
	e->peer_ino = plb_socket_ino(BPF_CORE_READ(usk, peer, sk_socket));
	e->peer_tgid = plb_pid_nr(BPF_CORE_READ(sk, sk_peer_pid));
	e->latency_ns = e->hdr.ts_boot_ns - call->start_ns;
	e->result = ret < 0 ? ret : 0;
	e->direction = direction;
	e->transport = BPF_CORE_READ(sock, type) == SOCK_DGRAM ? PLB_TRANSPORT_UNIX_DGRAM : PLB_TRANSPORT_UNIX_STREAM;
	e->_pad0 = 0;
	path = (char *)(e + 1);
	if (user_path)
		n = bpf_probe_read_user(path, PLB_UNIX_PATH_MAX, user_path) == 0 ? PLB_UNIX_PATH_MAX : 0;
	else if (kernel_path)
		n = bpf_probe_read_kernel(path, PLB_UNIX_PATH_MAX, kernel_path) == 0 ? PLB_UNIX_PATH_MAX : 0;
	e->path_len = n;
	e->hdr.size = sizeof(*e) + n;
	plb_emit(&net_events, e, (sizeof(*e) + n) & SCRATCH_MASK, PLB_EV_UNIX_CONNECT);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int plb_enter_connect(struct plb_syscall_enter_ctx *ctx)
{
	return remember_call(ctx->args[0], ctx->args[1], PLB_EV_UNIX_CONNECT);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int plb_exit_connect(struct plb_syscall_exit_ctx *ctx)
{
	struct net_call call;
	struct file *file;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!take_call(&call))
		return 0;
	file = plb_current_fd_file(call.fd);
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_UNIX) {
		/* sun_path follows the 2-byte family in the caller's sockaddr. */
		emit_unix(sk, sock, &call, ctx->ret, PLB_DIR_CONNECT, (void *)(call.addr + 2), 0);
		return 0;
	}
	if ((family == AF_INET || family == AF_INET6) && BPF_CORE_READ(sock, type) == SOCK_DGRAM) {
		struct plb_net_connect *e = plb_reserve(&net_events, sizeof(*e), PLB_EV_NET_CONNECT);
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		if (!e)
			return 0;
		header_for(&e->hdr, PLB_EV_NET_CONNECT, sizeof(*e), pid_tgid >> 32, (__u32)pid_tgid);
		sock_addrs(sk, &e->local, &e->remote);
		e->sock_id = (__u64)sk;
		e->latency_ns = e->hdr.ts_boot_ns - call.start_ns;
		e->result = ctx->ret < 0 ? ctx->ret : 0;
		e->transport = PLB_TRANSPORT_UDP;
		e->direction = PLB_DIR_CONNECT;
		plb_submit(&net_events, e, PLB_EV_NET_CONNECT);
	}
	/* TCP connects are reported from inet_sock_set_state. */
	return 0;
}

static __always_inline int accept_enter(struct plb_syscall_enter_ctx *ctx)
{
	return remember_call(ctx->args[0], 0, PLB_EV_NET_ACCEPT);
}

static __always_inline int accept_exit(struct plb_syscall_exit_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct net_call call;
	struct file *file;
	struct socket *sock;
	struct sock *sk;
	__u16 family;
	__u64 key;

	if (!take_call(&call) || ctx->ret < 0)
		return 0;
	file = plb_current_fd_file(ctx->ret);
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_UNIX) {
		struct unix_sock *usk = (struct unix_sock *)sk;
		struct unix_address *addr = BPF_CORE_READ(usk, addr);

		emit_unix(sk, sock, &call, ctx->ret, PLB_DIR_ACCEPT, 0, addr ? (void *)addr->name[0].sun_path : 0);
		return 0;
	}
	if (family != AF_INET && family != AF_INET6)
		return 0;

	/* The process that owns the connection from now on. */
	key = (__u64)sk;
	struct tcp_owner *owner = bpf_map_lookup_elem(&tcp_owners, &key);
	if (owner) {
		owner->tgid = pid_tgid >> 32;
		owner->tid = (__u32)pid_tgid;
	} else {
		struct tcp_owner fresh = { .tgid = pid_tgid >> 32, .tid = (__u32)pid_tgid, .direction = PLB_DIR_ACCEPT };

		bpf_map_update_elem(&tcp_owners, &key, &fresh, BPF_ANY);
	}

	struct plb_net_connect *e = plb_reserve(&net_events, sizeof(*e), PLB_EV_NET_ACCEPT);
	if (!e)
		return 0;
	header_for(&e->hdr, PLB_EV_NET_ACCEPT, sizeof(*e), pid_tgid >> 32, (__u32)pid_tgid);
	sock_addrs(sk, &e->local, &e->remote);
	e->sock_id = key;
	e->latency_ns = e->hdr.ts_boot_ns - call.start_ns; /* time waiting in accept */
	e->result = 0;
	e->transport = PLB_TRANSPORT_TCP;
	e->direction = PLB_DIR_ACCEPT;
	plb_submit(&net_events, e, PLB_EV_NET_ACCEPT);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int plb_enter_accept(struct plb_syscall_enter_ctx *ctx)
{
	return accept_enter(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int plb_exit_accept(struct plb_syscall_exit_ctx *ctx)
{
	return accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int plb_enter_accept4(struct plb_syscall_enter_ctx *ctx)
{
	return accept_enter(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int plb_exit_accept4(struct plb_syscall_exit_ctx *ctx)
{
	return accept_exit(ctx);
}

/* ---- DNS ------------------------------------------------------------- */

SEC("cgroup/sock_create")
int plb_sock_create(struct bpf_sock *ctx)
{
	__u64 cookie, pid_tgid;

	if (ctx->type != SOCK_DGRAM || (ctx->family != AF_INET && ctx->family != AF_INET6))
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	pid_tgid = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&udp_owners, &cookie, &pid_tgid, BPF_ANY);
	return 1;
}

/* Copies a DNS message (a UDP packet whose remote port is the DNS port) with
 * the process that owns the socket. Always lets the packet through. */
static __always_inline int dns_packet(struct __sk_buff *skb, __u8 egress)
{
	struct plb_dns_packet *e;
	struct plb_udp_header udp;
	struct plb_sockaddr src = {}, dst = {};
	__u32 udp_off;
	__u64 cookie, *owner;
	__u32 len;

	if (!plb_udp_packet(skb, &udp, &udp_off, &src, &dst))
		return 1;
	/* Queries leave to port 53; answers arrive from it. */
	if ((egress ? dst.port : src.port) != plb_dns_port)
		return 1;

	cookie = bpf_get_socket_cookie(skb);
	owner = bpf_map_lookup_elem(&udp_owners, &cookie);
	if (owner && plb_filtered_tgid(*owner >> 32, PLB_EV_NET_DNS))
		return 1;
	e = scratch();
	if (!e)
		return 1;
	len = bpf_ntohs(udp.len);
	len = len > sizeof(udp) ? len - sizeof(udp) : 0;
	if (len > PLB_DNS_MAX)
		len = PLB_DNS_MAX;
	if (len == 0)
		return 1;
	if (bpf_skb_load_bytes(skb, (udp_off & 0xff) + sizeof(udp), (void *)(e + 1), len & (PLB_DNS_MAX - 1) ?: 1)) {
		plb_count(PLB_EV_NET_DNS, PLB_OUT_READ_FAILED);
		return 1;
	}
	e->hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
	e->hdr.cgroup_id = 0;
	e->hdr.pid = owner ? *owner >> 32 : 0;
	e->hdr.tid = owner ? (__u32)*owner : 0;
	e->hdr.kind = PLB_EV_NET_DNS;
	e->hdr._pad0 = 0;
	e->local = egress ? src : dst;
	e->remote = egress ? dst : src;
	e->cookie = cookie;
	e->len = len & (PLB_DNS_MAX - 1) ?: PLB_DNS_MAX;
	e->egress = egress;
	__builtin_memset(e->_pad0, 0, sizeof(e->_pad0));
	e->hdr.size = sizeof(*e) + e->len;
	plb_emit(&net_events, e, (sizeof(*e) + e->len) & SCRATCH_MASK, PLB_EV_NET_DNS);
	return 1;
}

SEC("cgroup_skb/egress")
int plb_dns_egress(struct __sk_buff *skb)
{
	return dns_packet(skb, 1);
}

SEC("cgroup_skb/ingress")
int plb_dns_ingress(struct __sk_buff *skb)
{
	return dns_packet(skb, 0);
}
