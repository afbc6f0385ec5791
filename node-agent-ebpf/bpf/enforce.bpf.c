// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Workload policy in the kernel: network, exec and files.
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
 *
 * Host names are allowed by the addresses DNS answers give them: a query an
 * enrolled process sends marks its socket, and the answer to it, read here
 * before the process can read it, adds its addresses to the role's
 * allow-list when the name is one the role allows. An address no rule and
 * no answer allowed is refused (fail closed): an address from DNS over
 * HTTPS or written into the program is not allowed.
 *
 * Exec and files are decided by inode: the file, then each directory above
 * it (crossing mounts to the mount point), against the role's rules. Two
 * sets of programs decide them, one per tier, and the agent loads one set:
 * - lsm: bprm_check_security, file_open, path_mknod (O_CREAT and mknod),
 *   path_unlink and path_rename return -EPERM before the effect;
 * - fallback (no BPF LSM): sched_process_exec and the exit of the open
 *   syscalls SIGKILL the process once the exec or the open succeeded
 *   (killed_after: the open itself happened, with its O_CREAT/O_TRUNC
 *   effects; io_uring opens pass no syscall and are not seen).
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "emit.bpf.h"
#include "task_files.bpf.h"
#include "path.bpf.h"
#include "udp.bpf.h"

#define EPERM 1
#define FMODE_WRITE 0x2

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
	__type(key, struct plb_role_inode);
	__type(value, __u8); /* enum plb_exec_cover */
} exec_allow SEC(".maps");

/* The port DNS servers answer on (capture.dns_port). */
const volatile __u16 plb_dns_port = 53;

/* UDP sockets an enrolled process sent a DNS query on: cookie → role. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} dns_socks SEC(".maps");

/* The host names each role allows, and their ports. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct plb_dns_name);
	__type(value, struct plb_net_rule);
} dns_names SEC(".maps");

/* The addresses DNS answers gave allowed names, with the names' ports; the
 * least recently used go first when it is full (and are refused again). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct plb_net_rule_addr);
	__type(value, struct plb_net_rule);
} dns_answers SEC(".maps");

/* A DNS answer's question name, and where its labels start. */
struct dns_scratch {
	__u8 name[256];
	__u8 starts[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} dns_scratch SEC(".maps");

/* Each role's file entries, by inode (value: enum plb_file_access). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct plb_role_inode);
	__type(value, __u8);
} file_rules SEC(".maps");

/* Proof that the LSM programs run: the agent writes its own tgid at [0]
 * and opens a file; file_open counts its opens at [1]. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lsm_probe SEC(".maps");

/* The file record, with room for its path. */
struct file_scratch {
	struct plb_enforce_file e;
	char path[PLB_PATH_BASE_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_scratch);
} file_scratch SEC(".maps");

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

/* LLM request rate per process: uprobes at the TLS write, and the connect
 * refusals of `deny` (uses pods and enforce_events). */
#include "llm_rate.bpf.h"

/* The LLM endpoints a role may call: refused at connect, or by the TLS
 * server name, and aborted with bpf_sock_destroy (uses pods, roles and
 * enforce_events). */
#include "llm_endpoints.bpf.h"

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

/* A walk from a file up to the root, looking each inode up in a role's
 * rules: the exec allow-list, or the file rules. */
struct rule_walk {
	struct dentry *dentry;
	struct mount *mnt; /* NULL: the walk stays within the dentry's filesystem */
	__u32 role;
	__u8 exec;   /* look up exec_allow, else file_rules */
	__u8 steps;
	__u8 found;  /* exec: an entry covers the file; files: the nearest entry's access */
	__u8 done;   /* reached the root, or decided */
};

static long rule_step(__u32 index, struct rule_walk *st)
{
	/* Locals, not st->...: CO-RE relocations apply to kernel types only. */
	struct dentry *dentry = st->dentry;
	struct mount *mnt = st->mnt;
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	struct plb_role_inode key = { .role = st->role };
	struct dentry *parent;
	__u8 *value;

	if (inode) {
		key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		key.ino = BPF_CORE_READ(inode, i_ino);
		value = bpf_map_lookup_elem(st->exec ? (void *)&exec_allow : (void *)&file_rules, &key);
		if (value && st->exec && (st->steps == 0 || *value == PLB_EXEC_TREE)) {
			st->found = 1;
			goto done;
		}
		if (value && !st->exec) {
			/* A deny anywhere above wins; else the nearest entry decides. */
			if (*value == PLB_FILE_DENY) {
				st->found = PLB_FILE_DENY;
				goto done;
			}
			if (!st->found)
				st->found = *value;
		}
	}
	st->steps++;
	if (mnt) {
		int crossed = plb_cross_mount(&dentry, &mnt);

		if (crossed < 0)
			goto done; /* the namespace root */
		if (crossed) {
			st->dentry = dentry;
			st->mnt = mnt;
			return 0;
		}
	}
	parent = BPF_CORE_READ(dentry, d_parent);
	if (!parent || parent == dentry)
		goto done;
	st->dentry = parent;
	return 0;
done:
	st->done = 1;
	return 1;
}

/* The walk from (dentry, vfsmnt); vfsmnt may be NULL. */
static __always_inline struct rule_walk walk_rules(__u32 role, bool exec, struct dentry *dentry,
						    struct vfsmount *vfsmnt)
{
	struct rule_walk st = {
		.dentry = dentry,
		.mnt = vfsmnt ? plb_real_mount(vfsmnt) : 0,
		.role = role,
		.exec = exec,
	};

