/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one ABI shared by Plumbline's BPF programs and the node agent.
 *
 * Every record a BPF program writes to a ring buffer starts with
 * struct plb_event_header; the header's kind says which struct follows and
 * size says how many bytes the whole record holds, so a reader can skip kinds
 * it does not know. Types are fixed-width and padding is explicit: bindgen
 * writes the Rust mirror (node-agent-ebpf/src/abi/generated.rs) from this
 * file, with bytemuck::Pod, which refuses implicit padding, and compile-time
 * checks of every offset. After a change, regenerate it:
 *   PLUMBLINE_BLESS=1 cargo test -p plumbline-ebpf --test generated_abi_is_fresh
 * Values of a new enum need an entry in that test's ENUMS (module, Rust type).
 *
 * Bump PLB_ABI_VERSION on any change; the agent refuses an object whose
 * version differs from the one it was built against.
 */
#ifndef PLUMBLINE_ABI_H
#define PLUMBLINE_ABI_H

#define PLB_ABI_VERSION 10

#define PLB_COMM_LEN 16
#define PLB_FILENAME_MAX 256
/* Bytes of NUL-separated argv sent with an exec. A power of two: the BPF side
 * masks offsets with PLB_ARGS_MAX - 1 so the verifier can bound them. */
#define PLB_ARGS_MAX 2048
/* Longest single argument read when argv is walked pointer by pointer. */
#define PLB_ARG_STR_MAX 1024
/* Arguments walked for a failed execve (read from the caller's memory). */
#define PLB_EXEC_FAILED_ARGC_MAX 32
/* A path resolved in the kernel from a dentry (bytes, without NUL), and the
 * caller's own (relative) string that may follow it. Powers of two. */
#define PLB_PATH_BASE_MAX 4096
#define PLB_PATH_REL_MAX 1024
/* Path components walked from a dentry up to the root. */
#define PLB_PATH_DEPTH 48
/* DNS payload bytes copied from a packet. */
#define PLB_DNS_MAX 512
#define PLB_UNIX_PATH_MAX 108
/* TLS plaintext bytes per record, and records per call at most: a call's
 * capture limit (plb_tls_max_bytes) is at most their product. A power of two. */
#define PLB_TLS_CHUNK 16384
#define PLB_TLS_MAX_CHUNKS 256
/* Longest TLS server name (SNI) read. */
#define PLB_TLS_SNI_MAX 256
/* Bytes of an ncclUniqueId (NCCL_UNIQUE_ID_BYTES), passed by value. */
#define PLB_NCCL_ID_BYTES 128

/* Record kinds. Values are stable: they travel in ring buffers and index the
 * counters map. Rust keeps them as plain integers, never as an enum. */
enum plb_event_kind {
	PLB_EV_PROC_EXEC = 1,
	PLB_EV_PROC_FORK = 2,
	PLB_EV_PROC_EXIT = 3,
	PLB_EV_PROC_EXEC_FAILED = 4,
	PLB_EV_FILE_OPEN = 10,
	PLB_EV_FILE_UNLINK = 11,
	PLB_EV_FILE_RENAME = 12,
	/* Byte and blocked-time accounting kept in maps, swept by the agent. */
	PLB_EV_IO = 15,
	PLB_EV_NET_CONNECT = 20,
	PLB_EV_NET_ACCEPT = 21,
	PLB_EV_NET_CLOSE = 22,
	PLB_EV_NET_DNS = 23,
	PLB_EV_UNIX_CONNECT = 24,
	PLB_EV_SHM = 30,
	PLB_EV_TLS_DATA = 40,
	PLB_EV_TLS_SNI = 41,
	PLB_EV_CUDA = 50,
	PLB_EV_NCCL = 51,
	/* A workload policy decision about a connect or a send. */
	PLB_EV_ENFORCE_NET = 60,
	/* A workload ran an executable its role does not allow. */
	PLB_EV_ENFORCE_EXEC = 61,
	/* A workload opened, created, removed or renamed a file its role does
	 * not allow. */
	PLB_EV_ENFORCE_FILE = 62,
	/* An LLM request past its role's rate limit, or a connect refused
	 * while the process's request budget is spent. */
	PLB_EV_ENFORCE_RATE = 63,
	PLB_EV_KIND_MAX = 64,
};

