// SPDX-License-Identifier: GPL-2.0
/* Rejected: an atomic increment of a counter kept in the packet payload. */
#include "students.h"

SEC("tc")
int atomic_pkt(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 *cnt = data + 14;

	if ((void *)(cnt + 1) > data_end)
		return TC_ACT_OK;
	__sync_fetch_and_add(cnt, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
