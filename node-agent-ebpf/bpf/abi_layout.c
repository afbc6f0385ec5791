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
	CONST(PLB_OUT_MAX);
	CONST(PLB_COUNTERS_LEN);

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
	return 0;
}