/* What happened to an event a program tried to emit. */
enum plb_outcome {
	PLB_OUT_EMITTED = 0,      /* written to the ring buffer */
	PLB_OUT_RINGBUF_FULL = 1, /* lost: no room in the ring buffer */
	PLB_OUT_READ_FAILED = 2,  /* emitted, but a string read failed (field empty) */
	PLB_OUT_MAP_FULL = 3,     /* a helper map could not take an entry */
	PLB_OUT_FILTERED = 4,     /* dropped by a configured allow/deny filter */
	PLB_OUT_COLLAPSED = 5,    /* a repeat folded into an earlier record's count */
	PLB_OUT_MAX = 6,
};

/* What an IO accounting entry is about (struct plb_io_key.kind). */
enum plb_io_kind {
	PLB_IO_FILE = 1, /* writes to a regular file */
	PLB_IO_PIPE = 2, /* pipes and FIFOs */
	PLB_IO_UNIX = 3, /* unix-domain sockets */
};

/* struct plb_net_*.transport */
enum plb_transport {
	PLB_TRANSPORT_TCP = 1,
	PLB_TRANSPORT_UDP = 2,
	PLB_TRANSPORT_UNIX_STREAM = 3,
	PLB_TRANSPORT_UNIX_DGRAM = 4,
};

/* Who opened the connection, from this side's point of view. */
enum plb_direction {
	PLB_DIR_CONNECT = 1,
	PLB_DIR_ACCEPT = 2,
};

/* Bits of struct plb_filter_config.flags: which allow-lists are active.
 * Deny entries always apply. */
enum plb_filter_flags {
	PLB_FILTER_ALLOW_PIDS = 1,
	PLB_FILTER_ALLOW_CGROUPS = 2,
	PLB_FILTER_ALLOW_COMMS = 4,
	PLB_FILTER_HAS_PIDS = 8,
	PLB_FILTER_HAS_CGROUPS = 16,
	PLB_FILTER_HAS_COMMS = 32,
};

/* Values of the filter maps. */
enum plb_filter_verdict {
	PLB_FILTER_ALLOW = 1,
	PLB_FILTER_DENY = 2,
};

/* Index into the per-CPU counters map: one slot per (kind, outcome). */
#define PLB_COUNTER_INDEX(kind, outcome) ((kind) * PLB_OUT_MAX + (outcome))
#define PLB_COUNTERS_LEN (PLB_EV_KIND_MAX * PLB_OUT_MAX)

struct plb_event_header {
	__u64 ts_boot_ns; /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id;  /* cgroup v2 id of the task */
	__u32 pid;        /* thread-group id */
	__u32 tid;
	__u16 kind;       /* enum plb_event_kind */
	__u16 size;       /* bytes in the whole record, header included */
	__u32 _pad0;
};

/* sched_process_exec. Followed by args_len bytes of argv (NUL-separated),
 * read from the new image's mm->arg_start, where the kernel has just copied
 * them (so the pages are resident). */
struct plb_proc_exec {
	struct plb_event_header hdr;
	__u64 start_boot_ns;  /* task start, CLOCK_BOOTTIME ns */
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 old_tid;        /* the thread that called execve */
	__u16 filename_len;   /* bytes in filename including the NUL; 0 = unread */
	__u16 args_len;
	__u8 args_truncated;
	__u8 _pad0[3];
	char comm[PLB_COMM_LEN];
	char filename[PLB_FILENAME_MAX];
};

/* sched_process_fork of a new process (threads and kernel threads are not
 * reported). The header names the child. */
struct plb_proc_fork {
	struct plb_event_header hdr;
	__u64 start_boot_ns;  /* child start */
	__u32 parent_pid;
	__u32 parent_tid;
	__u32 uid;
	__u32 gid;
	char comm[PLB_COMM_LEN];
};

/* sched_process_exit of the last thread of a user process. */
struct plb_proc_exit {
	struct plb_event_header hdr;
	__u64 start_boot_ns;
	__u32 exit_code;      /* wait status: code << 8 | core dump 0x80 | signal */
	__u32 ppid;
	char comm[PLB_COMM_LEN];
};

