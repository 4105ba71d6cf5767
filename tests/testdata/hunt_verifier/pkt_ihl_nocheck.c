// SPDX-License-Identifier: GPL-2.0
/* Rejected: the TCP header found with ihl*4 is read without a bounds check of its own. */
#include "students.h"

SEC("tc")
int pkt_ihl_nocheck(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	struct tcphdr *tcp;

	if ((void *)(iph + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || iph->protocol != IPPROTO_TCP)
		return TC_ACT_OK;
	tcp = (void *)iph + iph->ihl * 4;
	return tcp->dest == bpf_htons(22) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
