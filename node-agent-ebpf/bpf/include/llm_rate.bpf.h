/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * LLM request rate per process, counted in the kernel ([roles.llm.rate]).
 *
 * Part of the enforce object (included from enforce.bpf.c after its maps):
 * the decision needs the workload's pod, which that object keeps and
 * inherits at fork, and the connect hooks that refuse a process's new
 * connections live there too. The agent attaches these uprobes to each file
 * holding OpenSSL, as it does the TLS capture's (uprobes live on the file).
 *
 * What is counted: a write (SSL_write / SSL_write_ex, at entry) whose
 * plaintext begins an HTTP/1.x request (a method token, a space, '/') on a
 * TLS connection whose server name (SSL_set_tlsext_host_name) is an LLM
 * endpoint host of the node (`llm_hosts`, filled by the agent), by a process
 * whose role has a rate. HTTP/2 requests (HEADERS frames) are not counted.
 *
 * The bucket is GCRA (struct plb_rate_bucket): one time stamp per process.
 * Threads of one process starting requests at the same instant are not
 * serialised (no lock in a uprobe): both may pass on the last token.
 *
 * Past the limit, at the write's entry, before the function body runs:
 *   hold: SIGSTOP (the whole process), the request paid for in advance; the
 *         agent sends SIGCONT once the bucket is back to 0 credit;
 *   kill: SIGKILL: no record of the request is encrypted or sent;
 *   deny: nothing here (the request's connection is open already); the
 *         connect hooks refuse the process's new TCP connections while its
 *         bucket has no token (plb_rate_refuses_connect);
 *   audit: recorded as would_deny, nothing stopped, nothing owed.
 */
#ifndef PLUMBLINE_LLM_RATE_BPF_H
#define PLUMBLINE_LLM_RATE_BPF_H

#define PLB_SIGKILL 9
#define PLB_SIGSTOP 19
#define PLB_RATE_HOST_MAX 256

/* Each role's rate limit, by role id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PLB_ROLES_MAX);
	__type(key, __u32);
	__type(value, struct plb_rate_rule);
} llm_rate_rules SEC(".maps");

/* Each (role, process)'s bucket; the agent removes those of processes gone. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct plb_rate_key);
	__type(value, struct plb_rate_bucket);
} llm_rate_buckets SEC(".maps");

/* The node's LLM endpoint hosts, by plb_rate_host_hash. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} llm_hosts SEC(".maps");

/* TLS connections (a process's SSL objects) to an LLM endpoint host. */
struct rate_conn_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rate_conn_key);
	__type(value, __u8);
} llm_conns SEC(".maps");

struct rate_host_scratch {
	char name[PLB_RATE_HOST_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_host_scratch);
} llm_rate_scratch SEC(".maps");

/* A host's hash: FNV-1a over its bytes, ASCII lower case, from the last to
 * the first, so the hash of every suffix is on the way (the agent computes
 * the same). An entry's value says how it matches (enum below); key 0 with
 * LLM_HOST_ANY makes every server name an LLM one (an endpoint host `*`). */
#define LLM_HOST_EXACT 1 /* the name itself */
#define LLM_HOST_BELOW 2 /* a name below it (`*.suffix`) */
#define LLM_HOST_ANY 4

struct host_hash {
	struct rate_host_scratch *s;
	__u64 hash;
	__u32 len;
	__u8 matched;
};

static long host_hash_step(__u32 index, struct host_hash *st)
{
	__u32 at;
	__u8 byte, *how;

	if (index >= st->len)
		return 1;
	at = st->len - 1 - index;
	byte = st->s->name[at & (PLB_RATE_HOST_MAX - 1)];
	if (byte >= 'A' && byte <= 'Z')
		byte += 'a' - 'A';
	st->hash = (st->hash ^ byte) * PLB_NAME_HASH_PRIME;
	if (at == 0) {
		how = bpf_map_lookup_elem(&llm_hosts, &st->hash);
		st->matched |= how && (*how & LLM_HOST_EXACT);
		return 1;
	}
	if (st->s->name[(at - 1) & (PLB_RATE_HOST_MAX - 1)] == '.') {
		how = bpf_map_lookup_elem(&llm_hosts, &st->hash);
		st->matched |= how && (*how & LLM_HOST_BELOW);
	}
	return 0;
}

/* long SSL_ctrl(SSL *s, int cmd, long larg, void *parg): command 55 names
 * the server; the connection is an LLM one when the name is an endpoint's. */