/* sys_exit_execve/execveat with an error. Followed by args_len bytes of argv,
 * read at syscall exit from the caller's memory, which the kernel has just
 * touched while copying it. */
struct plb_proc_exec_failed {
	struct plb_event_header hdr;
	__u64 start_boot_ns;  /* start of the process that called execve */
	__s32 error;          /* negative errno */
	__u16 filename_len;
	__u16 args_len;
	__u8 args_truncated;
	__u8 _pad0[7];
	char comm[PLB_COMM_LEN];
	char filename[PLB_FILENAME_MAX];
};

/* ---- Files ------------------------------------------------------------ */

/* Identity of an open for collapsing repeats: the opened file (dev, ino, gen)
 * or, for a failed open, a hash of the path asked for. */
struct plb_open_key {
	__u32 tgid;
	__u32 flags;  /* open flags that change meaning (access mode, create, trunc) */
	__u64 dev;    /* 0 for a failed open */
	__u64 ino;    /* or the path hash for a failed open */
	__s32 result; /* 0 on success, else -errno */
	__u32 gen;    /* i_generation: a new file that reuses a freed inode number differs here */
};

/* Value of the collapse map. `repeats` only grows; the agent reports the
 * difference since it last looked. */
struct plb_open_repeats {
	__u64 window_start_ns;
	__u64 last_ns;
	__u64 repeats;
};

/* A path in a record: base_len bytes resolved in the kernel (absolute, from
 * a dentry), then rel_len bytes of the caller's string (empty when the base
 * is the whole path; appended to the base otherwise). */
struct plb_path_lens {
	__u16 base_len;
	__u16 rel_len;
	__u8 truncated; /* the dentry walk stopped at PLB_PATH_DEPTH */
	__u8 _pad0[3];
};

/* open/openat/openat2/creat: the first open of a file in a window. Followed by
 * the path. */
struct plb_file_open {
	struct plb_event_header hdr;
	struct plb_open_key key;
	__s64 result; /* fd or -errno */
	__u32 mode;   /* i_mode of the opened file */
	__u32 _pad0;
	struct plb_path_lens path;
};

/* unlink/unlinkat/rmdir. Followed by the path. */
struct plb_file_unlink {
	struct plb_event_header hdr;
	__s64 result;
	__u32 flags;
	__u32 _pad0;
	struct plb_path_lens path;
};

/* rename/renameat/renameat2. Followed by the old path, then the new one. */
struct plb_file_rename {
	struct plb_event_header hdr;
	__s64 result;
	__u32 flags;
	__u32 _pad0;
	struct plb_path_lens from;
	struct plb_path_lens to;
};

/* ---- IO accounting (maps, not records) -------------------------------- */

/* One file, pipe or socket as one process used it. Filesystems hand a freed
 * inode number to the next new file at once (ext4 does); its generation
 * differs, so two short-lived files never share an entry. Pipes and sockets
 * have generation 0 and numbers that are not reused until a 32-bit counter
 * wraps (get_next_ino). */
struct plb_io_key {
	__u32 tgid;
	__u32 kind; /* enum plb_io_kind */
	__u64 dev;
	__u64 ino;  /* the file, pipe or socket inode */
	__u32 gen;  /* i_generation */
	__u32 _pad0;
};

/* Totals since the entry was created; they only grow. */
struct plb_io_stats {
	__u64 bytes_read;
	__u64 bytes_written;
	__u64 reads;
	__u64 writes;
	__u64 read_blocked_ns;  /* time inside read-side calls */
	__u64 write_blocked_ns; /* time inside write-side calls */
	__u64 first_ns;
	__u64 last_ns;
	__u64 peer_ino;  /* unix socket: the other end's inode */
	__u32 peer_tgid; /* unix socket: SO_PEERCRED pid of the other end */
	__u32 _pad0;
};

/* ---- Network ---------------------------------------------------------- */

struct plb_sockaddr {
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
	__u16 port;    /* host byte order */
	__u16 family;  /* AF_INET, AF_INET6 */
	__u32 _pad0;
};

/* A TCP connect that completed or failed (inet_sock_set_state), or a UDP
 * connect (syscall). */
