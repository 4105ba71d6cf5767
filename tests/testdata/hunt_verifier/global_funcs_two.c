// SPDX-License-Identifier: GPL-2.0
/* Accepted: two global functions (one taking the skb, one a scalar), both verified on
 * their own after the main program. */
#include "students.h"

__attribute__((noinline)) int l3_proto(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_IP) ? 4 : 0;
}

__attribute__((noinline)) int verdict_for(int version)
{
	return version == 4 ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("tc")
int global_funcs_two(struct __sk_buff *skb)
{
	return verdict_for(l3_proto(skb));
}

char LICENSE[] SEC("license") = "GPL";
