// SPDX-License-Identifier: GPL-2.0
/* Rejected: the unchecked packet read sits two static calls deep (main -> l3 -> peek),
 * after another helper function; the error names instructions as libbpf lays the
 * subprograms out (depth first, in call order). */
#include "students.h"

static __attribute__((noinline)) int peek(struct __sk_buff *skb, int off)
{
	__u8 *p = (void *)(long)skb->data;

	return p[off & 63];
}

static __attribute__((noinline)) int l2(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_IP);
}

static __attribute__((noinline)) int l3(struct __sk_buff *skb)
{
	return peek(skb, 23) == IPPROTO_TCP;
}

static __attribute__((noinline)) int count(struct __sk_buff *skb)
{
	return skb->len > 100;
}

SEC("tc")
int nested_static_bad(struct __sk_buff *skb)
{
	if (!l2(skb) || !count(skb))
		return TC_ACT_OK;
	return l3(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