struct plb_net_connect {
	struct plb_event_header hdr;
	struct plb_sockaddr local;
	struct plb_sockaddr remote;
	__u64 sock_id;    /* identifies the socket while it lives */
	__u64 latency_ns; /* SYN sent to established or failed; syscall time for UDP */
	__s32 result;     /* 0 or -errno */
	__u16 transport;
	__u16 direction;
};

/* A TCP connection came to an end (state CLOSE). The byte counters count
 * sequence space: the SYN and a FIN take one each, which the agent removes
 * with the help of snd_una, write_seq and sk_shutdown. */
struct plb_net_close {
	struct plb_event_header hdr;
	struct plb_sockaddr local;
	struct plb_sockaddr remote;
	__u64 sock_id;
	__u64 bytes_acked;    /* tcp_sock counters at close */
	__u64 bytes_received;
	__u64 established_ns; /* 0 when the agent did not see it established */
	__u64 closed_ns;
	__u32 old_state;
	__u16 direction;      /* 0 when unknown (connection older than the agent) */
	__u8 shutdown;        /* sk_shutdown: 1 peer's FIN received, 2 ours sent */
	__u8 _pad0;
	__u32 snd_una;
	__u32 write_seq;
};

/* A unix socket connect (syscall) or accept. Followed by path_len bytes of
 * the socket path (abstract names start with a NUL). */
struct plb_unix_connect {
	struct plb_event_header hdr;
	__u64 ino;
	__u64 peer_ino;
	__u64 latency_ns;
	__u32 peer_tgid;
	__s32 result;
	__u16 direction;
	__u16 transport;
	__u16 path_len;
	__u16 _pad0;
};

/* A DNS packet to or from port 53 of a UDP socket. Followed by len bytes of
 * the DNS message. */
struct plb_dns_packet {
	struct plb_event_header hdr;
	struct plb_sockaddr local;
	struct plb_sockaddr remote;
	__u64 cookie;
	__u16 len;
	__u8 egress;   /* 1: sent by the process, 0: received */
	__u8 _pad0[5];
};

/* ---- Shared memory ---------------------------------------------------- */

enum plb_shm_op {
	PLB_SHM_GET = 1,
	PLB_SHM_ATTACH = 2,
};

struct plb_shm {
	struct plb_event_header hdr;
	__s64 result; /* shmid, attach address (as a success flag) or -errno */
	__u64 key;    /* shmget key */
	__u64 size;
	__s32 shmid;
	__u32 op;
	__u32 flags;
	__u32 _pad0;
};

/* ---- TLS plaintext ----------------------------------------------------- */

enum plb_tls_library {
	PLB_TLS_OPENSSL = 1, /* SSL_read/SSL_write and their _ex forms (OpenSSL 1.1, 3; BoringSSL) */
	PLB_TLS_GO = 2,      /* crypto/tls.(*Conn).Read/Write */
};

enum plb_tls_direction {
	PLB_TLS_WRITE = 1,
	PLB_TLS_READ = 2,
};

/* One piece of the plaintext one TLS call moved. A call's capture goes as
 * records with the same (conn_id, call_start_ns), offsets ascending, each
 * followed by len bytes; pieces a full ring buffer refused are missing, and
 * bytes past the capture limit are never sent: the reader knows both from
 * call_len. The header's time is when the data was there (a write's entry, a
 * read's return). */
struct plb_tls_data {
	struct plb_event_header hdr;
	__u64 conn_id;       /* SSL* or *tls.Conn */
	__u64 call_start_ns; /* entry of the call */
	__u32 call_len;      /* bytes the call moved */
	__u32 offset;        /* of this piece within the call */
	__u32 len;           /* bytes following */
	__s32 fd;            /* the socket the library used; -1 when unknown */
	__u8 direction;      /* enum plb_tls_direction */
	__u8 library;        /* enum plb_tls_library */
	__u8 _pad0[6];
};

/* The server name a client asked for (SSL_set_tlsext_host_name, which is
 * SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, 0, name)). */
struct plb_tls_sni {
	struct plb_event_header hdr;
	__u64 conn_id;
	__u16 name_len; /* bytes of name, without the NUL */
	__u8 _pad0[6];
	char name[PLB_TLS_SNI_MAX];
};

