/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every Plumbline program needs to emit events: the counters map, the
 * header filler, and batched ring-buffer wake-ups.
 *
 * Include after kernel_types.h and the libbpf headers. The including object
 * defines its own ring buffer (each concern has a ring of its own, so one
 * flood cannot starve another) and passes it to plb_emit/plb_submit.
 */
#ifndef PLUMBLINE_EMIT_BPF_H
#define PLUMBLINE_EMIT_BPF_H

#include "plumbline_abi.h"

/* Version stamp the agent reads from the object before loading it. */
const volatile __u32 plb_abi_version SEC(".rodata") = PLB_ABI_VERSION;

/* Wake the reader only once this many bytes wait in the ring; the agent also
 * drains on a timer, so a quiet ring is never stuck. Set by the loader. */
const volatile __u64 plb_wakeup_bytes = 256 * 1024;

/* Per-CPU (kind, outcome) counters; the agent sums, exports and turns
 * increases of PLB_OUT_RINGBUF_FULL into loss markers. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PLB_COUNTERS_LEN);
	__type(key, __u32);
	__type(value, __u64);
} plb_counters SEC(".maps");

static __always_inline void plb_count(__u32 kind, __u32 outcome)
{
	__u32 index = PLB_COUNTER_INDEX(kind, outcome);
	__u64 *value = bpf_map_lookup_elem(&plb_counters, &index);

	if (value)
		*value += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline __u64 plb_wakeup_flags(void *ringbuf)
{
	return bpf_ringbuf_query(ringbuf, BPF_RB_AVAIL_DATA) >= plb_wakeup_bytes
		? BPF_RB_FORCE_WAKEUP
		: BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 plb_task_start_boot_ns(struct task_struct *task)
{
	if (bpf_core_field_exists(task->start_boottime))
		return BPF_CORE_READ(task, start_boottime);
	return BPF_CORE_READ((struct task_struct___pre_5_5 *)task, real_start_time);
}

static __always_inline void plb_fill_header(struct plb_event_header *hdr, __u16 kind, __u16 size,
					    struct task_struct *task)
{
	hdr->ts_boot_ns = bpf_ktime_get_boot_ns();
	hdr->cgroup_id = bpf_get_current_cgroup_id();
	hdr->pid = BPF_CORE_READ(task, tgid);
	hdr->tid = BPF_CORE_READ(task, pid);
	hdr->kind = kind;
	hdr->size = size;
	hdr->_pad0 = 0;
}

/* Copies a record of `size` bytes (bounded by the caller) into the ring and
 * counts the outcome. Used for records with a variable tail, built in a
 * per-CPU scratch buffer so the reservation matches what is written. */
static __always_inline void plb_emit(void *ringbuf, void *record, __u64 size, __u16 kind)
{
	if (bpf_ringbuf_output(ringbuf, record, size, plb_wakeup_flags(ringbuf)) == 0)
		plb_count(kind, PLB_OUT_EMITTED);
	else
		plb_count(kind, PLB_OUT_RINGBUF_FULL);
}

/* Reserves a fixed-size record, or counts the loss and returns NULL. */
static __always_inline void *plb_reserve(void *ringbuf, __u64 size, __u16 kind)
{
	void *record = bpf_ringbuf_reserve(ringbuf, size, 0);

	if (!record)
		plb_count(kind, PLB_OUT_RINGBUF_FULL);
	return record;
}

static __always_inline void plb_submit(void *ringbuf, void *record, __u16 kind)
{
	bpf_ringbuf_submit(record, plb_wakeup_flags(ringbuf));
	plb_count(kind, PLB_OUT_EMITTED);
}

#endif /* PLUMBLINE_EMIT_BPF_H */
