/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The LLM endpoints a role may call ([roles.llm] allow), in the kernel.
 *
 * Part of the enforce object (included from enforce.bpf.c after its maps):
 * it needs the workload's pod and role, and the connect hooks.
 *
 * Two moments, both before any byte of a request leaves:
 * - connect: an address that only endpoints the role may not call have
 *   (`llm_addrs`, PLB_LLM_ADDR_DENY; the agent resolves their exact host
 *   names) is refused with EPERM by the cgroup connect hooks;
 * - the TLS server name: every TCP connection of a role with LLM rules is
 *   followed (`llm_socks`, by socket cookie) to its first packet with data.
 *   When that is a ClientHello naming a host of an endpoint the role may not
 *   call (`llm_names`, by the DNS-rule hash, `*.suffix` hosts included), or
 *   one whose server name cannot be read (split before it, or none) sent to
 *   an address an LLM endpoint has, the packet is dropped and so is every
 *   later one but a RST: not even the ClientHello leaves. The agent then
 *   aborts the connection with bpf_sock_destroy from the iter/tcp program
 *   below, run in the process's network namespace; where the kernel has no
 *   bpf_sock_destroy the socket stays silenced and the client waits for its
 *   own timeout.
 * Audit records would_deny and drops nothing.
 */
#ifndef PLUMBLINE_LLM_ENDPOINTS_BPF_H
#define PLUMBLINE_LLM_ENDPOINTS_BPF_H

/* What an address is to a role (value of llm_addrs). */
#define PLB_LLM_ADDR_DENY 1  /* only endpoints the role may not call have it */
#define PLB_LLM_ADDR_CHECK 2 /* an LLM endpoint has it: its server name decides */

/* What a server name is to a role (value of llm_names). */
#define PLB_LLM_NAME_ALLOWED 1
#define PLB_LLM_NAME_DENIED 2

/* The state of a followed connection. */
#define PLB_LLM_SOCK_PENDING 1   /* its first data not seen yet */
#define PLB_LLM_SOCK_DENIED 2    /* its packets are dropped; to be destroyed */
#define PLB_LLM_SOCK_DESTROYED 3 /* bpf_sock_destroy returned 0 */
#define PLB_LLM_SOCK_ABORT 4     /* the agent asks for it to be destroyed (a guardrail) */

#define TCP_FLAG_RST 0x04

struct plb_llm_sock {
	__u32 role;
	__u32 pod;
	__u32 tgid;
	__u8 state;
	__u8 llm_addr; /* sent to an address an LLM endpoint has */
	__u16 _pad0;
};

/* (role, address) → PLB_LLM_ADDR_*. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct plb_net_rule_addr);
	__type(value, __u8);
} llm_addrs SEC(".maps");

/* (name hash, role, below) → PLB_LLM_NAME_*. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct plb_dns_name);
	__type(value, __u8);
} llm_names SEC(".maps");

/* Followed TCP connections, by socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct plb_llm_sock);
} llm_socks SEC(".maps");

/* [0]: connections the iter/tcp program destroyed so far. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} llm_destroyed SEC(".maps");

struct llm_scratch {
	__u8 name[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct llm_scratch);
} llm_scratch SEC(".maps");

static __always_inline void llm_emit(__u64 cgroup_id, __u32 tgid, __u32 tid, const struct plb_sockaddr *remote,
				     __u32 role, __u32 pod, __u8 decision, __u8 mechanism, __u8 op)
{
	struct plb_enforce_net *e = plb_reserve(&enforce_events, sizeof(*e), PLB_EV_ENFORCE_NET);

	if (!e)
		return;
	e->hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
	e->hdr.cgroup_id = cgroup_id;
	e->hdr.pid = tgid;
	e->hdr.tid = tid;
	e->hdr.kind = PLB_EV_ENFORCE_NET;
	e->hdr.size = sizeof(*e);
	e->hdr._pad0 = 0;
	e->remote = *remote;
	e->role = role;
	e->pod = pod;
	e->decision = decision;
	e->mechanism = mechanism;
	e->op = op;
	e->protocol = IPPROTO_TCP;
	e->_pad0 = 0;
	plb_submit(&enforce_events, e, PLB_EV_ENFORCE_NET);
}

/* At connect (and unconnected send): 0 refuses, 1 lets the call go on. A TCP
 * connect that goes on is followed to its server name. */
