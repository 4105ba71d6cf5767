// SPDX-License-Identifier: GPL-2.0
/* Rejected: a 32-bit offset read from the packet with bpf_skb_load_bytes is added to the
 * packet pointer without masking it (unbounded). */
#include "students.h"

SEC("tc")
int pkt_len_unbounded(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 off = 0;
	__u8 *p;

	if (bpf_skb_load_bytes(skb, 14, &off, sizeof(off)))
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	p = data + off;
	if ((void *)(p + 1) > data_end)
		return TC_ACT_OK;
	return *p;
}

char LICENSE[] SEC("license") = "GPL";
