/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-kernel allow/deny filters by process, cgroup (and its ancestors) and
 * comm, so noise never leaves the kernel. The agent fills the maps and sets
 * plb_filter_flags before load; its own process is always denied.
 */
#ifndef PLUMBLINE_FILTER_BPF_H
#define PLUMBLINE_FILTER_BPF_H

#include "plumbline_abi.h"

/* enum plb_filter_flags; set by the loader. */
const volatile __u32 plb_filter_flags = 0;
/* The agent's own process (its sends would be captured and sent again); 0
 * for none. Compared, not looked up: this runs for every event. */
const volatile __u32 plb_ignored_tgid = 0;

/* Cgroup ancestor levels checked against the cgroup rules. */
#define PLB_FILTER_CGROUP_LEVELS 8

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* tgid */
	__type(value, __u8); /* enum plb_filter_verdict */
} plb_filter_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* cgroup v2 id */
	__type(value, __u8);
} plb_filter_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct plb_comm_key);
	__type(value, __u8);
} plb_filter_comms SEC(".maps");

/* The verdict of the current task's cgroup or its nearest ruled ancestor. */
static __always_inline __u8 plb_cgroup_verdict(void)
{
	__u64 id = bpf_get_current_cgroup_id();
	__u8 *verdict = bpf_map_lookup_elem(&plb_filter_cgroups, &id);

	if (verdict)
		return *verdict;
	for (int level = PLB_FILTER_CGROUP_LEVELS; level >= 0; level--) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			continue;
		verdict = bpf_map_lookup_elem(&plb_filter_cgroups, &id);
		if (verdict)
			return *verdict;
	}
	return 0;
}

/* True when the event of `tgid` (normally the current task) must not leave
 * the kernel. Counts it under (kind, PLB_OUT_FILTERED). */
static __always_inline bool plb_filtered_tgid(__u32 tgid, __u16 kind)
{
	__u32 flags = plb_filter_flags;
	__u8 *verdict;

	if (plb_ignored_tgid && tgid == plb_ignored_tgid)
		goto filtered;
	if (flags & PLB_FILTER_HAS_PIDS) {
		verdict = bpf_map_lookup_elem(&plb_filter_pids, &tgid);
		if (verdict ? *verdict == PLB_FILTER_DENY : (flags & PLB_FILTER_ALLOW_PIDS))
			goto filtered;
	}
	if (flags & PLB_FILTER_HAS_COMMS) {
		struct plb_comm_key comm = {};

		bpf_get_current_comm(&comm.comm, sizeof(comm.comm));
		verdict = bpf_map_lookup_elem(&plb_filter_comms, &comm);
		if (verdict ? *verdict == PLB_FILTER_DENY : (flags & PLB_FILTER_ALLOW_COMMS))
			goto filtered;
	}
	if (flags & PLB_FILTER_HAS_CGROUPS) {
		__u8 v = plb_cgroup_verdict();

		if (v ? v == PLB_FILTER_DENY : (flags & PLB_FILTER_ALLOW_CGROUPS))
			goto filtered;
	}
	return false;
filtered:
	plb_count(kind, PLB_OUT_FILTERED);
	return true;
}

static __always_inline bool plb_filtered(__u16 kind)
{
	return plb_filtered_tgid(bpf_get_current_pid_tgid() >> 32, kind);
}

#endif /* PLUMBLINE_FILTER_BPF_H */
