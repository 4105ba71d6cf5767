// SPDX-License-Identifier: GPL-2.0
/* Rejected: the upper half of skb->mark read as a u16 at offset 2 is fine, but this one
 * reads 2 bytes at offset 1 (misaligned narrow load). */
#include "students.h"

SEC("tc")
int ctx_misaligned(struct __sk_buff *skb)
{
	__u16 v = *(volatile __u16 *)((char *)&skb->mark + 1);

	return v ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
