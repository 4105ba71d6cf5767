// SPDX-License-Identifier: GPL-2.0
/* Accepted: pkt_len_unbounded with the offset masked to 0..255 before the arithmetic. */
#include "students.h"

SEC("tc")
int pkt_len_masked(struct __sk_buff *skb)
{
	void *data, *data_end;
	__u32 off = 0;
	__u8 *p;

	if (bpf_skb_load_bytes(skb, 14, &off, sizeof(off)))
		return TC_ACT_OK;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	p = data + (off & 0xff);
	if ((void *)(p + 1) > data_end)
		return TC_ACT_OK;
	return *p;
}

char LICENSE[] SEC("license") = "GPL";
