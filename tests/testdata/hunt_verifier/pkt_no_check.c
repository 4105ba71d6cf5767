// SPDX-License-Identifier: GPL-2.0
/* Rejected: reads the EtherType without comparing against data_end first. */
#include "students.h"

SEC("tc")
int pkt_no_check(struct __sk_buff *skb)
{
	struct ethhdr *eth = (void *)(long)skb->data;

	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
