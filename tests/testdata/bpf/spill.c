// SPDX-License-Identifier: GPL-2.0
/*
 * Stack coverage: more live values than callee-saved registers across helper calls, so clang
 * spills and refills 64-bit registers through r10; a stack buffer filled with byte, half,
 * word and double-word stores (register stores everywhere, immediate stores -- BPF_ST -- from
 * -mcpu=v4) and read back with loads of every size; bpf_ktime_get_ns as the opaque source.
 */
#include "common.h"

DEFINE_OUT_MAP(spill_out);

struct scratch {
	__u8 b[8];
	__u16 h[4];
	__u32 w[4];
	__u64 d[4];
};

SEC("tc")
int spill(struct __sk_buff *skb)
{
	__u64 t0 = bpf_ktime_get_ns();
	__u64 v0 = skb->len, v1 = skb->mark, v2 = skb->priority, v3 = skb->hash;
	__u64 v4 = skb->ifindex, v5 = skb->protocol, v6 = skb->vlan_tci, v7 = skb->tc_index;
	__u64 t1 = bpf_ktime_get_ns();
	/* v0..v7, t0 and t1 are all live across this call: at most four fit in r6..r9. */
	__u64 t2 = bpf_ktime_get_ns();

	struct scratch s;
	__builtin_memset(&s, 0, sizeof(s));
	s.b[0] = 0x11;
	s.b[3] = (__u8)v0;
	s.h[1] = 0x2222;
	s.h[2] = (__u16)v1;
	s.w[0] = 0x33333333;
	s.w[3] = (__u32)v2;
	s.d[1] = 0x4444;
	s.d[2] = v3 ^ t2;

	__u32 zero = 0;
	struct slots *out = bpf_map_lookup_elem(&spill_out, &zero);
	if (!out)
		return TC_ACT_OK;
	volatile struct scratch *vs = &s;
	out->v[0] = v0 + v1 * 3 + v2 * 5 + v3 * 7;
	out->v[1] = v4 ^ v5 ^ v6 ^ v7;
	out->v[2] = t1 - t0;
	out->v[3] = t2 - t1;
	out->v[4] = vs->b[0] + vs->b[3];
	out->v[5] = vs->h[1] + vs->h[2];
	out->v[6] = vs->w[0] + vs->w[3];
	out->v[7] = vs->d[1] + vs->d[2];
	out->v[8] = v0 * v4 + v1 * v5 + v2 * v6 + v3 * v7;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