static __always_inline int plb_llm_connect(struct bpf_sock_addr *ctx, struct plb_pod *pod, __u8 mode,
					   const __u8 addr[16], __u16 port, __u16 family, __u8 op, __u32 protocol)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct plb_net_rule_addr key = { .role = pod->role };
	struct plb_llm_sock sock = {};
	struct plb_sockaddr remote = {};
	__u64 cookie;
	__u8 *kind;

	if (mode == PLB_MODE_OFF)
		return 1;
	__builtin_memcpy(key.addr, addr, 16);
	kind = bpf_map_lookup_elem(&llm_addrs, &key);
	if (kind && *kind == PLB_LLM_ADDR_DENY) {
		if (family == AF_INET)
			__builtin_memcpy(remote.addr, &addr[12], 4);
		else
			__builtin_memcpy(remote.addr, addr, 16);
		remote.port = port;
		remote.family = family;
		llm_emit(bpf_get_current_cgroup_id(), pid_tgid >> 32, (__u32)pid_tgid, &remote, pod->role,
			 pod->pod,
			 mode == PLB_MODE_ENFORCE ? PLB_DECISION_DENIED : PLB_DECISION_WOULD_DENY,
			 PLB_MECH_CGROUP_SOCK_ADDR, PLB_NET_OP_LLM_CONNECT);
		/* Audit: recorded once, at connect; its server name is not judged again. */
		return mode == PLB_MODE_ENFORCE ? 0 : 1;
	}
	if (protocol != IPPROTO_TCP || op != PLB_NET_OP_CONNECT)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	sock.role = pod->role;
	sock.pod = pod->pod;
	sock.tgid = pid_tgid >> 32;
	sock.state = PLB_LLM_SOCK_PENDING;
	sock.llm_addr = kind != 0;
	bpf_map_update_elem(&llm_socks, &cookie, &sock, BPF_ANY);
	return 1;
}

/* ---- the server name of a ClientHello ----------------------------------- */

#define LLM_HELLO_NOT_TLS 0   /* the first data is not a TLS handshake */
#define LLM_HELLO_NAME 1      /* a server name was read */
#define LLM_HELLO_UNREADABLE 2 /* a handshake whose server name cannot be read */

struct hello_walk {
	struct __sk_buff *skb;
	__u32 pos;
	__u32 end;
	__u32 name_at;
	__u16 name_len;
	__u8 found;
	__u8 failed;
};

static long hello_ext_step(__u32 index, struct hello_walk *st)
{
	__u8 ext[4];
	__u16 type, len;

	if (st->pos + 4 > st->end)
		return 1; /* no server_name extension */
	if (bpf_skb_load_bytes(st->skb, st->pos, ext, 4)) {
		st->failed = 1;
		return 1;
	}
	type = (ext[0] << 8) | ext[1];
	len = (ext[2] << 8) | ext[3];
	if (type == 0) {
		__u8 sni[5];

		/* list length (2), name type (1, 0 = host_name), name length (2) */
		if (bpf_skb_load_bytes(st->skb, st->pos + 4, sni, 5) || sni[2] != 0) {
			st->failed = 1;
			return 1;
		}
		st->name_len = (sni[3] << 8) | sni[4];
		st->name_at = st->pos + 9;
		st->found = 1;
		return 1;
	}
	st->pos += 4 + len;
	return 0;
}

/* Reads the server name of the ClientHello at `off` into s->name. */
static __always_inline int hello_server_name(struct __sk_buff *skb, __u32 off, struct llm_scratch *s, __u32 *name_len)
{
	struct hello_walk st = { .skb = skb };
	__u8 rec[9], b[2];
	__u32 pos, len;

	if (bpf_skb_load_bytes(skb, off, rec, 1) || rec[0] != 0x16)
		return LLM_HELLO_NOT_TLS;
	/* record: type, version (2), length (2); handshake: type, length (3) */
	if (bpf_skb_load_bytes(skb, off, rec, 9) || rec[1] != 0x03)
		return LLM_HELLO_NOT_TLS;
	if (rec[5] != 0x01)
		return LLM_HELLO_UNREADABLE;
	/* client version (2), random (32), then the session id */
	pos = off + 9 + 2 + 32;
	if (bpf_skb_load_bytes(skb, pos, b, 1))
		return LLM_HELLO_UNREADABLE;
	pos += 1 + b[0];
	if (bpf_skb_load_bytes(skb, pos, b, 2)) /* cipher suites */
		return LLM_HELLO_UNREADABLE;
	pos += 2 + ((b[0] << 8) | b[1]);
	if (bpf_skb_load_bytes(skb, pos, b, 1)) /* compression methods */
		return LLM_HELLO_UNREADABLE;
	pos += 1 + b[0];
	if (bpf_skb_load_bytes(skb, pos, b, 2)) /* extensions */
		return LLM_HELLO_UNREADABLE;
	st.pos = pos + 2;
	st.end = st.pos + ((b[0] << 8) | b[1]);
	bpf_loop(64, hello_ext_step, &st, 0);
	if (!st.found || st.failed || st.name_len == 0 || st.name_len > sizeof(s->name))
		return LLM_HELLO_UNREADABLE;
	len = ((st.name_len - 1) & 0xff) + 1;
	if (bpf_skb_load_bytes(skb, st.name_at, s->name, len))
		return LLM_HELLO_UNREADABLE;
	*name_len = len;
	return LLM_HELLO_NAME;
}

