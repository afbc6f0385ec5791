// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * TLS plaintext at the library boundary, where it is still readable:
 *
 *   - OpenSSL (and BoringSSL, and OpenSSL linked into an executable such as
 *     node): SSL_write/SSL_read and SSL_write_ex/SSL_read_ex. Entry remembers
 *     the buffer; the return probe copies what the call really moved.
 *   - Go crypto/tls: (*Conn).Write copies at entry (register ABI: the
 *     receiver in ax, the slice in bx/cx); (*Conn).Read remembers its buffer
 *     per goroutine (r14) and copies at each RET instruction, because Go moves
 *     stacks and a uretprobe's return-address trick breaks them.
 *
 * The agent attaches these to every file that holds such a library (uprobes
 * live on the file, so every process mapping it is covered). A call's
 * plaintext goes out as pieces of up to PLB_TLS_CHUNK bytes, up to
 * plb_tls_max_bytes per call; the record says how much the call moved, so a
 * cut or a lost piece is visible, never silent.
 *
 * The socket a call used is learned from the read/write syscall the library
 * makes while inside the call (OpenSSL's socket BIO). Memory-BIO users such
 * as node write later, outside the call: their fd stays unknown.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "emit.bpf.h"
#include "filter.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Plaintext bytes copied per call at most; set by the loader. */
const volatile __u32 plb_tls_max_bytes = 1024 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} tls_events SEC(".maps");

/* A call between its entry and its return. */
struct tls_call {
	__u64 conn_id;
	__u64 buf;
	__u64 out_len; /* _ex: where the call stores the byte count; 0 otherwise */
	__u64 start_ns;
	__s32 fd;
	__u8 direction;
	__u8 library;
	__u8 _pad[2];
};

/* OpenSSL calls in flight, by thread (pid_tgid). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* Go reads in flight, by (process, goroutine): a goroutine may resume on
 * another thread. */
struct go_call_key {
	__u64 goroutine;
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_call_key);
	__type(value, struct tls_call);
} go_reads SEC(".maps");

struct tls_scratch {
	struct plb_tls_data rec;
	__u8 data[PLB_TLS_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_scratch);
} tls_scratch SEC(".maps");

struct emit_ctx {
	__u64 buf;
	__u64 cap;
};

/* One piece: the scratch record's header is already filled. */
static long emit_piece(__u32 index, void *data)
{
	struct emit_ctx *ctx = data;
	__u32 zero = 0;
	struct tls_scratch *s = bpf_map_lookup_elem(&tls_scratch, &zero);
	__u64 offset = (__u64)index * PLB_TLS_CHUNK;
	__u64 piece;

	if (!s || offset >= ctx->cap)
		return 1;
	piece = ctx->cap - offset;
	if (piece > PLB_TLS_CHUNK)
		piece = PLB_TLS_CHUNK;
	s->rec.offset = offset;
	s->rec.len = piece;
	s->rec.hdr.size = sizeof(s->rec) + piece;
	if (bpf_probe_read_user(s->data, piece, (void *)(ctx->buf + offset)) != 0) {
		plb_count(PLB_EV_TLS_DATA, PLB_OUT_READ_FAILED);
		return 1;
	}
	plb_emit(&tls_events, s, sizeof(s->rec) + piece, PLB_EV_TLS_DATA);
	return 0;
}

/* Sends up to plb_tls_max_bytes of `len` bytes at the call's buffer as
 * pieces. bpf_loop (5.17+) keeps the verifier's work to one piece. */
static __always_inline void emit_plaintext(struct tls_call *call, __u64 len)
{
	__u32 zero = 0;
	struct tls_scratch *s = bpf_map_lookup_elem(&tls_scratch, &zero);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct emit_ctx ctx = { .buf = call->buf, .cap = len < plb_tls_max_bytes ? len : plb_tls_max_bytes };
	__u32 pieces;

	if (!s || len == 0)
		return;
	plb_fill_header(&s->rec.hdr, PLB_EV_TLS_DATA, 0, task);
	s->rec.conn_id = call->conn_id;
	s->rec.call_start_ns = call->start_ns;
	s->rec.call_len = len > 0xffffffffULL ? 0xffffffffU : (__u32)len;
	s->rec.fd = call->fd;
	s->rec.direction = call->direction;
	s->rec.library = call->library;
	__builtin_memset(s->rec._pad0, 0, sizeof(s->rec._pad0));
	pieces = (ctx.cap + PLB_TLS_CHUNK - 1) / PLB_TLS_CHUNK;
	if (pieces > PLB_TLS_MAX_CHUNKS)
		pieces = PLB_TLS_MAX_CHUNKS;
	bpf_loop(pieces, emit_piece, &ctx, 0);
}

static __always_inline int ssl_enter(__u64 ssl, __u64 buf, __u64 out_len, __u8 direction)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call call = {
		.conn_id = ssl,
		.buf = buf,
		.out_len = out_len,
		.start_ns = bpf_ktime_get_boot_ns(),
		.fd = -1,
		.direction = direction,
		.library = PLB_TLS_OPENSSL,
	};

	if (plb_filtered(PLB_EV_TLS_DATA))
		return 0;
	if (bpf_map_update_elem(&tls_calls, &id, &call, BPF_ANY) != 0)
		plb_count(PLB_EV_TLS_DATA, PLB_OUT_MAP_FULL);
	return 0;
}

/* int SSL_write(SSL *ssl, const void *buf, int num) */
SEC("uprobe")
int plb_ssl_write(struct pt_regs *ctx)
{
	return ssl_enter(ctx->di, ctx->si, 0, PLB_TLS_WRITE);
}

