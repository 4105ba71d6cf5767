// SPDX-License-Identifier: GPL-2.0
/* Accepted: the parser of global_func_pkt_args as a static function (verified in the
 * caller's context, the packet pointers keep their types). */
#include "students.h"

static __attribute__((noinline)) int parse_eth(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	return eth->h_proto;
}

SEC("tc")
int static_func_pkt_ok(struct __sk_buff *skb)
{
	return parse_eth((void *)(long)skb->data, (void *)(long)skb->data_end) < 0 ?
	       TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
