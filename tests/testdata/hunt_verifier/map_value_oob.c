// SPDX-License-Identifier: GPL-2.0
/* Rejected: the value is a struct of two u32 (8 bytes); the program treats it as an
 * array of u64 and writes the second element. */
#include "students.h"

struct stats {
	__u32 packets;
	__u32 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

SEC("tc")
int map_value_oob(struct __sk_buff *skb)
{
	__u32 key = skb->ifindex;
	__u64 *v = bpf_map_lookup_elem(&stats, &key);

	if (!v)
		return TC_ACT_OK;
	v[1] = skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
