// SPDX-License-Identifier: GPL-2.0
/* Rejected: the packet pointer is passed where the helper wants the context. */
#include "students.h"

SEC("tc")
int helper_pkt_as_ctx(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u16 proto;

	if (data + 14 > data_end)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(data, 12, &proto, sizeof(proto)))
		return TC_ACT_OK;
	return proto == bpf_htons(ETH_P_IP);
}

char LICENSE[] SEC("license") = "GPL";