SEC("uprobe")
int plb_rate_ssl_ctrl(struct pt_regs *ctx)
{
	struct rate_conn_key key = { .ssl = ctx->di, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct host_hash st = { .hash = PLB_NAME_HASH_BASIS };
	__u64 any_key = 0;
	__u32 zero = 0;
	__u8 one = 1, *any;
	long n;

	if ((int)ctx->si != 55 || !ctx->cx)
		return 0;
	if (!bpf_map_lookup_elem(&pods, &key.tgid))
		return 0;
	st.s = bpf_map_lookup_elem(&llm_rate_scratch, &zero);
	if (!st.s)
		return 0;
	n = bpf_probe_read_user_str(st.s->name, sizeof(st.s->name), (void *)ctx->cx);
	if (n <= 1) {
		bpf_map_delete_elem(&llm_conns, &key);
		return 0;
	}
	st.len = n - 1;
	bpf_loop(PLB_RATE_HOST_MAX, host_hash_step, &st, 0);
	any = bpf_map_lookup_elem(&llm_hosts, &any_key);
	if (st.matched || (any && (*any & LLM_HOST_ANY)))
		bpf_map_update_elem(&llm_conns, &key, &one, BPF_ANY);
	else
		bpf_map_delete_elem(&llm_conns, &key); /* an SSL object used again */
	return 0;
}

/* The plaintext at `buf` begins an HTTP/1.x request line: an upper-case
 * method token, a space, then '/'. The shortest request line,
 * "GET / HTTP/1.1\r\n", is 16 bytes. */
static __always_inline bool http1_request_start(__u64 buf, __u64 len)
{
	char head[16];
	int method = 0;

	if (len < sizeof(head) || bpf_probe_read_user(head, sizeof(head), (void *)buf))
		return false;
#pragma unroll
	for (int i = 0; i < 14; i++) {
		if (head[i] >= 'A' && head[i] <= 'Z') {
			if (method != i)
				return false;
			method++;
			continue;
		}
		return method > 0 && head[i] == ' ' && head[i + 1] == '/';
	}
	return false;
}

static __always_inline void emit_rate(struct plb_pod *pod, const struct plb_rate_rule *rule, __u32 request,
				      __u8 decision, __u8 mechanism, __u8 op, const __u8 *addr, __u16 port,
				      __u16 family)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct plb_enforce_rate *e;

	e = plb_reserve(&enforce_events, sizeof(*e), PLB_EV_ENFORCE_RATE);
	if (!e)
		return;
	/* No task read: this runs in the cgroup connect hooks too. */
	e->hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
	e->hdr.cgroup_id = bpf_get_current_cgroup_id();
	e->hdr.pid = pid_tgid >> 32;
	e->hdr.tid = (__u32)pid_tgid;
	e->hdr.kind = PLB_EV_ENFORCE_RATE;
	e->hdr.size = sizeof(*e);
	e->hdr._pad0 = 0;
	__builtin_memset(&e->remote, 0, sizeof(e->remote));
	if (addr) {
		/* Records carry IPv4 in the first 4 bytes, as everywhere. */
		if (family == AF_INET)
			__builtin_memcpy(e->remote.addr, &addr[12], 4);
		else
			__builtin_memcpy(e->remote.addr, addr, 16);
		e->remote.port = port;
		e->remote.family = family;
	}
	e->role = pod->role;
	e->pod = pod->pod;
	e->request = request;
	e->requests = rule->requests;
	e->window_s = rule->window_ns / 1000000000ULL;
	e->decision = decision;
	e->mechanism = mechanism;
	e->op = op;
	e->_pad0 = 0;
	plb_submit(&enforce_events, e, PLB_EV_ENFORCE_RATE);
}

/* The number of the request that finds the bucket `ahead` ns ahead of time:
 * the requests the window holds already, plus this one. */
static __always_inline __u32 request_number(__u64 ahead, __u64 cost)
{
	return cost ? (ahead + cost - 1) / cost + 1 : 0;
}

