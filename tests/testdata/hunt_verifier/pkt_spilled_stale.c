// SPDX-License-Identifier: GPL-2.0
/* Rejected: the header pointer survives bpf_skb_change_tail in a stack slot (the compiler
 * spills it across the call) and is used afterwards. */
#include "students.h"

SEC("tc")
int pkt_spilled_stale(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	volatile struct ethhdr *saved;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	saved = eth;
	bpf_skb_change_tail(skb, skb->len + 4, 0);
	return saved->h_proto == bpf_htons(ETH_P_IP) ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
