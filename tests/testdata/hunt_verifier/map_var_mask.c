// SPDX-License-Identifier: GPL-2.0
/* Accepted: a histogram bucket chosen by the packet length, masked to 0..15. */
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
int map_var_mask(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct hist *h = bpf_map_lookup_elem(&hist, &zero);

	if (!h)
		return TC_ACT_OK;
	h->bucket[(skb->len >> 6) & 15] += 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
