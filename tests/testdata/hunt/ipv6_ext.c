// SPDX-License-Identifier: GPL-2.0
/* IPv6 parser walking extension headers (hop-by-hop, routing, fragment, destination
 * options, AH) with bpf_skb_load_bytes; flow label into skb->mark, traffic class into
 * tc_classid; ICMPv6 echo requests answered in place (type rewrite with
 * bpf_l4_csum_replace, addresses and MACs swapped). */
#include "hunt.h"

struct frag6 {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u16);  /* nexthdr << 8 | ICMPv6 type (or 0) */
	__type(value, __u64);
} l4_seen SEC(".maps");

SEC("tc")
int ipv6_ext(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	__u32 off = ETH_HLEN;
	__u8 nh;
	int i, hops = 0;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_UNSPEC;
	if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0) {
		add(0, 1);
		return TC_ACT_SHOT;
	}
	skb->mark = ((ip6.flow_lbl[0] & 0xf) << 16) | (ip6.flow_lbl[1] << 8) | ip6.flow_lbl[2];
	skb->tc_classid = (ip6.priority << 4) | (ip6.flow_lbl[0] >> 4);
	nh = ip6.nexthdr;
	off += sizeof(ip6);
	for (i = 0; i < 8; i++) {
		struct ipv6_opt_hdr h;
		struct frag6 f;

		if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
			if (bpf_skb_load_bytes(skb, off, &h, sizeof(h)) < 0)
				return TC_ACT_SHOT;
			off += (h.hdrlen + 1) * 8;
			nh = h.nexthdr;
		} else if (nh == IPPROTO_AH) {
			if (bpf_skb_load_bytes(skb, off, &h, sizeof(h)) < 0)
				return TC_ACT_SHOT;
			off += (h.hdrlen + 2) * 4;
			nh = h.nexthdr;
		} else if (nh == IPPROTO_FRAGMENT) {
			if (bpf_skb_load_bytes(skb, off, &f, sizeof(f)) < 0)
				return TC_ACT_SHOT;
			off += sizeof(f);
			nh = f.nexthdr;
			put(5, bpf_ntohl(f.id));
			if (f.frag_off & bpf_htons(0xfff8)) {
				add(6, 1);  /* not the first fragment: no L4 header */
				nh = 0xff;
				break;
			}
		} else {
			break;
		}
		hops++;
	}
	put(1, nh);
	put(2, off);
	put(3, hops);
	skb->cb[0] = off;
	skb->cb[1] = nh;

	__u16 key = nh << 8;
	__u8 type = 0;

	if (nh == IPPROTO_ICMPV6 && bpf_skb_load_bytes(skb, off, &type, 1) == 0)
		key |= type;
	__u64 one = 1, *cnt = bpf_map_lookup_elem(&l4_seen, &key);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&l4_seen, &key, &one, BPF_NOEXIST);

	if (nh == IPPROTO_ICMPV6 && type == ICMPV6_ECHO_REQUEST && off < 200) {
		__u8 reply = ICMPV6_ECHO_REPLY;
		__u8 addrs[32];
		__u8 macs[12];
		long r;

		r = bpf_l4_csum_replace(skb, off + 2, bpf_htons(ICMPV6_ECHO_REQUEST << 8),
					bpf_htons(ICMPV6_ECHO_REPLY << 8), 2);
		put(7, r);
		r = bpf_skb_store_bytes(skb, off, &reply, 1, 0);
		put(8, r);
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, addrs, 32) == 0) {
			bpf_skb_store_bytes(skb, ETH_HLEN + 8, addrs + 16, 16, 0);
			bpf_skb_store_bytes(skb, ETH_HLEN + 24, addrs, 16, 0);
		}
		if (bpf_skb_load_bytes(skb, 0, macs, 12) == 0) {
			bpf_skb_store_bytes(skb, 0, macs + 6, 6, 0);
			bpf_skb_store_bytes(skb, 6, macs, 6, 0);
		}
		return TC_ACT_OK;
	}
	if (nh == IPPROTO_UDP || nh == IPPROTO_TCP) {
		__be16 ports[2];

		if (bpf_skb_load_bytes_relative(skb, off - ETH_HLEN, ports, 4,
						BPF_HDR_START_NET) == 0)
			put(9, ((__u64)bpf_ntohs(ports[0]) << 16) | bpf_ntohs(ports[1]));
	}
	return TC_ACT_PIPE;
}
