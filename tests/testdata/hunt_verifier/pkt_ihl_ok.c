// SPDX-License-Identifier: GPL-2.0
/* Accepted: the same parser as pkt_ihl_nocheck with the TCP header checked after ihl*4. */
#include "students.h"

SEC("tc")
int pkt_ihl_ok(struct __sk_buff *skb)
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
	if (iph->ihl < 5)
		return TC_ACT_SHOT;
	tcp = (void *)iph + iph->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_OK;
	return tcp->dest == bpf_htons(22) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
