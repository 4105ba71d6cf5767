// SPDX-License-Identifier: GPL-2.0
/* Accepted: narrow loads of ctx fields (the low byte of protocol, the upper half of mark,
 * one byte of cb[]). */
#include "students.h"

SEC("tc")
int ctx_narrow_ok(struct __sk_buff *skb)
{
	__u8 lo = *(volatile __u8 *)&skb->protocol;
	__u16 hi = *(volatile __u16 *)((char *)&skb->mark + 2);
	__u8 c = *(volatile __u8 *)((char *)&skb->cb[1] + 3);

	skb->priority = lo + hi + c;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
