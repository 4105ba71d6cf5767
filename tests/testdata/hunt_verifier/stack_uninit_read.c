// SPDX-License-Identifier: GPL-2.0
/* A counter read from the stack on a path that never wrote it (the variable is set only
 * for IPv4); root may read uninitialised stack. */
#include "students.h"

static __attribute__((noinline)) int classify(struct __sk_buff *skb, __u32 *out)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		*out = 7;
	return 0;
}

SEC("tc")
int stack_uninit_read(struct __sk_buff *skb)
{
	__u32 prio;

	classify(skb, &prio);
	skb->priority = prio;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