/* ---- GPU: CUDA runtime and NCCL calls ---------------------------------- */

/* Which call a struct plb_cuda_call is (`_ptsz`/`_ptds` forms share theirs). */
enum plb_cuda_api {
	PLB_CUDA_LAUNCH_KERNEL = 1,
	PLB_CUDA_MEMCPY = 2,
	PLB_CUDA_MEMCPY_ASYNC = 3,
	PLB_CUDA_MALLOC = 4,
	PLB_CUDA_FREE = 5,
	PLB_CUDA_STREAM_SYNCHRONIZE = 6,
	PLB_CUDA_DEVICE_SYNCHRONIZE = 7,
	PLB_CUDA_LAUNCH_KERNEL_EX = 8,
	PLB_CUDA_GRAPH_LAUNCH = 9,
	PLB_CUDA_SET_DEVICE = 10,
};

/* Which call a struct plb_nccl_call is. */
enum plb_nccl_op {
	PLB_NCCL_COMM_INIT = 1,
	PLB_NCCL_ALL_REDUCE = 2,
	PLB_NCCL_ALL_GATHER = 3,
	PLB_NCCL_REDUCE_SCATTER = 4,
	PLB_NCCL_BROADCAST = 5,
	PLB_NCCL_REDUCE = 6,
	PLB_NCCL_SEND = 7,
	PLB_NCCL_RECV = 8,
	PLB_NCCL_GROUP_START = 9,
	PLB_NCCL_GROUP_END = 10,
	PLB_NCCL_COMM_SPLIT = 11,
	PLB_NCCL_COMM_DESTROY = 12,
};

/* One libcudart call, sent at its return. The header's time is the call's
 * entry. Fields a call does not have are 0 (device: -1). */
struct plb_cuda_call {
	struct plb_event_header hdr;
	__u64 duration_ns;  /* entry to return */
	__u64 handle;       /* launch: the kernel's host function; graph launch: the graph */
	__u64 stream;
	__u64 bytes;        /* memcpy, malloc: bytes; launch: dynamic shared memory */
	__u32 grid[3];
	__u32 block[3];
	__s32 result;       /* cudaError_t */
	__s32 memcpy_kind;  /* enum cudaMemcpyKind */
	__s32 device;       /* cudaSetDevice's argument */
	__u16 api;          /* enum plb_cuda_api */
	__u16 _pad0;
};

/* One NCCL call, sent at its return. The header's time is the call's entry.
 * A communicator init is followed by id_len bytes of its ncclUniqueId. */
struct plb_nccl_call {
	struct plb_event_header hdr;
	__u64 duration_ns;
	__u64 comm;         /* ncclComm_t; init and split: the one created (0: none) */
	__u64 parent_comm;  /* split: the communicator split */
	__u64 count;        /* elements (all-gather: sendcount, reduce-scatter: recvcount) */
	__u64 stream;
	__s32 result;       /* ncclResult_t */
	__s32 datatype;     /* ncclDataType_t */
	__s32 reduce_op;    /* ncclRedOp_t */
	__s32 peer;         /* send/recv: the peer; broadcast/reduce: the root;
	                       split: the key */
	__s32 nranks;       /* init */
	__s32 rank;         /* init */
	__s32 color;        /* split */
	__u16 op;           /* enum plb_nccl_op */
	__u16 id_len;       /* 0, or PLB_NCCL_ID_BYTES after an init */
};

/* ---- Enforcement: workload policy decisions ----------------------------- */

/* How a family of a role's rules acts on what they do not allow. */
enum plb_mode {
	PLB_MODE_OFF = 0,     /* the family is not restricted */
	PLB_MODE_AUDIT = 1,   /* allowed, and recorded as would_deny */
	PLB_MODE_ENFORCE = 2, /* refused */
};

/* What a decision did, as far as the kernel let it. */
enum plb_decision {
	PLB_DECISION_DENIED = 1,       /* refused before the effect (EPERM) */
	PLB_DECISION_KILLED_AFTER = 2, /* SIGKILL once the effect had begun */
	PLB_DECISION_WOULD_DENY = 3,   /* audit: allowed and recorded */
	PLB_DECISION_ABORTED = 4,      /* an open connection aborted (the process lives) */
	PLB_DECISION_HELD = 5,         /* the process stopped before the effect, until released */
	PLB_DECISION_KILLED_BEFORE = 6, /* SIGKILL before the effect (no byte of the request left) */
};