/* int SSL_read(SSL *ssl, void *buf, int num) */
SEC("uprobe")
int plb_ssl_read(struct pt_regs *ctx)
{
	return ssl_enter(ctx->di, ctx->si, 0, PLB_TLS_READ);
}

/* int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written) */
SEC("uprobe")
int plb_ssl_write_ex(struct pt_regs *ctx)
{
	return ssl_enter(ctx->di, ctx->si, ctx->cx, PLB_TLS_WRITE);
}

/* int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes) */
SEC("uprobe")
int plb_ssl_read_ex(struct pt_regs *ctx)
{
	return ssl_enter(ctx->di, ctx->si, ctx->cx, PLB_TLS_READ);
}

/* The return of any of the four. */
SEC("uretprobe")
int plb_ssl_return(struct pt_regs *ctx)
{
	/* SSL_* return int: only eax is theirs. */
	int ret = (int)ctx->ax;
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *call = bpf_map_lookup_elem(&tls_calls, &id);
	__u64 len = 0;

	if (!call)
		return 0;
	if (call->out_len) {
		if (ret == 1)
			bpf_probe_read_user(&len, sizeof(len), (void *)call->out_len);
	} else if (ret > 0) {
		len = ret;
	}
	if (len)
		emit_plaintext(call, len);
	bpf_map_delete_elem(&tls_calls, &id);
	return 0;
}

/* long SSL_ctrl(SSL *s, int cmd, long larg, void *parg): command 55
 * (SSL_CTRL_SET_TLSEXT_HOSTNAME) names the server the client asks for. */
#define PLB_SSL_CTRL_SET_TLSEXT_HOSTNAME 55

SEC("uprobe")
int plb_ssl_ctrl(struct pt_regs *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct plb_tls_sni *rec;
	long n;

	if ((int)ctx->si != PLB_SSL_CTRL_SET_TLSEXT_HOSTNAME || !ctx->cx)
		return 0;
	if (plb_filtered(PLB_EV_TLS_SNI))
		return 0;
	rec = plb_reserve(&tls_events, sizeof(*rec), PLB_EV_TLS_SNI);
	if (!rec)
		return 0;
	plb_fill_header(&rec->hdr, PLB_EV_TLS_SNI, sizeof(*rec), task);
	rec->conn_id = ctx->di;
	__builtin_memset(rec->_pad0, 0, sizeof(rec->_pad0));
	n = bpf_probe_read_user_str(rec->name, sizeof(rec->name), (void *)ctx->cx);
	if (n <= 0) {
		rec->name_len = 0;
		plb_count(PLB_EV_TLS_SNI, PLB_OUT_READ_FAILED);
	} else {
		rec->name_len = n - 1;
	}
	plb_submit(&tls_events, rec, PLB_EV_TLS_SNI);
	return 0;
}

/* func (c *Conn) Write(b []byte) (int, error): c in ax, b's pointer and
 * length in bx and cx. The bytes are final at entry. */
SEC("uprobe")
int plb_go_tls_write(struct pt_regs *ctx)
{
	struct tls_call call = {
		.conn_id = ctx->ax,
		.buf = ctx->bx,
		.start_ns = bpf_ktime_get_boot_ns(),
		.fd = -1,
		.direction = PLB_TLS_WRITE,
		.library = PLB_TLS_GO,
	};

	if (plb_filtered(PLB_EV_TLS_DATA))
		return 0;
	emit_plaintext(&call, ctx->cx);
	return 0;
}

/* func (c *Conn) Read(b []byte) (int, error), at entry. */
SEC("uprobe")
int plb_go_tls_read(struct pt_regs *ctx)
{
	struct go_call_key key = {
		.goroutine = ctx->r14,
		.tgid = bpf_get_current_pid_tgid() >> 32,
	};
	struct tls_call call = {
		.conn_id = ctx->ax,
		.buf = ctx->bx,
		.start_ns = bpf_ktime_get_boot_ns(),
		.fd = -1,
		.direction = PLB_TLS_READ,
		.library = PLB_TLS_GO,
	};

	if (plb_filtered(PLB_EV_TLS_DATA))
		return 0;
	if (bpf_map_update_elem(&go_reads, &key, &call, BPF_ANY) != 0)
		plb_count(PLB_EV_TLS_DATA, PLB_OUT_MAP_FULL);
	return 0;
}

/* (*Conn).Read at one of its RET instructions: n in ax. */
SEC("uprobe")
int plb_go_tls_read_return(struct pt_regs *ctx)
{
	struct go_call_key key = {
		.goroutine = ctx->r14,
		.tgid = bpf_get_current_pid_tgid() >> 32,
	};
	struct tls_call *call = bpf_map_lookup_elem(&go_reads, &key);
	long n = ctx->ax;

	if (!call)
		return 0;
	if (n > 0)
		emit_plaintext(call, n);
	bpf_map_delete_elem(&go_reads, &key);
	return 0;
}

/* The socket an OpenSSL call is using: the syscall its BIO makes. */
static __always_inline int note_fd(long fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *call = bpf_map_lookup_elem(&tls_calls, &id);

	if (call && call->fd < 0)
		call->fd = fd;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int plb_tls_fd_write(struct plb_syscall_enter_ctx *ctx)
{
	return note_fd(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_read")
int plb_tls_fd_read(struct plb_syscall_enter_ctx *ctx)
{
	return note_fd(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int plb_tls_fd_sendto(struct plb_syscall_enter_ctx *ctx)
{
	return note_fd(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int plb_tls_fd_recvfrom(struct plb_syscall_enter_ctx *ctx)
{
	return note_fd(ctx->args[0]);
}
