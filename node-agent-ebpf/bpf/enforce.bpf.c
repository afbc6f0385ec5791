// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Enforcement without BPF LSM: a workload's network policy, decided before
 * any packet leaves.
 *
 * A workload is a process tree enrolled into a role by the agent (a pod in
 * `pods`, keyed by thread-group id); every process it forks inherits the
 * pod here, at fork, before the child runs, and keeps it across exec.
 *
 * cgroup/connect4|6 and cgroup/sendmsg4|6 are attached at the cgroup2 root
 * and decide by the current task, not by the socket's cgroup: a socket
 * created before its process was enrolled, or in another cgroup, is judged
 * the same. IPv4-mapped IPv6 destinations reach connect6 and are matched as
 * the IPv4 address they are. Returning 0 makes the syscall fail with EPERM;
 * in audit the call goes on and the decision is recorded as would_deny.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "emit.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} enforce_events SEC(".maps");

/* Enrolled processes: thread-group id → pod. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct plb_pod);
} pods SEC(".maps");

/* Each role's modes, by role id. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PLB_ROLES_MAX);
	__type(key, __u32);
	__type(value, struct plb_role);
} roles SEC(".maps");

/* What each role may execute: files and directory trees, by inode. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct plb_exec_key);
	__type(value, __u8);
} exec_allow SEC(".maps");

/* The exec record, with room for its path. */
struct exec_scratch {
	struct plb_enforce_exec e;
	char path[PLB_EXEC_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} exec_scratch SEC(".maps");

/* What each role may reach: address prefixes and their ports. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct plb_net_rule_key);
	__type(value, struct plb_net_rule);
} net_rules SEC(".maps");

SEC("tp_btf/sched_process_fork")
int BPF_PROG(plb_enforce_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid, child_tgid;
	struct plb_pod *pod;

	/* A new thread is already covered by its process's entry. */
	child_tgid = BPF_CORE_READ(child, tgid);
	if (BPF_CORE_READ(child, pid) != child_tgid)
		return 0;
	parent_tgid = BPF_CORE_READ(parent, tgid);
	pod = bpf_map_lookup_elem(&pods, &parent_tgid);
	if (pod)
		bpf_map_update_elem(&pods, &child_tgid, pod, BPF_ANY);
	return 0;
}

/* The executable itself is listed, or a directory above it is listed as a
 * tree. Walks at most PLB_EXEC_DEPTH directories, within the file's mount. */
static __always_inline bool exec_allowed(__u32 role, struct file *file)
{
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct plb_exec_key key = { .role = role };
	__u8 *cover;

	key.dev = BPF_CORE_READ(dentry, d_inode, i_sb, s_dev);
	key.ino = BPF_CORE_READ(dentry, d_inode, i_ino);
	if (bpf_map_lookup_elem(&exec_allow, &key))
		return true;
#pragma unroll
	for (int i = 0; i < PLB_EXEC_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);

		if (!parent || parent == dentry)
			break;
		dentry = parent;
		key.ino = BPF_CORE_READ(dentry, d_inode, i_ino);
		cover = bpf_map_lookup_elem(&exec_allow, &key);
		if (cover && *cover == PLB_EXEC_TREE)
			return true;
	}
	return false;
}

