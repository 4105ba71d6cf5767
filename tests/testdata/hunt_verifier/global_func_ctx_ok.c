// SPDX-License-Identifier: GPL-2.0
/* Accepted: the global parser takes the skb and loads data/data_end itself. */
#include "students.h"

__attribute__((noinline)) int parse_eth(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	return eth->h_proto;
}

SEC("tc")
int global_func_ctx_ok(struct __sk_buff *skb)
{
	return parse_eth(skb) < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