	if (dentry)
		bpf_loop(PLB_PATH_DEPTH, rule_step, &st, 0);
	return st;
}

/* The role allows executing `file`: the file is listed, or a directory above
 * it is listed as a tree. */
static __always_inline bool exec_allowed(__u32 role, struct file *file)
{
	struct rule_walk walk = walk_rules(role, true, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt));

	return walk.found;
}

/* The role allows the file at (dentry, vfsmnt), for writing when `write`: a
 * deny covering it wins, else the nearest entry decides, and a file no entry
 * covers is refused (so is one too deep to walk to the root). */
static __always_inline bool file_allowed(__u32 role, struct dentry *dentry, struct vfsmount *vfsmnt, bool write)
{
	struct rule_walk walk = walk_rules(role, false, dentry, vfsmnt);

	if (!walk.done || walk.found == 0 || walk.found == PLB_FILE_DENY)
		return false;
	return !(write && walk.found == PLB_FILE_READ_ONLY);
}

/* The current process's workload, when it has one. */
static __always_inline bool current_pod(struct plb_pod *out)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct plb_pod *pod = bpf_map_lookup_elem(&pods, &tgid);

	if (!pod)
		return false;
	*out = *pod;
	return true;
}

/* What a role's mode makes of a refusal by `mechanism`. */
static __always_inline __u8 decision_of(__u8 mode, __u8 mechanism)
{
	if (mode != PLB_MODE_ENFORCE)
		return PLB_DECISION_WOULD_DENY;
	return mechanism == PLB_MECH_LSM ? PLB_DECISION_DENIED : PLB_DECISION_KILLED_AFTER;
}

static __always_inline void emit_exec(struct plb_pod *pod, __u8 decision, __u8 mechanism, const char *filename)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct exec_scratch *s;
	__u32 path_len, zero = 0;
	long len;

	s = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!s)
		return;
	len = bpf_probe_read_kernel_str(s->path, sizeof(s->path), filename);
	path_len = len > 0 ? (len - 1) & (PLB_EXEC_PATH_MAX - 1) : 0; /* without the NUL */
	plb_fill_header(&s->e.hdr, PLB_EV_ENFORCE_EXEC, sizeof(s->e) + path_len, task);
	s->e.role = pod->role;
	s->e.pod = pod->pod;
	s->e.decision = decision;
	s->e.mechanism = mechanism;
	s->e.path_len = path_len;
	s->e._pad0 = 0;
	plb_emit(&enforce_events, s, sizeof(s->e) + path_len, PLB_EV_ENFORCE_EXEC);
}

/* Decides an exec of the current process by `mechanism`: 0 lets it go on,
 * -EPERM refuses it (LSM); the fallback kills the process instead. */
static __always_inline int decide_exec(struct linux_binprm *bprm, __u8 mechanism)
{
	struct plb_role *role;
	struct plb_pod pod;
	__u8 mode;

	if (!current_pod(&pod))
		return 0;
	role = bpf_map_lookup_elem(&roles, &pod.role);
	if (!role || role->exec_mode == PLB_MODE_OFF || exec_allowed(pod.role, BPF_CORE_READ(bprm, file)))
		return 0;
	mode = role->exec_mode;
	if (mode == PLB_MODE_ENFORCE && mechanism == PLB_MECH_SIGNAL)
		bpf_send_signal(9);
	emit_exec(&pod, decision_of(mode, mechanism), mechanism, BPF_CORE_READ(bprm, filename));
	return mode == PLB_MODE_ENFORCE && mechanism == PLB_MECH_LSM ? -EPERM : 0;
}