/* The dotted name hashed as its DNS wire form is (PLB_NAME_HASH), from its
 * last byte to its first; at each label's start the name from there on is
 * looked up: the whole name exactly, a suffix as a `*.` host. The most
 * specific match holds. */
struct sni_hash {
	struct llm_scratch *s;
	__u64 hash;
	__u32 role;
	__u32 at;
	__u32 label_len;
	__u8 verdict;
};

static __always_inline void sni_lookup(struct sni_hash *st, bool below)
{
	struct plb_dns_name key = { .hash = st->hash, .role = st->role, .below = below };
	__u8 *value = bpf_map_lookup_elem(&llm_names, &key);

	if (value)
		st->verdict = *value;
}

static long sni_hash_step(__u32 index, struct sni_hash *st)
{
	__u8 byte;

	if (st->at == 0)
		return 1;
	st->at--;
	byte = st->s->name[st->at & 0xff];
	if (byte == '.') {
		st->hash = (st->hash ^ (st->label_len & 0xff)) * PLB_NAME_HASH_PRIME;
		st->label_len = 0;
		sni_lookup(st, true);
		return 0;
	}
	if (byte >= 'A' && byte <= 'Z')
		byte += 'a' - 'A';
	st->hash = (st->hash ^ byte) * PLB_NAME_HASH_PRIME;
	st->label_len++;
	if (st->at == 0) {
		st->hash = (st->hash ^ (st->label_len & 0xff)) * PLB_NAME_HASH_PRIME;
		sni_lookup(st, false);
	}
	return 0;
}

static __always_inline bool tcp_payload(struct __sk_buff *skb, __u32 *off, __u8 *flags, struct plb_sockaddr *remote)
{
	__u8 tcp[14];
	__u32 ip_len;

	if (skb->protocol == bpf_htons(0x0800)) {
		struct plb_ipv4_header ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.protocol != IPPROTO_TCP)
			return false;
		ip_len = ((ip.ver_ihl & 0x0f) * 4) & 0xff;
		remote->family = AF_INET;
		__builtin_memcpy(remote->addr, ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(0x86DD)) {
		struct plb_ipv6_header ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.nexthdr != IPPROTO_TCP)
			return false;
		ip_len = sizeof(ip);
		remote->family = AF_INET6;
		__builtin_memcpy(remote->addr, ip.daddr, 16);
	} else {
		return false;
	}
	if (bpf_skb_load_bytes(skb, ip_len, tcp, sizeof(tcp)))
		return false;
	remote->port = (tcp[2] << 8) | tcp[3];
	*flags = tcp[13];
	*off = ip_len + ((tcp[12] >> 4) * 4);
	return true;
}

/* A followed connection's first data: its server name decides. Every packet
 * of a connection refused here is dropped, but a RST. */
