// SPDX-License-Identifier: GPL-2.0
/*
 * bpf-to-bpf calls: global and static __noinline functions that take the __sk_buff
 * context (the verifier tracks PTR_TO_CTX across the call), a nested call chain three
 * deep, a function that fills a caller's stack buffer through a pointer argument, and
 * one that returns a 64-bit value built from five arguments.
 */
#include "common.h"

DEFINE_SLOTS(out, 8);

static __noinline __u64 combine(__u64 a, __u64 b, __u64 c, __u64 d, __u64 e)
{
	return (a << 48) ^ (b << 32) ^ (c << 16) ^ d ^ (e * 0x9e3779b97f4a7c15ULL);
}

static __noinline int read_header(struct __sk_buff *skb, __u8 *buf, __u32 len)
{
	if (len > 16)
		return -1;
	return bpf_skb_load_bytes(skb, 0, buf, 16) ? -2 : 16;
}

static __noinline __u32 leaf(__u32 x)
{
	return x * 2654435761u;
}

static __noinline __u32 middle(struct __sk_buff *skb, __u32 x)
{
	return leaf(x ^ skb->len) + skb->protocol;
}

__noinline int mark_packet(struct __sk_buff *skb, __u32 value)
{
	if (!skb)
		return 0;
	skb->mark = value;
	skb->priority = value & 0xf;
	return 1;
}

SEC("tc")
int bpf2bpf(struct __sk_buff *skb)
{
	__u8 head[16] = {};
	int got = read_header(skb, head, sizeof(head));
	__u32 m = middle(skb, head[12] << 8 | head[13]);

	slot_set(&out, 0, (__u64)(__s64)got);
	slot_set(&out, 1, m);
	slot_set(&out, 2, combine(head[0], head[5], head[12], head[13], skb->len));
	slot_set(&out, 3, mark_packet(skb, m));
	slot_add(&out, 4, 1);
	return got < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
