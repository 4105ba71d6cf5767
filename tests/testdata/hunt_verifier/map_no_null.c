// SPDX-License-Identifier: GPL-2.0
/* Rejected: the lookup result is dereferenced without the NULL check. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pkts SEC(".maps");

SEC("tc")
int map_no_null(struct __sk_buff *skb)
{
	__u32 key = skb->mark & 3;
	__u64 *cnt = bpf_map_lookup_elem(&pkts, &key);

	*cnt += 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
