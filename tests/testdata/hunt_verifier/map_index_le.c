// SPDX-License-Identifier: GPL-2.0
/* Rejected: the bucket index is checked with <= 16 instead of < 16 (one past the end of
 * the 16-entry array in the value). */
#include "students.h"

struct hist {
	__u64 bucket[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} hist SEC(".maps");

SEC("tc")
int map_index_le(struct __sk_buff *skb)
{
	__u32 zero = 0, b = skb->mark;
	struct hist *h = bpf_map_lookup_elem(&hist, &zero);

	if (!h || b > 16)
		return TC_ACT_OK;
	h->bucket[b] += 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
