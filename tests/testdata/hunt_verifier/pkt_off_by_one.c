// SPDX-License-Identifier: GPL-2.0
/* Rejected: the bounds check proves 13 bytes (the "- 1" of an inclusive end), the read
 * needs the 14th (h_proto ends at byte 14). */
#include "students.h"

SEC("tc")
int pkt_off_by_one(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if (data + sizeof(*eth) - 1 > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
