// SPDX-License-Identifier: GPL-2.0
/* Rejected: a global (non-static) parser taking data and data_end as void pointers: a
 * global function is verified on its own from its BTF prototype, where void * has no
 * size. */
#include "students.h"

__attribute__((noinline)) int parse_eth(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	return eth->h_proto;
}

SEC("tc")
int global_func_pkt_args(struct __sk_buff *skb)
{
	return parse_eth((void *)(long)skb->data, (void *)(long)skb->data_end) < 0 ?
	       TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