static __always_inline void emit_file(struct plb_pod *pod, __u8 decision, __u8 mechanism, __u8 op, bool write,
				      struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct plb_walked walked;
	struct file_scratch *s;
	__u32 len = 0, zero = 0;

	s = bpf_map_lookup_elem(&file_scratch, &zero);
	if (!s)
		return;
	walked = plb_walk_path(0, dentry, vfsmnt);
	if (walked.start && walked.len) {
		len = walked.len & (PLB_PATH_BASE_MAX - 1);
		bpf_probe_read_kernel(s->path, len, walked.start);
	}
	plb_fill_header(&s->e.hdr, PLB_EV_ENFORCE_FILE, sizeof(s->e) + len, task);
	s->e.role = pod->role;
	s->e.pod = pod->pod;
	s->e.decision = decision;
	s->e.mechanism = mechanism;
	s->e.op = op;
	s->e.write = write;
	s->e.path_len = len;
	s->e.truncated = walked.truncated;
	s->e._pad0 = 0;
	plb_emit(&enforce_events, s, sizeof(s->e) + len, PLB_EV_ENFORCE_FILE);
}

/* Decides a file operation of the current process on (dentry, vfsmnt), as
 * decide_exec does. */
static __always_inline int decide_file(__u8 op, bool write, struct dentry *dentry, struct vfsmount *vfsmnt,
				       __u8 mechanism)
{
	struct plb_role *role;
	struct plb_pod pod;
	__u8 mode;

	if (!current_pod(&pod))
		return 0;
	role = bpf_map_lookup_elem(&roles, &pod.role);
	if (!role || role->file_mode == PLB_MODE_OFF || file_allowed(pod.role, dentry, vfsmnt, write))
		return 0;
	mode = role->file_mode;
	if (mode == PLB_MODE_ENFORCE && mechanism == PLB_MECH_SIGNAL)
		bpf_send_signal(9);
	emit_file(&pod, decision_of(mode, mechanism), mechanism, op, write, dentry, vfsmnt);
	return mode == PLB_MODE_ENFORCE && mechanism == PLB_MECH_LSM ? -EPERM : 0;
}

/* ---- fallback tier: kill after the fact -------------------------------- */

/* Runs once the exec succeeded and before the new image runs: SIGKILL is
 * delivered on the way back to user space. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(plb_enforce_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	decide_exec(bprm, PLB_MECH_SIGNAL);
	return 0;
}

/* An open that succeeded: the file it opened, for writing or not. */
static __always_inline int open_exit(long fd)
{
	struct plb_pod pod;
	struct file *file;

	/* The fd table is read only for enrolled processes. */
	if (fd < 0 || !current_pod(&pod))
		return 0;
	file = plb_current_fd_file(fd);
	if (!file)
		return 0;
	decide_file(PLB_FILE_OP_OPEN, BPF_CORE_READ(file, f_mode) & FMODE_WRITE, BPF_CORE_READ(file, f_path.dentry),
		    BPF_CORE_READ(file, f_path.mnt), PLB_MECH_SIGNAL);
	return 0;
}

#define OPEN_EXIT(syscall)                                                   \
	SEC("tracepoint/syscalls/sys_exit_" #syscall)                        \
	int plb_enforce_exit_##syscall(struct plb_syscall_exit_ctx *ctx)     \
	{                                                                    \
		return open_exit(ctx->ret);                                  \
	}

OPEN_EXIT(open)
OPEN_EXIT(creat)
OPEN_EXIT(openat)
OPEN_EXIT(openat2)

/* ---- lsm tier: refuse before the effect -------------------------------- */

SEC("lsm/bprm_check_security")
int BPF_PROG(plb_lsm_exec, struct linux_binprm *bprm, int ret)
{
	return ret ?: decide_exec(bprm, PLB_MECH_LSM);
}

SEC("lsm/file_open")
int BPF_PROG(plb_lsm_file_open, struct file *file, int ret)
{
	__u32 probe = 0, hits = 1;
	__u64 *tgid = bpf_map_lookup_elem(&lsm_probe, &probe);

	if (tgid && *tgid == bpf_get_current_pid_tgid() >> 32) {
		__u64 *count = bpf_map_lookup_elem(&lsm_probe, &hits);

		if (count)
			__sync_fetch_and_add(count, 1);
	}
	return ret ?: decide_file(PLB_FILE_OP_OPEN, BPF_CORE_READ(file, f_mode) & FMODE_WRITE,
				  BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt), PLB_MECH_LSM);
}

