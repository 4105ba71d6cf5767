// SPDX-License-Identifier: GPL-2.0
/* SRv6 at the edge: an IPv6 packet gets a segment routing header (routing type 4, two
 * segments) inserted after its fixed header with bpf_skb_adjust_room(BPF_ADJ_ROOM_NET),
 * payload length, next header and destination rewritten; a packet that already carries
 * one has it removed again (negative NET adjust) and the final segment restored. */
#include "hunt.h"

struct srh {
	__u8 nexthdr;
	__u8 hdrlen;
	__u8 type;
	__u8 segments_left;
	__u8 last_entry;
	__u8 flags;
	__u16 tag;
	__u8 segs[2][16];
};

SEC("tc")
int srv6(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	struct srh h = {};
	__u8 nh;
	long r;

	if (skb->protocol != bpf_htons(ETH_P_IPV6) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
		return TC_ACT_UNSPEC;
	if (ip6.nexthdr == IPPROTO_ROUTING) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(ip6), &h, sizeof(h)) < 0)
			return TC_ACT_SHOT;
		put(0, (h.type << 8) | h.segments_left);
		r = bpf_skb_adjust_room(skb, -(int)sizeof(h), BPF_ADJ_ROOM_NET, 0);
		put(1, r);
		if (r)
			return TC_ACT_SHOT;
		ip6.nexthdr = h.nexthdr;
		ip6.payload_len = bpf_htons(bpf_ntohs(ip6.payload_len) - sizeof(h));
		__builtin_memcpy(&ip6.daddr, h.segs[0], 16);
		r = bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), BPF_F_RECOMPUTE_CSUM);
		put(2, r);
		put(3, skb->len);
		return TC_ACT_OK;
	}
	nh = ip6.nexthdr;
	h.nexthdr = nh;
	h.hdrlen = (sizeof(h) - 8) / 8;
	h.type = 4;
	h.segments_left = 1;
	h.last_entry = 1;
	__builtin_memcpy(h.segs[0], &ip6.daddr, 16);
	h.segs[1][0] = 0xfc;
	h.segs[1][15] = 0x01;
	r = bpf_skb_adjust_room(skb, sizeof(h), BPF_ADJ_ROOM_NET, 0);
	put(4, r);
	if (r)
		return TC_ACT_SHOT;
	ip6.nexthdr = IPPROTO_ROUTING;
	ip6.payload_len = bpf_htons(bpf_ntohs(ip6.payload_len) + sizeof(h));
	__builtin_memcpy(&ip6.daddr, h.segs[1], 16);
	r = bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), BPF_F_RECOMPUTE_CSUM);
	put(5, r);
	r = bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip6), &h, sizeof(h), BPF_F_RECOMPUTE_CSUM);
	put(6, r);
	put(7, skb->len);
	return TC_ACT_OK;
}
