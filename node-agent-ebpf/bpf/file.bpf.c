// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Files: opens (with the absolute path), unlinks and renames.
 *
 * Each syscall has one program, at its exit, which reads the arguments from
 * the registers the task entered with. Strings are read there, when the
 * kernel has just copied them (reading at entry can hit a page that is not
 * resident). Every path is the caller's string and, when that is relative,
 * the directory it was relative to (cwd or dirfd), walked from its dentry
 * (the agent then folds `.` and `..`). A successful open also carries the
 * opened file's device, inode, generation and mode. Repeated opens of the
 * same file by the same process within a window fold into the first one's
 * count, kept in a map the agent sweeps.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "emit.bpf.h"
#include "filter.bpf.h"
#include "task_files.bpf.h"
#include "path.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Repeats of an open within this window are counted, not sent. */
const volatile __u64 plb_open_window_ns = 1000000000ULL;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} file_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct plb_open_key);
	__type(value, struct plb_open_repeats);
} open_repeats SEC(".maps");

enum file_op {
	OP_OPEN = 1,
	OP_UNLINK = 2,
	OP_RENAME = 3,
};

/* The arguments of a file syscall. */
struct file_request {
	__u64 path;      /* user pointer */
	__u64 path2;     /* rename: the new path */
	__u64 how;       /* openat2: struct open_how * (flags are its first field) */
	__s32 dirfd;
	__s32 dirfd2;
	__u32 flags;
	__u32 op;
};

/* A record being built: fixed part, then up to four path parts. */
#define SCRATCH_SIZE 16384
#define SCRATCH_MASK (SCRATCH_SIZE - 1)
#define BASE_MASK (PLB_PATH_BASE_MAX - 1)
#define REL_MASK (PLB_PATH_REL_MAX - 1)

struct file_scratch {
	char bytes[SCRATCH_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct file_scratch);
} file_scratch SEC(".maps");

/* Open flags that change what an open means; the rest (O_CLOEXEC ...) do
 * not split repeats. O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_DIRECTORY | O_PATH */
#define OPEN_FLAGS_KEPT (03 | 0100 | 01000 | 02000 | 0200000 | 010000000)

static __always_inline struct file_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&file_scratch, &zero);
}

struct hash_state {
	const __u64 *words; /* 8-byte aligned */
	__u32 len;
	__u64 hash;
};

static long hash_step(__u32 i, struct hash_state *st)
{
	__u32 at = i * 8;
	__u64 word;

	if (at >= st->len)
		return 1;
	word = st->words[i & (REL_MASK / 8)];
	/* Bytes past the end are left over from an earlier record. */
	if (st->len - at < 8)
		word &= (1ULL << ((st->len - at) * 8)) - 1;
	st->hash = (st->hash ^ word) * 0x100000001b3ULL;
	st->hash ^= st->hash >> 29;
	return 0;
}

/* A 64-bit hash of `len` bytes, eight at a time. */
static __always_inline __u64 hash_bytes(const char *bytes, __u32 len)
{
	struct hash_state st = { .words = (const __u64 *)bytes, .len = len, .hash = 0xcbf29ce484222325ULL };

	bpf_loop(PLB_PATH_REL_MAX / 8, hash_step, &st, 0);
	return st.hash ^ len;
}

/* Appends one path (base walked from the caller's directory unless the
 * string is absolute, then the string) at `off` in the record; returns the
 * new offset. The string is read at syscall exit. */
static __always_inline __u32 append_user_path(char *rec, __u32 off, struct plb_path_lens *lens, struct plb_walked *base,
					      const char *user)
{
	long n;

	lens->base_len = 0;
	lens->truncated = 0;
	if (base->start && base->len) {
		__u32 len = base->len & BASE_MASK;

		bpf_probe_read_kernel(rec + (off & SCRATCH_MASK), len, base->start);
		lens->base_len = len;
		lens->truncated = base->truncated;
		off += len;
	}
	n = bpf_probe_read_user_str(rec + (off & SCRATCH_MASK), PLB_PATH_REL_MAX, user);
	lens->rel_len = n > 1 ? (n - 1) & REL_MASK : 0;
	return off + lens->rel_len;
}

static __always_inline bool is_absolute(const char *user)
{
	char first = 0;

	bpf_probe_read_user(&first, 1, user);
	return first == '/';
}

/* The directory a relative path starts from, or nothing for an absolute one. */
static __always_inline struct plb_walked base_for(__u32 slot, struct task_struct *task, long dirfd, const char *user)
{
	struct plb_walked none = {};

	if (is_absolute(user))
		return none;
	return plb_walk_dirfd(slot, task, dirfd);
}

