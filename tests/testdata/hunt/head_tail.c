// SPDX-License-Identifier: GPL-2.0
/* Frame reshaping a shaper or a padding filter would do: runts padded to the Ethernet
 * minimum with bpf_skb_change_tail, oversized payloads trimmed, a second Ethernet header
 * pushed in front with bpf_skb_change_head (MAC-in-MAC), bpf_skb_pull_data of partial
 * lengths, and bpf_skb_load_bytes_relative from the MAC and network headers after each
 * step. */
#include "hunt.h"

static __always_inline void rel(__u32 base, struct __sk_buff *skb)
{
	__u8 buf[8] = {};
	__u64 v;

	put(base, bpf_skb_load_bytes_relative(skb, 0, buf, 8, BPF_HDR_START_MAC));
	__builtin_memcpy(&v, buf, 8);
	put(base + 1, v);
	put(base + 2, bpf_skb_load_bytes_relative(skb, 0, buf, 8, BPF_HDR_START_NET));
	__builtin_memcpy(&v, buf, 8);
	put(base + 3, v);
	put(base + 4, skb->len);
	put(base + 5, skb->data_end - skb->data);
}

SEC("tc")
int head_tail(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	long r;

	rel(0, skb);
	if (len < 60) {
		r = bpf_skb_change_tail(skb, 60, 0);
		put(6, r);
		rel(7, skb);
		return TC_ACT_OK;
	}
	if (len > 100) {
		r = bpf_skb_change_tail(skb, 100, 0);
		put(13, r);
		r = bpf_skb_change_tail(skb, 90, 1);
		put(14, r);
		r = bpf_skb_change_tail(skb, 0x10000, 0);
		put(15, r);
		r = bpf_skb_change_tail(skb, 10, 0);
		put(16, r);
		rel(17, skb);
		return TC_ACT_OK;
	}
	r = bpf_skb_pull_data(skb, 20);
	put(23, r);
	put(24, skb->data_end - skb->data);
	r = bpf_skb_change_head(skb, ETH_HLEN, 0);
	put(25, r);
	rel(26, skb);
	{
		__u8 outer[ETH_HLEN] = { 0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x98, 0x88, 0xe7 };

		r = bpf_skb_store_bytes(skb, 0, outer, sizeof(outer), 0);
		put(32, r);
	}
	r = bpf_skb_change_head(skb, 4, 1);
	put(33, r);
	r = bpf_skb_change_head(skb, 0x10000, 0);
	put(34, r);
	r = bpf_skb_pull_data(skb, 0);
	put(35, r);
	rel(36, skb);
	return TC_ACT_OK;
}
