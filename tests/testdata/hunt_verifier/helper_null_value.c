// SPDX-License-Identifier: GPL-2.0
/* Rejected: bpf_map_update_elem with NULL as the value ("just create the entry"). */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("tc")
int helper_null_value(struct __sk_buff *skb)
{
	__u32 key = skb->hash;

	bpf_map_update_elem(&seen, &key, NULL, BPF_ANY);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