static __always_inline int rate_request(__u64 ssl, __u64 buf, __u64 len)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct rate_conn_key conn = { .ssl = ssl, .tgid = tgid };
	struct plb_rate_bucket *b, fresh = {};
	struct plb_rate_rule *rule;
	struct plb_rate_key key;
	struct plb_pod *pod;
	__u64 now, tat, ahead;
	__u32 request;

	pod = bpf_map_lookup_elem(&pods, &tgid);
	if (!pod)
		return 0;
	rule = bpf_map_lookup_elem(&llm_rate_rules, &pod->role);
	if (!rule || rule->requests == 0 || rule->cost_ns == 0 || rule->mode == PLB_MODE_OFF)
		return 0;
	if (!bpf_map_lookup_elem(&llm_conns, &conn) || !http1_request_start(buf, len))
		return 0;
	key.role = pod->role;
	key.tgid = tgid;
	now = bpf_ktime_get_boot_ns();
	b = bpf_map_lookup_elem(&llm_rate_buckets, &key);
	if (!b) {
		fresh.tat_ns = now;
		bpf_map_update_elem(&llm_rate_buckets, &key, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&llm_rate_buckets, &key);
		if (!b)
			return 0;
	}
	tat = b->tat_ns > now ? b->tat_ns : now;
	ahead = tat - now;
	if (ahead + rule->cost_ns <= rule->window_ns) {
		b->tat_ns = tat + rule->cost_ns;
		return 0;
	}
	request = request_number(ahead, rule->cost_ns);
	if (rule->mode != PLB_MODE_ENFORCE) {
		emit_rate(pod, rule, request, PLB_DECISION_WOULD_DENY, PLB_MECH_UPROBE, PLB_RATE_OP_REQUEST, 0, 0, 0);
		return 0;
	}
	if (rule->action == PLB_RATE_HOLD) {
		/* Paid for now: released when the credit is back to 0. */
		b->tat_ns = tat + rule->cost_ns;
		b->held_ns = now;
		b->request = request;
		b->flags |= PLB_RATE_HELD;
		bpf_send_signal(PLB_SIGSTOP);
		emit_rate(pod, rule, request, PLB_DECISION_HELD, PLB_MECH_UPROBE, PLB_RATE_OP_REQUEST, 0, 0, 0);
	} else if (rule->action == PLB_RATE_KILL) {
		bpf_send_signal(PLB_SIGKILL);
		emit_rate(pod, rule, request, PLB_DECISION_KILLED_BEFORE, PLB_MECH_UPROBE, PLB_RATE_OP_REQUEST, 0, 0,
			  0);
	}
	return 0;
}

/* int SSL_write(SSL *ssl, const void *buf, int num) */
SEC("uprobe")
int plb_rate_ssl_write(struct pt_regs *ctx)
{
	int num = (int)ctx->dx;

	return rate_request(ctx->di, ctx->si, num > 0 ? num : 0);
}

/* int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written) */
SEC("uprobe")
int plb_rate_ssl_write_ex(struct pt_regs *ctx)
{
	return rate_request(ctx->di, ctx->si, ctx->dx);
}

/* A TCP connect of an enrolled process: true when it is refused because
 * the process's request budget is spent and its role denies (`deny`, or
 * `hold` past max_hold_s then `deny`). A connect finding a token back ends
 * the denial that followed a hold. */
static __always_inline bool plb_rate_refuses_connect(struct plb_pod *pod, __u32 tgid, const __u8 addr[16],
						     __u16 port, __u16 family)
{
	struct plb_rate_key key = { .role = pod->role, .tgid = tgid };
	struct plb_rate_bucket *b;
	struct plb_rate_rule *rule;
	__u64 now, tat, ahead;

	rule = bpf_map_lookup_elem(&llm_rate_rules, &key.role);
	if (!rule || rule->requests == 0 || rule->cost_ns == 0 || rule->mode == PLB_MODE_OFF)
		return false;
	b = bpf_map_lookup_elem(&llm_rate_buckets, &key);
	if (!b || (rule->action != PLB_RATE_DENY && !(b->flags & PLB_RATE_DENYING)))
		return false;
	now = bpf_ktime_get_boot_ns();
	tat = b->tat_ns > now ? b->tat_ns : now;
	ahead = tat - now;
	if (ahead + rule->cost_ns <= rule->window_ns) {
		if (b->flags & PLB_RATE_DENYING)
			b->flags &= ~PLB_RATE_DENYING;
		return false;
	}
	emit_rate(pod, rule, request_number(ahead, rule->cost_ns),
		  rule->mode == PLB_MODE_ENFORCE ? PLB_DECISION_DENIED : PLB_DECISION_WOULD_DENY,
		  PLB_MECH_CGROUP_SOCK_ADDR, PLB_RATE_OP_CONNECT, addr, port, family);
	return rule->mode == PLB_MODE_ENFORCE;
}

#endif /* PLUMBLINE_LLM_RATE_BPF_H */
