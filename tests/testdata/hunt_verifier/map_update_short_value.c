// SPDX-License-Identifier: GPL-2.0
/* Rejected: a u32 on the stack given as the value of a map whose values are u64. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} last_len SEC(".maps");

SEC("tc")
int map_update_short_value(struct __sk_buff *skb)
{
	__u32 key = skb->ifindex;
	__u32 len = skb->len;

	bpf_map_update_elem(&last_len, &key, &len, BPF_ANY);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
