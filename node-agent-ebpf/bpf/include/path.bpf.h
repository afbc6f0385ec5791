/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Absolute paths from dentries, written backwards into a per-CPU buffer: the
 * same walk as the kernel's d_path (dentry to parent, crossing mounts to the
 * mount point), bounded for the verifier. The result is relative to the
 * current task's root (its chroot, else its mount namespace's root), as
 * the process sees it.
 */
#ifndef PLUMBLINE_PATH_BPF_H
#define PLUMBLINE_PATH_BPF_H

#include "plumbline_abi.h"

#define PLB_NAME_MAX 255
/* The walk buffer: a component is read at an offset below
 * PLB_PATH_BASE_MAX, so twice that bounds every access. */
#define PLB_WALK_BUF (2 * PLB_PATH_BASE_MAX)
#define PLB_WALK_MASK (PLB_PATH_BASE_MAX - 1)

struct plb_walk {
	char buf[PLB_WALK_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* two paths (rename) */
	__type(key, __u32);
	__type(value, struct plb_walk);
} plb_walks SEC(".maps");

struct plb_walked {
	const char *start; /* first byte of the path */
	__u32 len;         /* bytes, no NUL */
	__u8 truncated;
};

static __always_inline struct mount *plb_real_mount(struct vfsmount *vfsmnt)
{
	return (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
}

/* At the root of its mount, (dentry, mnt) moves across to the mount point
 * in the parent mount: 1. Not at a mount's root: 0. At the root of the
 * namespace: -1. */
static __always_inline int plb_cross_mount(struct dentry **dentry, struct mount **mnt)
{
	struct mount *at = *mnt, *parent;

	if (*dentry != BPF_CORE_READ(at, mnt.mnt_root))
		return 0;
	parent = BPF_CORE_READ(at, mnt_parent);
	if (parent == at)
		return -1;
	*dentry = BPF_CORE_READ(at, mnt_mountpoint);
	*mnt = parent;
	return 1;
}

/* State of one walk, carried through bpf_loop. */
struct plb_walk_state {
	struct plb_walk *walk;
	struct dentry *dentry;
	struct mount *mnt;
	struct path root; /* the current task's: the walk ends there */
	__u32 off;
	__u8 truncated;
	__u8 done;
};

/* One step of the walk: a path component, or a crossing to the mount point.
 * A callback of bpf_loop is verified once, whatever the number of steps
 * (an open-coded loop over PLB_PATH_DEPTH steps with these branches makes
 * the verifier give up). */
static long plb_walk_step(__u32 index, struct plb_walk_state *st)
{
	/* Locals, not st->...: CO-RE relocations apply to kernel types only. */
	struct dentry *dentry = st->dentry;
	struct mount *mnt = st->mnt;
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct qstr name;
	__u32 len, off;
	int crossed;

	if (dentry == st->root.dentry && &mnt->mnt == st->root.mnt)
		goto done;
	crossed = plb_cross_mount(&dentry, &mnt);
	if (crossed < 0)
		goto done; /* the namespace root */
	if (crossed) {
		st->dentry = dentry;
		st->mnt = mnt;
		return 0;
	}
	if (dentry == parent)
		goto done;
	name = BPF_CORE_READ(dentry, d_name);
	len = name.len & PLB_NAME_MAX;
	off = st->off;
	if (len + 1 > off) {
		st->truncated = 1;
		goto done;
	}
	off -= len;
	bpf_probe_read_kernel(&st->walk->buf[off & PLB_WALK_MASK], len, name.name);
	off -= 1;
	st->walk->buf[off & PLB_WALK_MASK] = '/';
	st->off = off;
	st->dentry = parent;
	return 0;
done:
	st->done = 1;
	return 1;
}

/* Walks (dentry, vfsmnt) to the root into walk buffer `slot`. */
static __always_inline struct plb_walked plb_walk_path(__u32 slot, struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct plb_walked out = {};
	struct plb_walk *walk = bpf_map_lookup_elem(&plb_walks, &slot);
	__u32 end = PLB_PATH_BASE_MAX - 1;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct plb_walk_state st = {
		.walk = walk,
		.dentry = dentry,
		.mnt = plb_real_mount(vfsmnt),
		.root = BPF_CORE_READ(task, fs, root),
		.off = end,
	};

	if (!walk || !dentry || !vfsmnt)
		return out;
	bpf_loop(PLB_PATH_DEPTH, plb_walk_step, &st, 0);
	if (!st.done)
		st.truncated = 1;
	if (st.off == end) {
		st.off -= 1;
		walk->buf[st.off & PLB_WALK_MASK] = '/';
	}
	out.start = &walk->buf[st.off & PLB_WALK_MASK];
	out.len = end - st.off;
	out.truncated = st.truncated;
	return out;
}

/* The directory a relative path of the current task starts from: its cwd
 * for AT_FDCWD, else the directory open as `dirfd`. */
static __always_inline struct plb_walked plb_walk_dirfd(__u32 slot, struct task_struct *task, long dirfd)
{
	struct plb_walked none = {};
	struct path path;

	if (dirfd == AT_FDCWD) {
		path = BPF_CORE_READ(task, fs, pwd);
	} else {
		struct file *file = plb_current_fd_file(dirfd);

		if (!file)
			return none;
		path = BPF_CORE_READ(file, f_path);
	}
	return plb_walk_path(slot, path.dentry, path.mnt);
}

#endif /* PLUMBLINE_PATH_BPF_H */