/* A new file (open with O_CREAT, mknod), before it exists. */
SEC("lsm/path_mknod")
int BPF_PROG(plb_lsm_mknod, const struct path *dir, struct dentry *dentry, umode_t mode, unsigned int dev, int ret)
{
	return ret ?: decide_file(PLB_FILE_OP_CREATE, true, dentry, BPF_CORE_READ(dir, mnt), PLB_MECH_LSM);
}

SEC("lsm/path_mkdir")
int BPF_PROG(plb_lsm_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode, int ret)
{
	return ret ?: decide_file(PLB_FILE_OP_CREATE, true, dentry, BPF_CORE_READ(dir, mnt), PLB_MECH_LSM);
}

SEC("lsm/path_symlink")
int BPF_PROG(plb_lsm_symlink, const struct path *dir, struct dentry *dentry, const char *target, int ret)
{
	return ret ?: decide_file(PLB_FILE_OP_CREATE, true, dentry, BPF_CORE_READ(dir, mnt), PLB_MECH_LSM);
}

SEC("lsm/path_unlink")
int BPF_PROG(plb_lsm_unlink, const struct path *dir, struct dentry *dentry, int ret)
{
	return ret ?: decide_file(PLB_FILE_OP_UNLINK, true, dentry, BPF_CORE_READ(dir, mnt), PLB_MECH_LSM);
}

SEC("lsm/path_rmdir")
int BPF_PROG(plb_lsm_rmdir, const struct path *dir, struct dentry *dentry, int ret)
{
	return ret ?: decide_file(PLB_FILE_OP_UNLINK, true, dentry, BPF_CORE_READ(dir, mnt), PLB_MECH_LSM);
}

/* Both ends are changed: the name that goes and the one that comes. */
SEC("lsm/path_rename")
int BPF_PROG(plb_lsm_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, unsigned int flags, int ret)
{
	return ret ?: decide_file(PLB_FILE_OP_RENAME, true, old_dentry, BPF_CORE_READ(old_dir, mnt), PLB_MECH_LSM)
		?: decide_file(PLB_FILE_OP_RENAME, true, new_dentry, BPF_CORE_READ(new_dir, mnt), PLB_MECH_LSM);
}

/* A hard link would open a file under another name: the file must be
 * writable where it is, and the new name writable too. */
SEC("lsm/path_link")
int BPF_PROG(plb_lsm_link, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry, int ret)
{
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);

	return ret ?: decide_file(PLB_FILE_OP_CREATE, true, old_dentry, mnt, PLB_MECH_LSM)
		?: decide_file(PLB_FILE_OP_CREATE, true, new_dentry, mnt, PLB_MECH_LSM);
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

/* The role allows `key`'s address at `port`: by a rule, or by a DNS answer
 * for a name it allows. */
static __always_inline bool net_allowed(struct plb_net_rule_key *key, __u16 port)
{
	struct plb_net_rule *rule = bpf_map_lookup_elem(&net_rules, key);

	if (rule && port_allowed(rule, port))
		return true;
	rule = bpf_map_lookup_elem(&dns_answers, &key->data);
	return rule && port_allowed(rule, port);
}

/* 1 lets the call go on, 0 refuses it (EPERM). `addr` is IPv6 or IPv4-mapped.
 * A DNS query that goes on marks its socket, so its answer is read. */