SEC("cgroup_skb/egress")
int plb_enforce_llm_egress(struct __sk_buff *skb)
{
	struct sni_hash st = { .hash = PLB_NAME_HASH_BASIS };
	struct plb_sockaddr remote = {};
	struct plb_llm_sock *sock;
	struct llm_scratch *s;
	struct plb_role *role;
	__u32 off, zero = 0, name_len = 0;
	__u64 cookie;
	__u8 flags, op;
	int hello;

	cookie = bpf_get_socket_cookie(skb);
	sock = bpf_map_lookup_elem(&llm_socks, &cookie);
	if (!sock || !tcp_payload(skb, &off, &flags, &remote))
		return 1;
	if (sock->state == PLB_LLM_SOCK_ABORT)
		return 1;
	if (sock->state != PLB_LLM_SOCK_PENDING)
		return (flags & TCP_FLAG_RST) ? 1 : 0;
	if (skb->len <= off)
		return 1; /* no data yet */
	s = bpf_map_lookup_elem(&llm_scratch, &zero);
	role = bpf_map_lookup_elem(&roles, &sock->role);
	if (!s || !role || role->llm_mode == PLB_MODE_OFF) {
		bpf_map_delete_elem(&llm_socks, &cookie);
		return 1;
	}
	hello = hello_server_name(skb, off, s, &name_len);
	if (hello == LLM_HELLO_NAME) {
		st.s = s;
		st.role = sock->role;
		st.at = name_len;
		bpf_loop(256, sni_hash_step, &st, 0);
	}
	if (hello == LLM_HELLO_NAME && st.verdict == PLB_LLM_NAME_DENIED)
		op = PLB_NET_OP_LLM_SERVER_NAME;
	else if (hello == LLM_HELLO_UNREADABLE && sock->llm_addr)
		op = PLB_NET_OP_LLM_UNREADABLE;
	else {
		bpf_map_delete_elem(&llm_socks, &cookie);
		return 1;
	}
	if (role->llm_mode != PLB_MODE_ENFORCE) {
		llm_emit(bpf_skb_cgroup_id(skb), sock->tgid, 0, &remote, sock->role, sock->pod, PLB_DECISION_WOULD_DENY,
			 PLB_MECH_CGROUP_SKB, op);
		bpf_map_delete_elem(&llm_socks, &cookie);
		return 1;
	}
	sock->state = PLB_LLM_SOCK_DENIED;
	llm_emit(bpf_skb_cgroup_id(skb), sock->tgid, 0, &remote, sock->role, sock->pod, PLB_DECISION_DENIED,
		 PLB_MECH_CGROUP_SKB, op);
	return 0;
}

/* ---- aborting connections: bpf_sock_destroy from iter/tcp --------------- */

struct bpf_iter_meta {
	void *seq;
	__u64 session_id;
	__u64 seq_num;
};

/* The context of iter/tcp (its layout is the kernel's ABI for iterators). */
struct plb_iter_tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
	uid_t uid;
};

/* skc_cookie, read with CO-RE: set once anything asked for the cookie. */
struct sock_common___cookie {
	struct {
		__s64 counter;
	} skc_cookie;
} __attribute__((preserve_access_index));

/* call bpf_sock_destroy: BPF_JMP|BPF_CALL with src BPF_PSEUDO_KFUNC_CALL (2)
 * and the marker 0x7ac0ffee as immediate; the agent writes the kernel's BTF
 * id of bpf_sock_destroy there before loading the object, and does not load
 * this program where the kernel has no such function (aya resolves no
 * kfunc externs). */
static __always_inline long plb_sock_destroy(struct sock_common *sk)
{
	register long r1 asm("r1") = (long)sk;
	register long r0 asm("r0");

	asm volatile(".byte 0x85, 0x20, 0x00, 0x00, 0xee, 0xff, 0xc0, 0x7a"
		     : "=r"(r0), "+r"(r1)
		     :
		     : "r2", "r3", "r4", "r5", "memory");
	return r0;
}

/* Destroys the followed connections refused here or named by the agent, in
 * the network namespace of the task that runs the iterator. */
SEC("iter/tcp")
int plb_llm_sock_destroy(struct plb_iter_tcp *ctx)
{
	struct sock_common *sk = ctx->sk_common;
	struct plb_llm_sock *sock;
	__u32 zero = 0;
	__u64 cookie, *count;

	if (!sk)
		return 0;
	cookie = BPF_CORE_READ((struct sock_common___cookie *)sk, skc_cookie.counter);
	if (!cookie)
		return 0;
	sock = bpf_map_lookup_elem(&llm_socks, &cookie);
	if (!sock || (sock->state != PLB_LLM_SOCK_DENIED && sock->state != PLB_LLM_SOCK_ABORT))
		return 0;
	if (plb_sock_destroy(sk) == 0) {
		sock->state = PLB_LLM_SOCK_DESTROYED;
		count = bpf_map_lookup_elem(&llm_destroyed, &zero);
		if (count)
			__sync_fetch_and_add(count, 1);
	}
	return 0;
}

#endif /* PLUMBLINE_LLM_ENDPOINTS_BPF_H */
