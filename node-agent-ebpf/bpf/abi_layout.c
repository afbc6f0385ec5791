// SPDX-License-Identifier: Apache-2.0
/*
 * Built for the host and run by build.rs: prints the size of every ABI struct,
 * the offset and size of every field, and every ABI constant, as the C
 * compiler lays them out. node-agent-ebpf's layout test compares the Rust
 * mirror against this output, field by field.
 */
#include <linux/types.h>
#include <stddef.h>
#include <stdio.h>

#include "plumbline_abi.h"

#define STRUCT(s) printf("struct %s %zu\n", #s, sizeof(struct s))
#define FIELD(s, f) printf("field %s.%s %zu %zu\n", #s, #f, offsetof(struct s, f), sizeof(((struct s *)0)->f))
#define CONST(c) printf("const %s %lld\n", #c, (long long)(c))

int main(void)
{
	CONST(PLB_ABI_VERSION);
	CONST(PLB_COMM_LEN);
	CONST(PLB_FILENAME_MAX);
	CONST(PLB_ARGS_MAX);
	CONST(PLB_EV_PROC_EXEC);
	CONST(PLB_EV_PROC_FORK);
	CONST(PLB_EV_PROC_EXIT);
	CONST(PLB_EV_PROC_EXEC_FAILED);
	CONST(PLB_EV_KIND_MAX);
	CONST(PLB_OUT_EMITTED);
	CONST(PLB_OUT_RINGBUF_FULL);
	CONST(PLB_OUT_READ_FAILED);
	CONST(PLB_OUT_MAP_FULL);
	CONST(PLB_OUT_FILTERED);
	CONST(PLB_OUT_COLLAPSED);
	CONST(PLB_OUT_MAX);
	CONST(PLB_COUNTERS_LEN);
	CONST(PLB_PATH_BASE_MAX);
	CONST(PLB_PATH_REL_MAX);
	CONST(PLB_DNS_MAX);
	CONST(PLB_UNIX_PATH_MAX);
	CONST(PLB_EV_FILE_OPEN);
	CONST(PLB_EV_FILE_UNLINK);
	CONST(PLB_EV_FILE_RENAME);
	CONST(PLB_EV_IO);
	CONST(PLB_EV_NET_CONNECT);
	CONST(PLB_EV_NET_ACCEPT);
	CONST(PLB_EV_NET_CLOSE);
	CONST(PLB_EV_NET_DNS);
	CONST(PLB_EV_UNIX_CONNECT);
	CONST(PLB_EV_SHM);
	CONST(PLB_IO_FILE);
	CONST(PLB_IO_PIPE);
	CONST(PLB_IO_UNIX);
	CONST(PLB_TRANSPORT_TCP);
	CONST(PLB_TRANSPORT_UDP);
	CONST(PLB_TRANSPORT_UNIX_STREAM);
	CONST(PLB_TRANSPORT_UNIX_DGRAM);
	CONST(PLB_DIR_CONNECT);
	CONST(PLB_DIR_ACCEPT);
	CONST(PLB_FILTER_ALLOW_PIDS);
	CONST(PLB_FILTER_ALLOW_CGROUPS);
	CONST(PLB_FILTER_ALLOW_COMMS);
	CONST(PLB_FILTER_HAS_PIDS);
	CONST(PLB_FILTER_HAS_CGROUPS);
	CONST(PLB_FILTER_HAS_COMMS);
	CONST(PLB_FILTER_ALLOW);
	CONST(PLB_FILTER_DENY);
	CONST(PLB_SHM_GET);
	CONST(PLB_SHM_ATTACH);
	CONST(PLB_EV_TLS_DATA);
	CONST(PLB_TLS_CHUNK);
	CONST(PLB_TLS_MAX_CHUNKS);
	CONST(PLB_TLS_OPENSSL);
	CONST(PLB_TLS_GO);
	CONST(PLB_TLS_WRITE);
	CONST(PLB_TLS_READ);
	CONST(PLB_EV_TLS_SNI);
	CONST(PLB_TLS_SNI_MAX);
	CONST(PLB_EV_CUDA);
	CONST(PLB_EV_NCCL);
	CONST(PLB_NCCL_ID_BYTES);
	CONST(PLB_CUDA_LAUNCH_KERNEL);
	CONST(PLB_CUDA_MEMCPY);
	CONST(PLB_CUDA_MEMCPY_ASYNC);
	CONST(PLB_CUDA_MALLOC);
	CONST(PLB_CUDA_FREE);
	CONST(PLB_CUDA_STREAM_SYNCHRONIZE);
	CONST(PLB_CUDA_DEVICE_SYNCHRONIZE);
	CONST(PLB_CUDA_LAUNCH_KERNEL_EX);
	CONST(PLB_CUDA_GRAPH_LAUNCH);
	CONST(PLB_CUDA_SET_DEVICE);
	CONST(PLB_NCCL_COMM_INIT);
	CONST(PLB_NCCL_ALL_REDUCE);
	CONST(PLB_NCCL_ALL_GATHER);
	CONST(PLB_NCCL_REDUCE_SCATTER);
	CONST(PLB_NCCL_BROADCAST);
	CONST(PLB_NCCL_REDUCE);
	CONST(PLB_NCCL_SEND);
	CONST(PLB_NCCL_RECV);
	CONST(PLB_NCCL_GROUP_START);
	CONST(PLB_NCCL_GROUP_END);
	CONST(PLB_NCCL_COMM_SPLIT);
	CONST(PLB_NCCL_COMM_DESTROY);

	STRUCT(plb_event_header);
	FIELD(plb_event_header, ts_boot_ns);
	FIELD(plb_event_header, cgroup_id);
	FIELD(plb_event_header, pid);
	FIELD(plb_event_header, tid);
	FIELD(plb_event_header, kind);
	FIELD(plb_event_header, size);
	FIELD(plb_event_header, _pad0);

	STRUCT(plb_proc_exec);
	FIELD(plb_proc_exec, hdr);
	FIELD(plb_proc_exec, start_boot_ns);
	FIELD(plb_proc_exec, ppid);
	FIELD(plb_proc_exec, uid);
	FIELD(plb_proc_exec, gid);
	FIELD(plb_proc_exec, old_tid);
	FIELD(plb_proc_exec, filename_len);
	FIELD(plb_proc_exec, args_len);
	FIELD(plb_proc_exec, args_truncated);
	FIELD(plb_proc_exec, _pad0);
	FIELD(plb_proc_exec, comm);
	FIELD(plb_proc_exec, filename);

	STRUCT(plb_proc_fork);
	FIELD(plb_proc_fork, hdr);
	FIELD(plb_proc_fork, start_boot_ns);
	FIELD(plb_proc_fork, parent_pid);
	FIELD(plb_proc_fork, parent_tid);
	FIELD(plb_proc_fork, uid);
	FIELD(plb_proc_fork, gid);
	FIELD(plb_proc_fork, comm);

	STRUCT(plb_proc_exit);
	FIELD(plb_proc_exit, hdr);
	FIELD(plb_proc_exit, start_boot_ns);
	FIELD(plb_proc_exit, exit_code);
	FIELD(plb_proc_exit, ppid);
	FIELD(plb_proc_exit, comm);

	STRUCT(plb_proc_exec_failed);
	FIELD(plb_proc_exec_failed, hdr);
	FIELD(plb_proc_exec_failed, start_boot_ns);
	FIELD(plb_proc_exec_failed, error);
	FIELD(plb_proc_exec_failed, filename_len);
	FIELD(plb_proc_exec_failed, args_len);
	FIELD(plb_proc_exec_failed, args_truncated);
	FIELD(plb_proc_exec_failed, _pad0);
	FIELD(plb_proc_exec_failed, comm);
	FIELD(plb_proc_exec_failed, filename);

	STRUCT(plb_open_key);
	FIELD(plb_open_key, tgid);
	FIELD(plb_open_key, flags);
	FIELD(plb_open_key, dev);
	FIELD(plb_open_key, ino);
	FIELD(plb_open_key, result);
	FIELD(plb_open_key, gen);

	STRUCT(plb_open_repeats);
	FIELD(plb_open_repeats, window_start_ns);
	FIELD(plb_open_repeats, last_ns);
	FIELD(plb_open_repeats, repeats);

	STRUCT(plb_path_lens);
	FIELD(plb_path_lens, base_len);
	FIELD(plb_path_lens, rel_len);
	FIELD(plb_path_lens, truncated);
	FIELD(plb_path_lens, _pad0);

	STRUCT(plb_file_open);
	FIELD(plb_file_open, hdr);
	FIELD(plb_file_open, key);
	FIELD(plb_file_open, result);
	FIELD(plb_file_open, mode);
	FIELD(plb_file_open, _pad0);
	FIELD(plb_file_open, path);

	STRUCT(plb_file_unlink);
	FIELD(plb_file_unlink, hdr);
	FIELD(plb_file_unlink, result);
	FIELD(plb_file_unlink, flags);
	FIELD(plb_file_unlink, _pad0);
	FIELD(plb_file_unlink, path);

	STRUCT(plb_file_rename);
	FIELD(plb_file_rename, hdr);
	FIELD(plb_file_rename, result);
	FIELD(plb_file_rename, flags);
	FIELD(plb_file_rename, _pad0);
	FIELD(plb_file_rename, from);
	FIELD(plb_file_rename, to);

	STRUCT(plb_io_key);
	FIELD(plb_io_key, tgid);
	FIELD(plb_io_key, kind);
	FIELD(plb_io_key, dev);
	FIELD(plb_io_key, ino);
	FIELD(plb_io_key, gen);
	FIELD(plb_io_key, _pad0);

	STRUCT(plb_io_stats);
	FIELD(plb_io_stats, bytes_read);
	FIELD(plb_io_stats, bytes_written);
	FIELD(plb_io_stats, reads);
	FIELD(plb_io_stats, writes);
	FIELD(plb_io_stats, read_blocked_ns);
	FIELD(plb_io_stats, write_blocked_ns);
	FIELD(plb_io_stats, first_ns);
	FIELD(plb_io_stats, last_ns);
	FIELD(plb_io_stats, peer_ino);
	FIELD(plb_io_stats, peer_tgid);
	FIELD(plb_io_stats, _pad0);

	STRUCT(plb_sockaddr);
	FIELD(plb_sockaddr, addr);
	FIELD(plb_sockaddr, port);
	FIELD(plb_sockaddr, family);
	FIELD(plb_sockaddr, _pad0);

	STRUCT(plb_net_connect);
	FIELD(plb_net_connect, hdr);
	FIELD(plb_net_connect, local);
	FIELD(plb_net_connect, remote);
	FIELD(plb_net_connect, sock_id);
	FIELD(plb_net_connect, latency_ns);
	FIELD(plb_net_connect, result);
	FIELD(plb_net_connect, transport);
	FIELD(plb_net_connect, direction);

	STRUCT(plb_net_close);
	FIELD(plb_net_close, hdr);
	FIELD(plb_net_close, local);
	FIELD(plb_net_close, remote);
	FIELD(plb_net_close, sock_id);
	FIELD(plb_net_close, bytes_acked);
	FIELD(plb_net_close, bytes_received);
	FIELD(plb_net_close, established_ns);
	FIELD(plb_net_close, closed_ns);
	FIELD(plb_net_close, old_state);
	FIELD(plb_net_close, direction);
	FIELD(plb_net_close, shutdown);
	FIELD(plb_net_close, _pad0);
	FIELD(plb_net_close, snd_una);
	FIELD(plb_net_close, write_seq);

	STRUCT(plb_unix_connect);
	FIELD(plb_unix_connect, hdr);
	FIELD(plb_unix_connect, ino);
	FIELD(plb_unix_connect, peer_ino);
	FIELD(plb_unix_connect, latency_ns);
	FIELD(plb_unix_connect, peer_tgid);
	FIELD(plb_unix_connect, result);
	FIELD(plb_unix_connect, direction);
	FIELD(plb_unix_connect, transport);
	FIELD(plb_unix_connect, path_len);
	FIELD(plb_unix_connect, _pad0);

	STRUCT(plb_dns_packet);
	FIELD(plb_dns_packet, hdr);
	FIELD(plb_dns_packet, local);
	FIELD(plb_dns_packet, remote);
	FIELD(plb_dns_packet, cookie);
	FIELD(plb_dns_packet, len);
	FIELD(plb_dns_packet, egress);
	FIELD(plb_dns_packet, _pad0);

	STRUCT(plb_shm);
	FIELD(plb_shm, hdr);
	FIELD(plb_shm, result);
	FIELD(plb_shm, key);
	FIELD(plb_shm, size);
	FIELD(plb_shm, shmid);
	FIELD(plb_shm, op);
	FIELD(plb_shm, flags);
	FIELD(plb_shm, _pad0);

	STRUCT(plb_tls_data);
	FIELD(plb_tls_data, hdr);
	FIELD(plb_tls_data, conn_id);
	FIELD(plb_tls_data, call_start_ns);
	FIELD(plb_tls_data, call_len);
	FIELD(plb_tls_data, offset);
	FIELD(plb_tls_data, len);
	FIELD(plb_tls_data, fd);
	FIELD(plb_tls_data, direction);
	FIELD(plb_tls_data, library);
	FIELD(plb_tls_data, _pad0);

	STRUCT(plb_tls_sni);
	FIELD(plb_tls_sni, hdr);
	FIELD(plb_tls_sni, conn_id);
	FIELD(plb_tls_sni, name_len);
	FIELD(plb_tls_sni, _pad0);
	FIELD(plb_tls_sni, name);

	STRUCT(plb_cuda_call);
	FIELD(plb_cuda_call, hdr);
	FIELD(plb_cuda_call, duration_ns);
	FIELD(plb_cuda_call, handle);
	FIELD(plb_cuda_call, stream);
	FIELD(plb_cuda_call, bytes);
	FIELD(plb_cuda_call, grid);
	FIELD(plb_cuda_call, block);
	FIELD(plb_cuda_call, result);
	FIELD(plb_cuda_call, memcpy_kind);
	FIELD(plb_cuda_call, device);
	FIELD(plb_cuda_call, api);
	FIELD(plb_cuda_call, _pad0);

	STRUCT(plb_nccl_call);
	FIELD(plb_nccl_call, hdr);
	FIELD(plb_nccl_call, duration_ns);
	FIELD(plb_nccl_call, comm);
	FIELD(plb_nccl_call, parent_comm);
	FIELD(plb_nccl_call, count);
	FIELD(plb_nccl_call, stream);
	FIELD(plb_nccl_call, result);
	FIELD(plb_nccl_call, datatype);
	FIELD(plb_nccl_call, reduce_op);
	FIELD(plb_nccl_call, peer);
	FIELD(plb_nccl_call, nranks);
	FIELD(plb_nccl_call, rank);
	FIELD(plb_nccl_call, color);
	FIELD(plb_nccl_call, op);
	FIELD(plb_nccl_call, id_len);

	STRUCT(plb_comm_key);
	FIELD(plb_comm_key, comm);
	return 0;
}