static __always_inline int decide_net(struct bpf_sock_addr *ctx, const __u8 addr[16], __u16 port, __u16 family,
				      __u8 op, __u32 protocol)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct plb_net_rule_key key = { .prefixlen = 32 + 128 };
	struct plb_enforce_net *e;
	struct plb_role *role;
	struct plb_pod *pod;
	__u8 mode;

	pod = bpf_map_lookup_elem(&pods, &tgid);
	if (!pod)
		return 1;
	if (op == PLB_NET_OP_CONNECT && protocol == IPPROTO_TCP && plb_rate_refuses_connect(pod, tgid, addr, port, family))
		return 0;
	role = bpf_map_lookup_elem(&roles, &pod->role);
	if (!role)
		return 1;
	if (!plb_llm_connect(ctx, pod, role->llm_mode, addr, port, family, op, protocol))
		return 0;
	if (role->net_mode == PLB_MODE_OFF)
		return 1;
	key.data.role = pod->role;
	__builtin_memcpy(key.data.addr, addr, 16);
	mode = role->net_mode;
	if (protocol == IPPROTO_UDP && port == plb_dns_port && (mode != PLB_MODE_ENFORCE || net_allowed(&key, port))) {
		__u64 cookie = bpf_get_socket_cookie(ctx);

		bpf_map_update_elem(&dns_socks, &cookie, &key.data.role, BPF_ANY);
	}
	if (net_allowed(&key, port))
		return 1;

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
	return decide_net(ctx, addr, bpf_ntohs(ctx->user_port), AF_INET, op, ctx->protocol);
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
	return decide_net(ctx, addr, bpf_ntohs(ctx->user_port), AF_INET6, op, ctx->protocol);
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

/* ---- host names: DNS answers ------------------------------------------ */

struct dns_header {
	__u16 id;
	__u16 flags;
	__u16 qdcount;
	__u16 ancount;
	__u16 nscount;
	__u16 arcount;
};

/* The hash of the question name, from its last byte to its first; at each
 * label's start, the name from there on is looked up: the whole name as a
 * name rule, a name below it as a `*.` rule. The most specific match holds. */
struct name_hash {
	struct dns_scratch *s;
	__u64 hash;
	__u32 role;
	__u32 at;    /* bytes left to hash */
	__u32 label; /* labels whose start is not reached yet */
	struct plb_dns_name match;
	__u8 matched;
};

/* The question name's labels, from the first: where each starts. */
struct name_labels {
	struct dns_scratch *s;
	__u32 avail; /* bytes of the name read */
	__u32 pos;
	__u32 count;
	__u8 done; /* the final zero reached */
};

static long label_step(__u32 index, struct name_labels *st)
{
	__u32 pos = st->pos;
	__u8 len = st->s->name[pos & 0xff];

	if (len == 0) {
		st->done = 1;
		return 1;
	}
	if (len >= 0x40 || pos + len + 1 >= st->avail)
		return 1; /* compressed, or longer than what was read */
	st->s->starts[index & 63] = pos;
	st->count = index + 1;
	st->pos = pos + len + 1;
	return 0;
}

static long name_hash_step(__u32 index, struct name_hash *st)
{
	struct plb_dns_name key;
	__u8 byte;

	if (st->at == 0)
		return 1;
	st->at--;
	byte = st->s->name[st->at & 0xff];
	if (byte >= 'A' && byte <= 'Z')
		byte += 'a' - 'A';
	st->hash = (st->hash ^ byte) * PLB_NAME_HASH_PRIME;
	if (st->label == 0 || st->at != st->s->starts[(st->label - 1) & 63])
		return 0;
	st->label--;
	key.hash = st->hash;
	key.role = st->role;
	key.below = st->label != 0;
	if (bpf_map_lookup_elem(&dns_names, &key)) {
		st->match = key;
		st->matched = 1;
	}
	return 0;
}

/* Adds `addr` with `ports` to the role's answers. An address two names
 * share keeps the ports of both when the second adds one port (the common
 * case); otherwise the later answer's ports replace the earlier's. */
static __always_inline void allow_answer(__u32 role, const __u8 *addr, __u32 len, struct plb_net_rule *ports)
{
	struct plb_net_rule_addr key = { .role = role };
	struct plb_net_rule *held;
	__u16 n;

	if (len == 4) {
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], addr, 4);
	} else {
		__builtin_memcpy(key.addr, addr, 16);
	}
	held = bpf_map_lookup_elem(&dns_answers, &key);
	if (held && held->nports == 0)
		return;
	if (held && ports->nports == 1) {
		if (port_allowed(held, ports->ports[0]))
			return;
		n = held->nports;
		barrier_var(n);
		if (n < PLB_NET_RULE_PORTS) {
			held->ports[n & (PLB_NET_RULE_PORTS - 1)] = ports->ports[0];
			held->nports = n + 1;
			return;
		}
	}
	bpf_map_update_elem(&dns_answers, &key, ports, BPF_ANY);
}

