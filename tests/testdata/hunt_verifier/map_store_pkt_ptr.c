// SPDX-License-Identifier: GPL-2.0
/* Stores the packet pointer itself in a map value ("remember where the header was"):
 * a pointer leak, allowed for root. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} saved SEC(".maps");

SEC("tc")
int map_store_pkt_ptr(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *slot = bpf_map_lookup_elem(&saved, &zero);

	if (slot)
		*slot = skb->data;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
