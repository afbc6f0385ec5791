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
typedef unsigned short umode_t;
typedef __u32 dev_t;
#define true 1
#define false 0

/* The uapi values the programs use (linux/bpf.h); defined here rather than
 * included so that no uapi struct can clash with the kernel types below. */
enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_LPM_TRIE = 11,
	BPF_MAP_TYPE_RINGBUF = 27,
};
enum {
	BPF_F_NO_PREALLOC = 1,
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

/* Socket families, types and the like (uapi values). */
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define AT_FDCWD -100
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFIFO 0010000
#define S_IFDIR 0040000
#define EINPROGRESS 115
/* TCP states (include/net/tcp_states.h). */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10

struct __sk_buff {
	__u32 len;
	__u32 pkt_type;
	__u32 mark;
	__u32 queue_mapping;
	__u32 protocol;
	__u32 vlan_present;
	__u32 vlan_tci;
	__u32 vlan_proto;
	__u32 priority;
	__u32 ingress_ifindex;
	__u32 ifindex;
	__u32 tc_index;
	__u32 cb[5];
	__u32 hash;
	__u32 tc_classid;
	__u32 data;
	__u32 data_end;
	__u32 napi_id;
	__u32 family;
	__u32 remote_ip4;
	__u32 local_ip4;
	__u32 remote_ip6[4];
	__u32 local_ip6[4];
	__u32 remote_port;
	__u32 local_port;
};

struct bpf_sock {
	__u32 bound_dev_if;
	__u32 family;
	__u32 type;
	__u32 protocol;
};

/* The context of cgroup/connect* and cgroup/sendmsg* (uapi, up to what is
 * read). Addresses and the port are in network byte order. */
struct bpf_sock_addr {
	__u32 user_family;
	__u32 user_ip4;
	__u32 user_ip6[4];
	__u32 user_port;
	__u32 family;
	__u32 type;
	__u32 protocol;
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

struct qstr {
	__u32 len;
	const unsigned char *name;
};

struct super_block {
	dev_t s_dev;
};

struct inode {
	umode_t i_mode;
	unsigned long i_ino;
	__u32 i_generation;
	struct super_block *i_sb;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
};

struct vfsmount {
	struct dentry *mnt_root;
};

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_flags;
	unsigned int f_mode;
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path root;
	struct path pwd;
};

struct upid {
	int nr;
};

struct pid {
	struct upid numbers[1];
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
};

struct sock_common {
	unsigned short skc_family;
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
	struct sock_common __sk_common;
	struct socket *sk_socket;
	struct pid *sk_peer_pid;
	int sk_err;
	/* A 2-bit field before 6.5: read with BPF_CORE_READ_BITFIELD_PROBED. */
	__u8 sk_shutdown;
};

struct socket {
	short type;
	struct sock *sk;
	struct file *file;
};

struct socket_alloc {
	struct socket socket;
	struct inode vfs_inode;
};

struct sockaddr_un {
	unsigned short sun_family;
	char sun_path[108];
};

struct unix_address {
	int len;
	struct sockaddr_un name[1];
};

struct unix_sock {
	struct sock *peer;
	struct unix_address *addr;
};

struct tcp_sock {
	__u64 bytes_received;
	__u64 bytes_acked;
	__u32 snd_una;
	__u32 write_seq;
};

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
	struct files_struct *files;
	struct fs_struct *fs;
	char comm[16];
};

/* Before 5.5 the boot-based start time was called real_start_time. */
struct task_struct___pre_5_5 {
	__u64 real_start_time;
};

struct linux_binprm {
	struct file *file;
	const char *filename;
};

/* x86-64: the user registers saved at syscall entry (syscall arguments are
 * di, si, dx, r10, r8, r9; the kernel leaves them as the caller set them
 * until the return to user space, only ax takes the result) and a uprobe's
 * context (C arguments di, si, dx, cx, r8, r9; Go's register ABI passes ax,
 * bx, cx, di, si, r8..r11 and keeps the goroutine in r14). */
struct pt_regs {
	unsigned long r14;
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long ax;
	unsigned long cx;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long bx;
	unsigned long ip;
	unsigned long sp;
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

/* Context of sock:inet_sock_set_state (stable since 4.16). */
struct plb_inet_sock_set_state_ctx {
	__u64 __common;
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
};

#endif /* PLUMBLINE_KERNEL_TYPES_H */
