// SPDX-License-Identifier: GPL-2.0
/* Stateless NAT64/NAT46 (RFC 6145 style, UDP and TCP only): bpf_skb_change_proto between
 * IPv4 and IPv6, the new network header written with bpf_skb_store_bytes, and the L4
 * checksum fixed with bpf_csum_diff over the old and new pseudo-header addresses fed to
 * bpf_l4_csum_replace.  64:ff9b::/96 is the translation prefix. */
#include "hunt.h"

static __always_inline int v4_to_v6(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct ipv6hdr ip6 = {};
	__u32 csum_off;
	__s64 diff;
	__be16 proto = bpf_htons(ETH_P_IPV6);
	long r;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl != 5)
		return TC_ACT_OK;
	if (ip.protocol == IPPROTO_UDP)
		csum_off = ETH_HLEN + sizeof(ip) + offsetof(struct udphdr, check);
	else if (ip.protocol == IPPROTO_TCP)
		csum_off = ETH_HLEN + sizeof(ip) + offsetof(struct tcphdr, check);
	else
		return TC_ACT_OK;
	ip6.version = 6;
	ip6.priority = ip.tos >> 4;
	ip6.flow_lbl[0] = (ip.tos & 0xf) << 4;
	ip6.payload_len = bpf_htons(bpf_ntohs(ip.tot_len) - sizeof(ip));
	ip6.nexthdr = ip.protocol;
	ip6.hop_limit = ip.ttl;
	ip6.saddr.in6_u.u6_addr32[0] = bpf_htonl(0x0064ff9b);
	ip6.saddr.in6_u.u6_addr32[3] = ip.saddr;
	ip6.daddr.in6_u.u6_addr32[0] = bpf_htonl(0x0064ff9b);
	ip6.daddr.in6_u.u6_addr32[3] = ip.daddr;

	diff = bpf_csum_diff(&ip.saddr, 8, (__be32 *)&ip6.saddr, 32, 0);
	put(1, diff);
	r = bpf_skb_change_proto(skb, proto, 0);
	put(2, r);
	if (r)
		return TC_ACT_SHOT;
	put(3, skb->len);
	put(4, bpf_ntohs(skb->protocol));
	r = bpf_skb_store_bytes(skb, 12, &proto, 2, 0);
	r |= bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), 0);
	put(5, r);
	csum_off += sizeof(ip6) - sizeof(ip);
	if (ip.protocol == IPPROTO_UDP) {
		__be16 c = 0;

		bpf_skb_load_bytes(skb, csum_off, &c, 2);
		if (!c)
			return TC_ACT_SHOT;  /* RFC 6145: zero UDP checksums are not translated */
	}
	r = bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR);
	put(6, r);
	return TC_ACT_OK;
}

static __always_inline int v6_to_v4(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	struct iphdr ip = {};
	__u32 csum_off;
	__s64 diff;
	__be16 proto = bpf_htons(ETH_P_IP);
	long r;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
		return TC_ACT_OK;
	if (ip6.daddr.in6_u.u6_addr32[0] != bpf_htonl(0x0064ff9b))
		return TC_ACT_OK;
	if (ip6.nexthdr == IPPROTO_UDP)
		csum_off = ETH_HLEN + sizeof(ip) + offsetof(struct udphdr, check);
	else if (ip6.nexthdr == IPPROTO_TCP)
		csum_off = ETH_HLEN + sizeof(ip) + offsetof(struct tcphdr, check);
	else
		return TC_ACT_OK;
	ip.version = 4;
	ip.ihl = 5;
	ip.tos = (ip6.priority << 4) | (ip6.flow_lbl[0] >> 4);
	ip.tot_len = bpf_htons(bpf_ntohs(ip6.payload_len) + sizeof(ip));
	ip.frag_off = bpf_htons(0x4000);
	ip.ttl = ip6.hop_limit;
	ip.protocol = ip6.nexthdr;
	ip.saddr = ip6.saddr.in6_u.u6_addr32[3];
	ip.daddr = ip6.daddr.in6_u.u6_addr32[3];
	{
		__u64 c = bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0);

		c = (c & 0xffff) + (c >> 16);
		c = (c & 0xffff) + (c >> 16);
		ip.check = ~c & 0xffff;
	}
	diff = bpf_csum_diff((__be32 *)&ip6.saddr, 32, &ip.saddr, 8, 0);
	put(11, diff);
	r = bpf_skb_change_proto(skb, proto, 0);
	put(12, r);
	if (r)
		return TC_ACT_SHOT;
	put(13, skb->len);
	put(14, bpf_ntohs(skb->protocol));
	r = bpf_skb_store_bytes(skb, 12, &proto, 2, 0);
	r |= bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0);
	put(15, r);
	r = bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR);
	put(16, r);
	return TC_ACT_OK;
}

SEC("tc")
int nat64(struct __sk_buff *skb)
{
	long r;

	if (skb->protocol == bpf_htons(ETH_P_IP))
		return v4_to_v6(skb);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return v6_to_v4(skb);
	r = bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0);
	put(20, r);
	r = bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 1);
	put(21, r);
	return TC_ACT_UNSPEC;
}
