// SPDX-License-Identifier: GPL-2.0
/* Rejected: skb->cb[] indexed by a value from the packet (variable ctx offset). */
#include "students.h"

SEC("tc")
int ctx_cb_var_index(struct __sk_buff *skb)
{
	__u32 i = skb->mark & 3;

	skb->cb[i] = skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
