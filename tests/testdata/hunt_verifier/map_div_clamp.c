// SPDX-License-Identifier: GPL-2.0
/* Rejected: map_var_index with the bucket clamped before use, but the clamp does not
 * help: clang computes len / 100 and the clamp in 32 bits, BPF_DIV leaves all 64 bits of
 * the register unknown and the 32-bit comparison bounds only the lower half. */
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
int map_div_clamp(struct __sk_buff *skb)
{
	__u32 zero = 0, b = skb->len / 100;
	struct hist *h = bpf_map_lookup_elem(&hist, &zero);

	if (!h)
		return TC_ACT_OK;
	if (b > 15)
		b = 15;
	h->bucket[b] += 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
