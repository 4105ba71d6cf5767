// SPDX-License-Identifier: GPL-2.0
/* Rejected: a 16-byte stack array indexed by mark & 31 (up to 31) is written out of
 * bounds. */
#include "students.h"

SEC("tc")
int stack_var_index(struct __sk_buff *skb)
{
	volatile __u8 hist[16] = {};
	__u32 i = skb->mark & 31;

	hist[i] = 1;
	return hist[3];
}

char LICENSE[] SEC("license") = "GPL";