/* The hook that decided. */
enum plb_mechanism {
	PLB_MECH_CGROUP_SOCK_ADDR = 1, /* cgroup/connect4|6, cgroup/sendmsg4|6 at the cgroup2 root */
	PLB_MECH_SIGNAL = 2,           /* bpf_send_signal(SIGKILL) from a tracepoint */
	PLB_MECH_LSM = 3,              /* a BPF LSM hook's return value */
	PLB_MECH_SOCK_DESTROY = 4,     /* bpf_sock_destroy from an iter/tcp program */
	PLB_MECH_UPROBE = 5,           /* bpf_send_signal from a uprobe at the TLS library's write */
	PLB_MECH_CGROUP_SKB = 6,       /* a cgroup_skb program dropped the packet */
};

/* The file operation decided on. */
enum plb_file_op {
	PLB_FILE_OP_OPEN = 1,
	PLB_FILE_OP_CREATE = 2,
	PLB_FILE_OP_UNLINK = 3,
	PLB_FILE_OP_RENAME = 4,
};

/* What a role's file entry allows below it (the value of a file rule). */
enum plb_file_access {
	PLB_FILE_READ_ONLY = 1,
	PLB_FILE_READ_WRITE = 2,
	PLB_FILE_DENY = 3, /* wins over any entry below or above it */
};

/* The network operation decided on. */
enum plb_net_op {
	PLB_NET_OP_CONNECT = 1,
	PLB_NET_OP_SENDMSG = 2,
	/* LLM endpoints ([roles.llm] allow; family llm): */
	PLB_NET_OP_LLM_CONNECT = 3,     /* a connect to an address only disallowed endpoints have */
	PLB_NET_OP_LLM_SERVER_NAME = 4, /* a ClientHello naming a disallowed endpoint's host */
	PLB_NET_OP_LLM_UNREADABLE = 5,  /* a ClientHello to an LLM address whose server name cannot be read */
};

/* How an executable allow-list entry covers: the file itself, or every file
 * below a directory. */
enum plb_exec_cover {
	PLB_EXEC_FILE = 1,
	PLB_EXEC_TREE = 2,
};

#define PLB_ROLES_MAX 256
/* Directories walked up from an executable to find an allowed tree. */
#define PLB_EXEC_DEPTH 16
#define PLB_EXEC_PATH_MAX 256
#define PLB_NET_RULE_PORTS 8

/* A role's modes per family (array map indexed by role id). */
struct plb_role {
	__u8 net_mode;  /* enum plb_mode */
	__u8 exec_mode;
	__u8 file_mode;
	__u8 llm_mode;  /* [roles.llm] allow: the LLM endpoints it may call */
};

/* The workload a process belongs to (map value keyed by thread-group id);
 * inherited by every process it forks, kept across exec. */
struct plb_pod {
	__u32 role;
	__u32 pod; /* the enrolment: one per wrap or matched process tree */
};

/* What the network allow-list (an LPM trie) is keyed by: the role, then the
 * address as IPv6 (IPv4 as ::ffff:a.b.c.d). */
struct plb_net_rule_addr {
	__u32 role;
	__u8 addr[16];
};

/* The trie's key: prefixlen counts the role's 32 bits plus the address's
 * prefix. */
struct plb_net_rule_key {
	__u32 prefixlen;
	struct plb_net_rule_addr data;
};

/* The ports allowed at an address prefix (every rule covering it merged). */
struct plb_net_rule {
	__u16 ports[PLB_NET_RULE_PORTS]; /* host byte order */
	__u16 nports;                    /* 0: any port */
	__u16 _pad0[3];
};

/* A host name a role allows, as its DNS answers are matched in the kernel:
 * the hash (PLB_NAME_HASH) of the name in DNS wire form (length-prefixed
 * labels, ASCII lower case, without the final zero), and whether the rule
 * covers the names below it (`*.name`) rather than the name itself. The
 * value is a struct plb_net_rule: the ports its rules allow. */
struct plb_dns_name {
	__u64 hash;
	__u32 role;
	__u32 below;
};

