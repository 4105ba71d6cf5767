// SPDX-License-Identifier: GPL-2.0
/* Tunnel encapsulation and decapsulation with bpf_skb_adjust_room: IPv4-in-IPv4+UDP (GUE
 * style, BPF_ADJ_ROOM_MAC with ENCAP_L3_IPV4 | ENCAP_L4_UDP), Ethernet-in-UDP (VXLAN style,
 * ENCAP_L2_ETH | ENCAP_L2(14)), IPv6 outer headers (ENCAP_L3_IPV6 | ENCAP_L4_GRE), the
 * NET-mode shrink that removes an outer header again, and the flag/length errors.  The
 * selector is the UDP destination port of the inner packet. */
#include "hunt.h"

#define F_MAC_UDP4 (BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP)

struct outer4 {
	struct iphdr ip;
	struct udphdr udp;
};

static __always_inline __u16 fold(__u64 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return ~c & 0xffff;
}

static __always_inline void snap(__u32 base, struct __sk_buff *skb, long r)
{
	__u64 net = 0, mac = 0;

	put(base, r);
	put(base + 1, skb->len);
	put(base + 2, bpf_ntohs(skb->protocol));
	put(base + 3, skb->data_end - skb->data);
	/* where the network and MAC headers are now */
	bpf_skb_load_bytes_relative(skb, 0, &net, 8, BPF_HDR_START_NET);
	bpf_skb_load_bytes_relative(skb, 6, &mac, 8, BPF_HDR_START_MAC);
	put(40 + (base & 15), net ^ (mac << 1));
}

SEC("tc")
int encap(struct __sk_buff *skb)
{
	struct iphdr ip;
	__be16 ports[2];
	long r;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return TC_ACT_UNSPEC;
	if (skb->protocol != bpf_htons(ETH_P_IP) || ip.ihl != 5 || ip.protocol != IPPROTO_UDP)
		return TC_ACT_UNSPEC;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(ip), ports, 4) < 0)
		return TC_ACT_UNSPEC;

	switch (bpf_ntohs(ports[1])) {
	case 1: {  /* GUE-like IPv4 + UDP */
		struct outer4 o = {};

		r = bpf_skb_adjust_room(skb, sizeof(o), BPF_ADJ_ROOM_MAC, F_MAC_UDP4);
		snap(0, skb, r);
		if (r)
			return TC_ACT_SHOT;
		o.ip.version = 4;
		o.ip.ihl = 5;
		o.ip.ttl = 64;
		o.ip.protocol = IPPROTO_UDP;
		o.ip.tot_len = bpf_htons(skb->len - ETH_HLEN);
		o.ip.saddr = bpf_htonl(0xc0a80001);
		o.ip.daddr = bpf_htonl(0xc0a80002);
		o.ip.check = fold(bpf_csum_diff(0, 0, (__be32 *)&o.ip, sizeof(o.ip), 0));
		o.udp.source = bpf_htons(49152);
		o.udp.dest = bpf_htons(6080);
		o.udp.len = bpf_htons(skb->len - ETH_HLEN - sizeof(o.ip));
		r = bpf_skb_store_bytes(skb, ETH_HLEN, &o, sizeof(o), 0);
		put(4, r);
		return TC_ACT_OK;
	}
	case 2: {  /* VXLAN-like: outer IPv4 + UDP + 8 bytes VXLAN + inner Ethernet */
		__u32 room = sizeof(struct outer4) + 8 + ETH_HLEN;
		__u8 hdr[sizeof(struct outer4) + 8 + ETH_HLEN] = {};

		r = bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC,
					F_MAC_UDP4 | BPF_F_ADJ_ROOM_ENCAP_L2_ETH |
					BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN));
		snap(5, skb, r);
		if (r)
			return TC_ACT_SHOT;
		hdr[0] = 0x45;
		hdr[8] = 64;
		hdr[9] = IPPROTO_UDP;
		hdr[22] = 0x12;
		hdr[23] = 0xb5;  /* 4789 */
		hdr[28] = 0x08;
		hdr[34] = 0x2a;
		r = bpf_skb_store_bytes(skb, ETH_HLEN, hdr, sizeof(hdr), BPF_F_RECOMPUTE_CSUM);
		put(9, r);
		return TC_ACT_OK;
	}
	case 3:  /* IPv6 outer header in GRE: room only; bad combinations fail */
		r = bpf_skb_adjust_room(skb, 44, BPF_ADJ_ROOM_MAC,
					BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE);
		snap(10, skb, r);
		r = bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_MAC,
					BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4);
		put(14, r);
		r = bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_MAC,
					BPF_F_ADJ_ROOM_ENCAP_L4_GRE | BPF_F_ADJ_ROOM_ENCAP_L4_UDP);
		put(15, r);
		r = bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_MAC, 1ULL << 20);
		put(16, r);
		r = bpf_skb_adjust_room(skb, 8, 2, 0);
		put(17, r);
		return TC_ACT_OK;
	case 4:  /* NET mode: grow then shrink, FIXED_GSO and NO_CSUM_RESET */
		r = bpf_skb_adjust_room(skb, 16, BPF_ADJ_ROOM_NET,
					BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_NO_CSUM_RESET);
		snap(18, skb, r);
		r = bpf_skb_adjust_room(skb, -16, BPF_ADJ_ROOM_NET, 0);
		snap(22, skb, r);
		r = bpf_skb_adjust_room(skb, -8, BPF_ADJ_ROOM_MAC, 0);
		snap(26, skb, r);
		r = bpf_skb_adjust_room(skb, -40, BPF_ADJ_ROOM_NET, 0);
		put(30, r);
		r = bpf_skb_adjust_room(skb, 0, BPF_ADJ_ROOM_NET, 0);
		put(31, r);
		return TC_ACT_OK;
	case 5: {  /* decapsulate an IPv4-in-IPv4+UDP packet: drop the outer 28 bytes */
		r = bpf_skb_adjust_room(skb, -(int)sizeof(struct outer4), BPF_ADJ_ROOM_MAC, 0);
		snap(32, skb, r);
		return TC_ACT_OK;
	}
	case 6:  /* L2 length mismatch with ENCAP_L2 and an oversized request */
		r = bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_MAC,
					F_MAC_UDP4 | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN));
		put(36, r);
		r = bpf_skb_adjust_room(skb, 0x10000, BPF_ADJ_ROOM_MAC, 0);
		put(37, r);
		r = bpf_skb_adjust_room(skb, 20, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4);
		snap(38, skb, r);
		return TC_ACT_OK;
	}
	return TC_ACT_PIPE;
}
