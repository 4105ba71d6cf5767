// SPDX-License-Identifier: GPL-2.0
/* Program structure of a larger code base: global (non-static, separately verified)
 * functions taking the ctx, a scalar and a pointer to the caller's stack; static noinline
 * functions with five arguments, a struct passed by pointer and filled by the callee,
 * recursion-free call chains six frames deep with stack buffers in every frame, and
 * a callee returning a 64-bit value built from its arguments. */
#include "hunt.h"

struct flow {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

__noinline int parse_flow(struct __sk_buff *skb, struct flow *f)
{
	struct iphdr ip;
	__u16 ports[2];

	if (!f)
		return -1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -2;
	f->saddr = ip.saddr;
	f->daddr = ip.daddr;
	f->proto = ip.protocol;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return 1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, ports, 4) < 0)
		return -3;
	f->sport = bpf_ntohs(ports[0]);
	f->dport = bpf_ntohs(ports[1]);
	return 0;
}

__noinline __u32 score(__u32 base, __u32 weight)
{
	return base * weight + (base >> 3);
}

static __noinline __u64 mix5(__u64 a, __u64 b, __u64 c, __u64 d, __u64 e)
{
	return (a << 40) ^ (b << 24) ^ (c << 8) ^ d ^ (e * 0x9e3779b1);
}

static __noinline __u64 depth6(__u32 x);

static __noinline __u64 depth(__u32 x, int level)
{
	volatile __u8 buf[48];
	__u64 acc = 0;
	int i;

	for (i = 0; i < 48; i++)
		buf[i] = x + i + level;
	for (i = 0; i < 48; i += 8)
		acc += buf[i];
	return acc;
}

static __noinline __u64 depth5(__u32 x) { volatile __u8 b[32]; b[x & 31] = 5; return depth(x, 5) + b[x & 31]; }
static __noinline __u64 depth4(__u32 x) { volatile __u8 b[32]; b[x & 31] = 4; return depth5(x + 1) + b[x & 31]; }
static __noinline __u64 depth3(__u32 x) { volatile __u8 b[32]; b[x & 31] = 3; return depth4(x + 1) + b[x & 31]; }
static __noinline __u64 depth2(__u32 x) { volatile __u8 b[32]; b[x & 31] = 2; return depth3(x + 1) + b[x & 31]; }
static __noinline __u64 depth6(__u32 x) { volatile __u8 b[32]; b[x & 31] = 6; return depth2(x + 1) + b[x & 31]; }

SEC("tc")
int funcs(struct __sk_buff *skb)
{
	struct flow f = {};
	int r;

	r = parse_flow(skb, &f);
	put(0, r);
	put(1, ((__u64)f.saddr << 32) | f.daddr);
	put(2, ((__u64)f.sport << 32) | ((__u32)f.dport << 8) | f.proto);
	r = parse_flow(skb, 0);
	put(3, r);
	put(4, score(f.sport, f.dport));
	put(5, mix5(f.saddr, f.daddr, f.sport, f.dport, skb->len));
	put(6, depth6(skb->len));
	skb->mark = score(skb->len, 3);
	return f.proto == IPPROTO_UDP ? TC_ACT_OK : TC_ACT_UNSPEC;
}
