// SPDX-License-Identifier: GPL-2.0
/*
 * PERF_EVENT_ARRAY: bpf_perf_event_output(skb, ...) with BPF_F_CURRENT_CPU and the packet
 * sample length in the upper 32 bits of the flags, so the record carries a metadata struct
 * followed by the first bytes of the packet.  The helper's return code is stored in a map
 * (it is -ENOENT when no perf event is installed for the CPU).
 */
#include "common.h"

struct meta {
	__u32 len;
	__u32 proto;
	__u32 mark;
	__u32 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} samples SEC(".maps");

/* 0 last rc, 1 sequence number, 2 second-call rc (bad index) */
DEFINE_SLOTS(stats, 3);

SEC("tc")
int perf_output(struct __sk_buff *skb)
{
	__u32 idx = 1;
	__u64 *seq = bpf_map_lookup_elem(&stats, &idx);

	if (!seq)
		return TC_ACT_OK;
	struct meta m = { .len = skb->len, .proto = bpf_ntohs(skb->protocol), .mark = skb->mark,
			  .seq = (__u32)*seq };
	__u64 sample = skb->len < 32 ? skb->len : 32;
	long rc = bpf_perf_event_output(skb, &samples, BPF_F_CURRENT_CPU | sample << 32, &m,
					sizeof(m));

	*seq += 1;
	slot_set(&stats, 0, rc);
	/* An index past max_entries (which libbpf sets to the number of possible CPUs). */
	slot_set(&stats, 2, bpf_perf_event_output(skb, &samples, 4096, &m, sizeof(m)));
	return rc ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
