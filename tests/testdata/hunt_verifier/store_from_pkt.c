// SPDX-License-Identifier: GPL-2.0
/* Copies the source MAC over the destination MAC with bpf_skb_store_bytes reading straight
 * from the packet. */
#include "students.h"

SEC("tc")
int store_from_pkt(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	bpf_skb_store_bytes(skb, 0, eth->h_source, ETH_ALEN, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