/* Runs once the exec succeeded and before the new image runs: a role that
 * does not allow the file kills the process (SIGKILL is delivered on the
 * way back to user space), or in audit records it. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(plb_enforce_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(task, tgid), zero = 0;
	struct exec_scratch *s;
	struct plb_role *role;
	struct plb_pod *pod;
	__u32 path_len;
	long len;

	pod = bpf_map_lookup_elem(&pods, &tgid);
	if (!pod)
		return 0;
	role = bpf_map_lookup_elem(&roles, &pod->role);
	if (!role || role->exec_mode == PLB_MODE_OFF || exec_allowed(pod->role, BPF_CORE_READ(bprm, file)))
		return 0;
	if (role->exec_mode == PLB_MODE_ENFORCE)
		bpf_send_signal(9);

	s = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!s)
		return 0;
	len = bpf_probe_read_kernel_str(s->path, sizeof(s->path), BPF_CORE_READ(bprm, filename));
	path_len = len > 0 ? (len - 1) & (PLB_EXEC_PATH_MAX - 1) : 0; /* without the NUL */
	s->e.hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
	s->e.hdr.cgroup_id = bpf_get_current_cgroup_id();
	s->e.hdr.pid = tgid;
	s->e.hdr.tid = BPF_CORE_READ(task, pid);
	s->e.hdr.kind = PLB_EV_ENFORCE_EXEC;
	s->e.hdr.size = sizeof(s->e) + path_len;
	s->e.hdr._pad0 = 0;
	s->e.role = pod->role;
	s->e.pod = pod->pod;
	s->e.decision = role->exec_mode == PLB_MODE_ENFORCE ? PLB_DECISION_KILLED_AFTER : PLB_DECISION_WOULD_DENY;
	s->e.mechanism = PLB_MECH_SIGNAL;
	s->e.path_len = path_len;
	s->e._pad0 = 0;
	plb_emit(&enforce_events, s, sizeof(s->e) + path_len, PLB_EV_ENFORCE_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(plb_enforce_exit, struct task_struct *task)
{
	__u32 tgid;

	/* Only when the last thread leaves: the others are still the workload. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	bpf_map_delete_elem(&pods, &tgid);
	return 0;
}

static __always_inline bool port_allowed(const struct plb_net_rule *rule, __u16 port)
{
	if (rule->nports == 0)
		return true;
#pragma unroll
	for (int i = 0; i < PLB_NET_RULE_PORTS; i++) {
		if (i < rule->nports && rule->ports[i] == port)
			return true;
	}
	return false;
}

/* 1 lets the call go on, 0 refuses it (EPERM). `addr` is IPv6 or IPv4-mapped. */
static __always_inline int decide_net(const __u8 addr[16], __u16 port, __u16 family, __u8 op, __u32 protocol)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct plb_net_rule_key key = { .prefixlen = 32 + 128 };
	struct plb_enforce_net *e;
	struct plb_net_rule *rule;
	struct plb_role *role;
	struct plb_pod *pod;
	__u8 mode;

	pod = bpf_map_lookup_elem(&pods, &tgid);
	if (!pod)
		return 1;
	role = bpf_map_lookup_elem(&roles, &pod->role);
	if (!role || role->net_mode == PLB_MODE_OFF)
		return 1;
	key.data.role = pod->role;
	__builtin_memcpy(key.data.addr, addr, 16);
	rule = bpf_map_lookup_elem(&net_rules, &key);
	if (rule && port_allowed(rule, port))
		return 1;

	mode = role->net_mode;
	e = plb_reserve(&enforce_events, sizeof(*e), PLB_EV_ENFORCE_NET);
	if (e) {
		e->hdr.ts_boot_ns = bpf_ktime_get_boot_ns();
		e->hdr.cgroup_id = bpf_get_current_cgroup_id();
		e->hdr.pid = tgid;
		e->hdr.tid = (__u32)pid_tgid;
		e->hdr.kind = PLB_EV_ENFORCE_NET;
		e->hdr.size = sizeof(*e);
		e->hdr._pad0 = 0;
		/* Records carry IPv4 in the first 4 bytes, as everywhere. */
		if (family == AF_INET) {
			__builtin_memset(e->remote.addr, 0, 16);
			__builtin_memcpy(e->remote.addr, &addr[12], 4);
		} else {
			__builtin_memcpy(e->remote.addr, addr, 16);
		}
		e->remote.port = port;
		e->remote.family = family;
		e->remote._pad0 = 0;
		e->role = pod->role;
		e->pod = pod->pod;
		e->decision = mode == PLB_MODE_ENFORCE ? PLB_DECISION_DENIED : PLB_DECISION_WOULD_DENY;
		e->mechanism = PLB_MECH_CGROUP_SOCK_ADDR;
		e->op = op;
		e->protocol = protocol;
		e->_pad0 = 0;
		plb_submit(&enforce_events, e, PLB_EV_ENFORCE_NET);
	}
	return mode == PLB_MODE_ENFORCE ? 0 : 1;
}

static __always_inline int decide_inet4(struct bpf_sock_addr *ctx, __u8 op)
{
	__u8 addr[16] = {};
	__u32 ip4 = ctx->user_ip4;

	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(&addr[12], &ip4, 4);
	return decide_net(addr, bpf_ntohs(ctx->user_port), AF_INET, op, ctx->protocol);
}

static __always_inline int decide_inet6(struct bpf_sock_addr *ctx, __u8 op)
{
	__u8 addr[16];
	__u32 word;

	/* user_ip6 is read a word at a time. */
	word = ctx->user_ip6[0];
	__builtin_memcpy(&addr[0], &word, 4);
	word = ctx->user_ip6[1];
	__builtin_memcpy(&addr[4], &word, 4);
	word = ctx->user_ip6[2];
	__builtin_memcpy(&addr[8], &word, 4);
	word = ctx->user_ip6[3];
	__builtin_memcpy(&addr[12], &word, 4);
	return decide_net(addr, bpf_ntohs(ctx->user_port), AF_INET6, op, ctx->protocol);
}

SEC("cgroup/connect4")
int plb_enforce_connect4(struct bpf_sock_addr *ctx)
{
	return decide_inet4(ctx, PLB_NET_OP_CONNECT);
}

SEC("cgroup/connect6")
int plb_enforce_connect6(struct bpf_sock_addr *ctx)
{
	return decide_inet6(ctx, PLB_NET_OP_CONNECT);
}

/* Unconnected UDP sends (a connected socket was decided at connect). */
SEC("cgroup/sendmsg4")
int plb_enforce_sendmsg4(struct bpf_sock_addr *ctx)
{
	return decide_inet4(ctx, PLB_NET_OP_SENDMSG);
}

SEC("cgroup/sendmsg6")
int plb_enforce_sendmsg6(struct bpf_sock_addr *ctx)
{
	return decide_inet6(ctx, PLB_NET_OP_SENDMSG);
}
