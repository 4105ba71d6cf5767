// SPDX-License-Identifier: GPL-2.0
/* Rejected: an offset read from the packet as a u16 (0..65535, through bpf_ntohs) added
 * to data and checked against data_end: with up to 0xffff of variable offset plus 1 the
 * pointer may pass MAX_PACKET_OFF, so the comparison proves no range (mask the offset). */
#include "students.h"

SEC("tc")
int pkt_u16_offset(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u16 *offp = data + 14;
	__u8 *p;

	if ((void *)(offp + 1) > data_end)
		return TC_ACT_OK;
	p = data + bpf_ntohs(*offp);
	if ((void *)(p + 1) > data_end)
		return TC_ACT_OK;
	return *p;
}

char LICENSE[] SEC("license") = "GPL";
