// SPDX-License-Identifier: GPL-2.0
/* Rejected: skb->len is read-only for tc programs ("trim the packet"). */
#include "students.h"

SEC("tc")
int ctx_write_len(struct __sk_buff *skb)
{
	if (skb->len > 100)
		skb->len = 100;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
