/* SPDX-License-Identifier: Apache-2.0 */
/* From a task's file descriptor to the kernel's file, inode and socket. */
#ifndef PLUMBLINE_TASK_FILES_BPF_H
#define PLUMBLINE_TASK_FILES_BPF_H

/* The file open as `fd` in the current task. The way to its table is plain
 * loads through the task's BTF pointer (a faulting load reads 0), not a
 * helper call per field; the slot takes one (the verifier allows no variable
 * index into a BTF array). This runs on every open, read and write. */
static __always_inline struct file *plb_current_fd_file(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file **fds;
	struct file *file = 0;

	if (fd < 0 || !fdt || fd >= fdt->max_fds)
		return 0;
	fds = fdt->fd;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline umode_t plb_file_type(struct file *file)
{
	return BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT;
}

/* The inode of a socket: struct socket lives inside struct socket_alloc,
 * next to its inode. */
static __always_inline __u64 plb_socket_ino(struct socket *sock)
{
	struct socket_alloc *alloc;

	if (!sock)
		return 0;
	alloc = (void *)sock - bpf_core_field_offset(struct socket_alloc, socket);
	return BPF_CORE_READ(alloc, vfs_inode.i_ino);
}

/* The tgid behind a struct pid (its number in the initial namespace). */
static __always_inline __u32 plb_pid_nr(struct pid *pid)
{
	return pid ? BPF_CORE_READ(pid, numbers[0].nr) : 0;
}

#endif /* PLUMBLINE_TASK_FILES_BPF_H */
