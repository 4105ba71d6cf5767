// SPDX-License-Identifier: GPL-2.0
/* Rejected: a const volatile setting (.rodata, frozen by the loader) written through a
 * cast. */
#include "students.h"

const volatile __u32 threshold = 100;

SEC("tc")
int map_rodata_write(struct __sk_buff *skb)
{
	if (skb->len > threshold)
		*(volatile __u32 *)&threshold = skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
