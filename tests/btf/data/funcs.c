// SPDX-License-Identifier: GPL-2.0
/*
 * func_info and line_info coverage: static and global subprograms in .text, programs in
 * two different ELF sections, and statements that span several source lines.
 */
#include "common.h"

static __noinline __u32 mix(__u32 x,
			    __u32 y)
{
	x ^= y * 0x9e3779b1;
	return (x << 7) |
	       (x >> 25);
}

__noinline int global_helper(struct __sk_buff *skb)
{
	if (!skb)
		return 0;
	return mix(skb->len,
		   skb->mark) & 0xff;
}

static __noinline int classify(__u32 proto,
			       __u32 len)
{
	switch (proto) {
	case 6:
		return len > 1000 ? 2 : 1;
	case 17:
		return 3;
	default:
		return 0;
	}
}

SEC("tc/ingress")
int ingress(struct __sk_buff *skb)
{
	int cls = classify(skb->protocol,
			   skb->len);
	int h = global_helper(skb);

	if (cls == 2 &&
	    h > 10)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc/egress")
int egress(struct __sk_buff *skb)
{
	__u32 v = mix(skb->hash, skb->priority);

	v = mix(v,
		skb->ifindex);
	return v == 42 ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