/* Answers read per message. An answer's owner is a pointer to a name
 * before it (as servers write it) or the question's name written out again;
 * any other owner ends the reading (its addresses stay refused). */
#define DNS_ANSWERS_MAX 8
#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28

struct dns_rr {
	__u16 type;
	__u16 class;
	__u32 ttl;
	__u16 len;
} __attribute__((packed));

/* A DNS answer (at `off` in the packet) to a socket of `role`: when its
 * question names a host the role allows, its addresses are allowed. */
static __always_inline void dns_answer(struct __sk_buff *skb, __u32 role, __u32 off)
{
	struct name_hash st = { .hash = PLB_NAME_HASH_BASIS, .role = role };
	struct name_labels labels = {};
	struct plb_net_rule ports;
	struct plb_net_rule *rule;
	struct dns_scratch *s;
	struct dns_header h;
	__u32 zero = 0, qoff = off + sizeof(h), avail, pos = 0, name_len, answers;

	s = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!s || bpf_skb_load_bytes(skb, off, &h, sizeof(h)))
		return;
	/* An answer (QR), without error (RCODE 0), to one question. */
	if (!(bpf_ntohs(h.flags) & 0x8000) || (bpf_ntohs(h.flags) & 0xf) || bpf_ntohs(h.qdcount) != 1)
		return;
	if (skb->len <= qoff + 1)
		return;
	avail = skb->len - qoff;
	if (avail > sizeof(s->name))
		avail = sizeof(s->name);
	/* 1 to 256, in a form the verifier follows. */
	avail = ((avail - 1) & 0xff) + 1;
	if (bpf_skb_load_bytes(skb, qoff, s->name, avail))
		return;
	/* The labels, forward: where each starts, and where the name ends. */
	labels.s = s;
	labels.avail = avail;
	bpf_loop(64, label_step, &labels, 0);
	if (!labels.done || labels.count == 0)
		return; /* compressed, too long, or more than 64 labels */
	pos = labels.pos;
	st.s = s;
	st.at = pos;
	st.label = labels.count;
	bpf_loop(sizeof(s->name), name_hash_step, &st, 0);
	if (!st.matched)
		return;
	rule = bpf_map_lookup_elem(&dns_names, &st.match);
	if (!rule)
		return;
	ports = *rule;

	/* The answers: owner, type, class, TTL, length, data. */
	name_len = pos;
	pos = qoff + pos + 1 + 4;
	answers = bpf_ntohs(h.ancount);
#pragma unroll
	for (int i = 0; i < DNS_ANSWERS_MAX; i++) {
		struct dns_rr rr;
		__u8 owner[2], data[16];
		__u16 len;

		if (i >= answers || bpf_skb_load_bytes(skb, pos, owner, 2))
			return;
		if ((owner[0] & 0xc0) == 0xc0)
			pos += 2;
		else if (owner[0] == s->name[0])
			pos += name_len + 1; /* the question's name, written out again */
		else
			return;
		if (bpf_skb_load_bytes(skb, pos, &rr, sizeof(rr)))
			return;
		pos += sizeof(rr);
		len = bpf_ntohs(rr.len);
		if (bpf_ntohs(rr.type) == DNS_TYPE_A && len == 4 && !bpf_skb_load_bytes(skb, pos, data, 4))
			allow_answer(role, data, 4, &ports);
		else if (bpf_ntohs(rr.type) == DNS_TYPE_AAAA && len == 16 && !bpf_skb_load_bytes(skb, pos, data, 16))
			allow_answer(role, data, 16, &ports);
		pos += len;
	}
}

/* Answers arrive from the DNS port, on a socket an enrolled process queried
 * on; read before the process can read them. Every packet goes on. */
SEC("cgroup_skb/ingress")
int plb_enforce_dns_answer(struct __sk_buff *skb)
{
	struct plb_sockaddr src = {}, dst = {};
	struct plb_udp_header udp;
	__u32 udp_off, *role;
	__u64 cookie;

	if (!plb_udp_packet(skb, &udp, &udp_off, &src, &dst) || src.port != plb_dns_port)
		return 1;
	cookie = bpf_get_socket_cookie(skb);
	role = bpf_map_lookup_elem(&dns_socks, &cookie);
	if (role)
		dns_answer(skb, *role, udp_off + sizeof(udp));
	return 1;
}
