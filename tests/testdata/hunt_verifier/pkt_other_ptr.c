// SPDX-License-Identifier: GPL-2.0
/* Rejected: the check is made on one load of skb->data, the access through a second load
 * (a new packet pointer with no proven range). */
#include "students.h"

static __attribute__((noinline)) int ok_len(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	return data + sizeof(struct ethhdr) <= data_end;
}

SEC("tc")
int pkt_other_ptr(struct __sk_buff *skb)
{
	struct ethhdr *eth;

	if (!ok_len(skb))
		return TC_ACT_OK;
	eth = (void *)(long)skb->data;
	return eth->h_proto == bpf_htons(ETH_P_ARP) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
