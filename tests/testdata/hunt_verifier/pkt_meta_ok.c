// SPDX-License-Identifier: GPL-2.0
/* Accepted: reads a 4-byte mark left in the metadata area in front of the packet, checked
 * against data (data_meta <= data). */
#include "students.h"

SEC("tc")
int pkt_meta_ok(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	__u32 *meta = (void *)(long)skb->data_meta;

	if ((void *)(meta + 1) > data)
		return TC_ACT_OK;
	skb->mark = *meta;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
