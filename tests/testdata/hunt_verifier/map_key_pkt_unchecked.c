// SPDX-License-Identifier: GPL-2.0
/* Rejected: the IPv4 source address is used as the map key straight from the packet,
 * checked only for the Ethernet header. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} blocked SEC(".maps");

SEC("tc")
int map_key_pkt_unchecked(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);

	if (data + sizeof(struct ethhdr) > data_end)
		return TC_ACT_OK;
	return bpf_map_lookup_elem(&blocked, &iph->saddr) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
