// SPDX-License-Identifier: GPL-2.0
/* Rejected: reads the "last byte" through data_end itself. */
#include "students.h"

SEC("tc")
int pkt_end_deref(struct __sk_buff *skb)
{
	__u8 *end = (void *)(long)skb->data_end;

	return end[-1];
}

char LICENSE[] SEC("license") = "GPL";