/* PLB_NAME_HASH: FNV-1a over the bytes from the last to the first, so the
 * hash of every suffix is on the way to the hash of the whole name. */
#define PLB_NAME_HASH_BASIS 0xcbf29ce484222325ULL
#define PLB_NAME_HASH_PRIME 0x100000001b3ULL

/* A file or directory a role's rule names, by inode: the key of the exec
 * allow-list (value: enum plb_exec_cover) and of the file rules (value:
 * enum plb_file_access). dev is the kernel's (MAJOR << 20 | MINOR). */
struct plb_role_inode {
	__u32 role;
	__u32 dev;
	__u64 ino;
};

/* An exec a role does not allow, seen once it succeeded: the process was
 * killed before the new image ran an instruction, or (audit) recorded.
 * Followed by path_len bytes of the file name as the caller gave it. */
struct plb_enforce_exec {
	struct plb_event_header hdr;
	__u32 role;
	__u32 pod;
	__u8 decision;  /* enum plb_decision */
	__u8 mechanism; /* enum plb_mechanism */
	__u16 path_len;
	__u32 _pad0;
};

/* A file operation a role does not allow: refused (LSM), the process killed
 * once the open succeeded (fallback), or recorded in audit. Followed by
 * path_len bytes of the path as the process sees it. */
struct plb_enforce_file {
	struct plb_event_header hdr;
	__u32 role;
	__u32 pod;
	__u8 decision;  /* enum plb_decision */
	__u8 mechanism; /* enum plb_mechanism */
	__u8 op;        /* enum plb_file_op */
	__u8 write;     /* opened for writing, or a change to the tree */
	__u16 path_len;
	__u8 truncated; /* the path's walk stopped at PLB_PATH_DEPTH */
	__u8 _pad0;
};

/* A connect or send a role does not allow: refused, or recorded in audit. */
struct plb_enforce_net {
	struct plb_event_header hdr;
	struct plb_sockaddr remote;
	__u32 role;
	__u32 pod;
	__u8 decision;  /* enum plb_decision */
	__u8 mechanism; /* enum plb_mechanism */
	__u8 op;        /* enum plb_net_op */
	__u8 protocol;  /* IPPROTO_TCP, IPPROTO_UDP */
	__u32 _pad0;
};

/* ---- LLM request rate: a token bucket per (role, process) -------------- */

/* What a role's rate limit does to a request past it (struct plb_rate_rule). */
enum plb_rate_action {
	PLB_RATE_HOLD = 1, /* SIGSTOP before the request leaves; the agent resumes it */
	PLB_RATE_DENY = 2, /* the process's new TCP connections are refused */
	PLB_RATE_KILL = 3, /* SIGKILL before the request leaves */
};

/* What a struct plb_enforce_rate is about. */
enum plb_rate_op {
	PLB_RATE_OP_REQUEST = 1, /* an LLM request starting (the TLS library's write) */
	PLB_RATE_OP_CONNECT = 2, /* a TCP connect while the budget is spent */
};

/* Bits of struct plb_rate_bucket.flags. */
enum plb_rate_flag {
	PLB_RATE_HELD = 1,     /* stopped by the uprobe; the agent resumes it */
	PLB_RATE_DENYING = 2,  /* after a hold: connects refused until a token is back */
};

/* A role's rate limit (array map indexed by role id; requests 0: none). The
 * bucket is GCRA: each request costs cost_ns = window_ns / requests, and
 * a process may be at most window_ns ahead of time (requests at once). */
struct plb_rate_rule {
	__u64 window_ns;
	__u64 cost_ns;
	__u32 requests;
	__u8 action; /* enum plb_rate_action */
	__u8 mode;   /* enum plb_mode: audit records would_deny only */
	__u16 _pad0;
};

struct plb_rate_key {
	__u32 role;
	__u32 tgid;
};

/* A process's bucket: tat_ns is the theoretical arrival time (boot ns) of
 * its next request; its credit at `now` is window_ns - max(tat_ns - now, 0).
 * A held request is paid for (tat_ns moves on): it is released once the
 * credit is back to 0, at tat_ns - window_ns. */
