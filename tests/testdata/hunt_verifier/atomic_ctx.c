// SPDX-License-Identifier: GPL-2.0
/* Rejected: an atomic increment of skb->mark. */
#include "students.h"

SEC("tc")
int atomic_ctx(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&skb->mark, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
