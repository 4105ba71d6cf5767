// SPDX-License-Identifier: GPL-2.0
/* Rejected: bpf_skb_store_bytes may move the packet, so every packet pointer checked
 * before it is invalid afterwards; the program reuses eth. */
#include "students.h"

SEC("tc")
int pkt_stale_after_helper(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u8 mac[ETH_ALEN] = {0x02, 0, 0, 0, 0, 1};

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	bpf_skb_store_bytes(skb, 0, mac, ETH_ALEN, 0);
	return eth->h_proto == bpf_htons(ETH_P_IP) ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
