// SPDX-License-Identifier: GPL-2.0
/* Accepted: a bounded loop summing up to 32 payload bytes, each access checked. */
#include "students.h"

SEC("tc")
int loop_bounded(struct __sk_buff *skb)
{
	__u8 *p = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 sum = 0;

	for (int i = 0; i < 32; i++) {
		if ((void *)(p + i + 1) > data_end)
			break;
		sum += p[i];
	}
	skb->mark = sum;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
