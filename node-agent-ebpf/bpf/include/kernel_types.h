/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel types Plumbline's programs read, trimmed to the fields used.
 * preserve_access_index makes every access a CO-RE relocation: the loader
 * rewrites offsets against the running kernel's BTF, so this header does not
 * need to match any particular kernel's layout, only its field names.
 */
#ifndef PLUMBLINE_KERNEL_TYPES_H
#define PLUMBLINE_KERNEL_TYPES_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
typedef int pid_t;
typedef unsigned int uid_t;
typedef unsigned int gid_t;
#define true 1
#define false 0

/* The uapi values the programs use (linux/bpf.h); defined here rather than
 * included so that no uapi struct can clash with the kernel types below. */
enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};
enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};
enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};
enum {
	BPF_RB_AVAIL_DATA = 0,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	uid_t val;
} kuid_t;

typedef struct {
	gid_t val;
} kgid_t;

struct cred {
	kuid_t uid;
	kgid_t gid;
	kuid_t euid;
	kgid_t egid;
};

struct signal_struct {
	atomic_t live;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

/* task_struct.flags bit of kernel threads (include/linux/sched.h). */
#define PF_KTHREAD 0x00200000

struct task_struct {
	unsigned int flags;
	pid_t pid;
	pid_t tgid;
	int exit_code;
	__u64 start_boottime;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	const struct cred *cred;
	struct mm_struct *mm;
	struct signal_struct *signal;
	char comm[16];
};

/* Before 5.5 the boot-based start time was called real_start_time. */
struct task_struct___pre_5_5 {
	__u64 real_start_time;
};

struct linux_binprm {
	const char *filename;
};

#pragma clang attribute pop

/* Context of a syscalls:sys_enter_* / sys_exit_* tracepoint program. */
struct plb_syscall_enter_ctx {
	__u64 __common;
	long id;
	unsigned long args[6];
};

struct plb_syscall_exit_ctx {
	__u64 __common;
	long id;
	long ret;
};

#endif /* PLUMBLINE_KERNEL_TYPES_H */