struct plb_rate_bucket {
	__u64 tat_ns;
	__u64 held_ns;   /* when the hold began */
	__u32 request;   /* the held request's number in the window */
	__u32 flags;     /* enum plb_rate_flag */
};

/* An LLM request past the rate limit (held, killed before it left, or
 * would_deny in audit), or a connect refused while the budget is spent. */
struct plb_enforce_rate {
	struct plb_event_header hdr;
	struct plb_sockaddr remote; /* connect: where to; request: zero */
	__u32 role;
	__u32 pod;
	__u32 request;  /* the request's number in the window (requests + 1 and on) */
	__u32 requests; /* the limit */
	__u32 window_s;
	__u8 decision;  /* enum plb_decision */
	__u8 mechanism; /* enum plb_mechanism */
	__u8 op;        /* enum plb_rate_op */
	__u8 _pad0;
};

/* ---- Filters (maps the agent fills) ------------------------------------ */

struct plb_comm_key {
	char comm[PLB_COMM_LEN];
};

_Static_assert(sizeof(struct plb_event_header) == 32, "plb_event_header size");
_Static_assert(sizeof(struct plb_open_key) == 32, "plb_open_key size");
_Static_assert(sizeof(struct plb_file_open) == 88, "plb_file_open size");
_Static_assert(sizeof(struct plb_file_unlink) == 56, "plb_file_unlink size");
_Static_assert(sizeof(struct plb_file_rename) == 64, "plb_file_rename size");
_Static_assert(sizeof(struct plb_io_key) == 32, "plb_io_key size");
_Static_assert(sizeof(struct plb_io_stats) == 80, "plb_io_stats size");
_Static_assert(sizeof(struct plb_net_connect) == 104, "plb_net_connect size");
_Static_assert(sizeof(struct plb_net_close) == 136, "plb_net_close size");
_Static_assert(sizeof(struct plb_unix_connect) == 72, "plb_unix_connect size");
_Static_assert(sizeof(struct plb_dns_packet) == 96, "plb_dns_packet size");
_Static_assert(sizeof(struct plb_shm) == 72, "plb_shm size");
_Static_assert(sizeof(struct plb_proc_exec) == 336, "plb_proc_exec size");
_Static_assert(sizeof(struct plb_proc_fork) == 72, "plb_proc_fork size");
_Static_assert(sizeof(struct plb_proc_exit) == 64, "plb_proc_exit size");
_Static_assert(sizeof(struct plb_proc_exec_failed) == 328, "plb_proc_exec_failed size");
_Static_assert(sizeof(struct plb_tls_data) == 72, "plb_tls_data size");
_Static_assert(sizeof(struct plb_tls_sni) == 304, "plb_tls_sni size");
_Static_assert(sizeof(struct plb_cuda_call) == 104, "plb_cuda_call size");
_Static_assert(sizeof(struct plb_nccl_call) == 104, "plb_nccl_call size");
_Static_assert(sizeof(struct plb_enforce_net) == 72, "plb_enforce_net size");
_Static_assert(sizeof(struct plb_enforce_exec) == 48, "plb_enforce_exec size");
_Static_assert(sizeof(struct plb_enforce_file) == 48, "plb_enforce_file size");
_Static_assert(sizeof(struct plb_enforce_rate) == 80, "plb_enforce_rate size");
_Static_assert(sizeof(struct plb_rate_rule) == 24, "plb_rate_rule size");
_Static_assert(sizeof(struct plb_rate_bucket) == 24, "plb_rate_bucket size");
_Static_assert(sizeof(struct plb_role_inode) == 16, "plb_role_inode size");
_Static_assert(sizeof(struct plb_dns_name) == 16, "plb_dns_name size");
_Static_assert(sizeof(struct plb_net_rule_key) == 24, "plb_net_rule_key size");
_Static_assert(sizeof(struct plb_net_rule) == 24, "plb_net_rule size");
_Static_assert((PLB_TLS_CHUNK & (PLB_TLS_CHUNK - 1)) == 0, "PLB_TLS_CHUNK is a power of two");
_Static_assert((PLB_ARGS_MAX & (PLB_ARGS_MAX - 1)) == 0, "PLB_ARGS_MAX is a power of two");

#endif /* PLUMBLINE_ABI_H */