static __always_inline void emit(void *rec, __u32 size, __u16 kind)
{
	barrier_var(size);
	plb_emit(&file_events, rec, size & SCRATCH_MASK, kind);
}

/* True when this open repeats one seen within the window: counted, not sent. */
static __always_inline bool collapsed(struct plb_open_key *key, __u64 now)
{
	struct plb_open_repeats *seen = bpf_map_lookup_elem(&open_repeats, key);
	struct plb_open_repeats fresh = { .window_start_ns = now, .last_ns = now };

	if (seen && now - seen->window_start_ns < plb_open_window_ns) {
		__sync_fetch_and_add(&seen->repeats, 1);
		seen->last_ns = now;
		plb_count(PLB_EV_FILE_OPEN, PLB_OUT_COLLAPSED);
		return true;
	}
	if (seen) {
		/* A new window: the repeat count carries on growing. */
		seen->window_start_ns = now;
		seen->last_ns = now;
		return false;
	}
	if (bpf_map_update_elem(&open_repeats, key, &fresh, BPF_NOEXIST) != 0)
		plb_count(PLB_EV_FILE_OPEN, PLB_OUT_MAP_FULL);
	return false;
}

static __always_inline int open_exit(struct file_request *req, long ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file_scratch *s = scratch();
	struct plb_file_open *e;
	struct plb_walked base;
	__u64 now = bpf_ktime_get_boot_ns();
	__u32 flags = req->flags;
	__u32 off = sizeof(*e);

	if (!s)
		return 0;
	e = (struct plb_file_open *)s->bytes;
	if (req->how)
		bpf_probe_read_user(&flags, sizeof(flags), (void *)req->how);
	__builtin_memset(&e->key, 0, sizeof(e->key));
	e->key.tgid = bpf_get_current_pid_tgid() >> 32;
	e->key.flags = flags & OPEN_FLAGS_KEPT;
	e->result = ret;
	e->mode = 0;
	e->_pad0 = 0;

	if (ret >= 0) {
		struct file *file = plb_current_fd_file(ret);
		struct inode *inode = BPF_CORE_READ(file, f_inode);

		e->key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		e->key.ino = BPF_CORE_READ(inode, i_ino);
		e->key.gen = BPF_CORE_READ(inode, i_generation);
		e->mode = BPF_CORE_READ(inode, i_mode);
	} else {
		/* Read the string first: its hash names the repeats. */
		char *tmp = s->bytes + SCRATCH_SIZE / 2;
		long n = bpf_probe_read_user_str(tmp, PLB_PATH_REL_MAX, (void *)req->path);

		e->key.ino = hash_bytes(tmp, n > 1 ? n - 1 : 0);
		e->key.result = ret;
	}
	if (collapsed(&e->key, now))
		return 0;
	/* The caller's string, joined to its directory when relative: an
	 * absolute path costs one read, where walking the opened file's
	 * dentries cost one per component (most of an open's cost). */
	base = base_for(0, task, req->dirfd, (void *)req->path);
	__builtin_memset(e->path._pad0, 0, sizeof(e->path._pad0));
	off = append_user_path(s->bytes, off, &e->path, &base, (void *)req->path);
	plb_fill_header(&e->hdr, PLB_EV_FILE_OPEN, off, task);
	emit(e, off, PLB_EV_FILE_OPEN);
	return 0;
}

static __always_inline int unlink_exit(struct file_request *req, long ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file_scratch *s = scratch();
	struct plb_file_unlink *e;
	struct plb_walked base;
	__u32 off;

	if (!s)
		return 0;
	e = (struct plb_file_unlink *)s->bytes;
	e->result = ret;
	e->flags = req->flags;
	e->_pad0 = 0;
	__builtin_memset(e->path._pad0, 0, sizeof(e->path._pad0));
	base = base_for(0, task, req->dirfd, (void *)req->path);
	off = append_user_path(s->bytes, sizeof(*e), &e->path, &base, (void *)req->path);
	plb_fill_header(&e->hdr, PLB_EV_FILE_UNLINK, off, task);
	emit(e, off, PLB_EV_FILE_UNLINK);
	return 0;
}

