// SPDX-License-Identifier: GPL-2.0
/* Rejected: the IPv4 protocol byte is read before the bounds check that covers it. */
#include "students.h"

SEC("tc")
int pkt_check_after(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	__u8 proto = *(volatile __u8 *)&iph->protocol;

	if ((void *)(iph + 1) > data_end)
		return TC_ACT_OK;
	return proto == IPPROTO_TCP ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