static __always_inline int rename_exit(struct file_request *req, long ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file_scratch *s = scratch();
	struct plb_file_rename *e;
	struct plb_walked from, to;
	__u32 off;

	if (!s)
		return 0;
	e = (struct plb_file_rename *)s->bytes;
	e->result = ret;
	e->flags = req->flags;
	e->_pad0 = 0;
	__builtin_memset(e->from._pad0, 0, sizeof(e->from._pad0));
	__builtin_memset(e->to._pad0, 0, sizeof(e->to._pad0));
	from = base_for(0, task, req->dirfd, (void *)req->path);
	to = base_for(1, task, req->dirfd2, (void *)req->path2);
	off = append_user_path(s->bytes, sizeof(*e), &e->from, &from, (void *)req->path);
	off = append_user_path(s->bytes, off & (SCRATCH_SIZE / 2 - 1), &e->to, &to, (void *)req->path2);
	plb_fill_header(&e->hdr, PLB_EV_FILE_RENAME, off, task);
	emit(e, off, PLB_EV_FILE_RENAME);
	return 0;
}

/* The calling task's syscall arguments, read at exit from the registers it
 * entered with: one program per syscall, where an entry program would add a
 * second tracepoint hit and a map update per call (about a third of the cost
 * of an open). */
static __always_inline struct pt_regs *entry_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* Plain loads: the helper's result is a BTF pointer the verifier lets us read. */
#define ARG1(r) ((r)->di)
#define ARG2(r) ((r)->si)
#define ARG3(r) ((r)->dx)
#define ARG4(r) ((r)->r10)
#define ARG5(r) ((r)->r8)

static __always_inline int file_exit(struct file_request *req, long ret, __u16 kind)
{
	if (plb_filtered(kind))
		return 0;
	switch (req->op) {
	case OP_OPEN:
		return open_exit(req, ret);
	case OP_UNLINK:
		return unlink_exit(req, ret);
	case OP_RENAME:
		return rename_exit(req, ret);
	}
	return 0;
}

/* One exit program per syscall: `kind` and how its arguments make a request. */
#define FILE_PROGRAM(syscall, kind, ...)                                     \
	SEC("tracepoint/syscalls/sys_exit_" #syscall)                        \
	int plb_exit_##syscall(struct plb_syscall_exit_ctx *ctx)             \
	{                                                                    \
		struct pt_regs *r = entry_regs();                            \
		struct file_request req = { __VA_ARGS__ };                   \
		return file_exit(&req, ctx->ret, kind);                      \
	}

FILE_PROGRAM(open, PLB_EV_FILE_OPEN, .path = ARG1(r), .dirfd = AT_FDCWD, .flags = ARG2(r), .op = OP_OPEN)
/* creat() is open(O_CREAT | O_WRONLY | O_TRUNC) */
FILE_PROGRAM(creat, PLB_EV_FILE_OPEN, .path = ARG1(r), .dirfd = AT_FDCWD, .flags = 0100 | 01 | 01000, .op = OP_OPEN)
FILE_PROGRAM(openat, PLB_EV_FILE_OPEN, .path = ARG2(r), .dirfd = ARG1(r), .flags = ARG3(r), .op = OP_OPEN)
/* openat2: flags are the first field of struct open_how */
FILE_PROGRAM(openat2, PLB_EV_FILE_OPEN, .path = ARG2(r), .dirfd = ARG1(r), .how = ARG3(r), .op = OP_OPEN)
FILE_PROGRAM(unlink, PLB_EV_FILE_UNLINK, .path = ARG1(r), .dirfd = AT_FDCWD, .op = OP_UNLINK)
FILE_PROGRAM(unlinkat, PLB_EV_FILE_UNLINK, .path = ARG2(r), .dirfd = ARG1(r), .flags = ARG3(r), .op = OP_UNLINK)
/* rmdir() is unlinkat(AT_FDCWD, path, AT_REMOVEDIR) */
FILE_PROGRAM(rmdir, PLB_EV_FILE_UNLINK, .path = ARG1(r), .dirfd = AT_FDCWD, .flags = 0x200, .op = OP_UNLINK)
FILE_PROGRAM(rename, PLB_EV_FILE_RENAME, .path = ARG1(r), .path2 = ARG2(r), .dirfd = AT_FDCWD, .dirfd2 = AT_FDCWD,
	     .op = OP_RENAME)
FILE_PROGRAM(renameat, PLB_EV_FILE_RENAME, .path = ARG2(r), .path2 = ARG4(r), .dirfd = ARG1(r), .dirfd2 = ARG3(r),
	     .op = OP_RENAME)
FILE_PROGRAM(renameat2, PLB_EV_FILE_RENAME, .path = ARG2(r), .path2 = ARG4(r), .dirfd = ARG1(r), .dirfd2 = ARG3(r),
	     .flags = ARG5(r), .op = OP_RENAME)
