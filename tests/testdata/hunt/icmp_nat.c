// SPDX-License-Identifier: GPL-2.0
/* Reverse NAT of ICMP errors, as a load balancer must do for "fragmentation needed" and
 * "port unreachable" coming back from a backend: the embedded IPv4+UDP/TCP header's source
 * (the backend) is rewritten to the VIP, with the embedded IP checksum fixed by a 4-byte
 * bpf_l3_csum_replace at its offset, the embedded L4 port and checksum rewritten, and the
 * outer ICMP checksum fixed with a bpf_csum_diff over every changed word fed to
 * bpf_l4_csum_replace (no pseudo header); the outer destination is left alone.  ICMPv6
 * "packet too big" gets the same treatment with the pseudo-header flag for the outer
 * address it changes. */
#include "hunt.h"

#define VIP4 0x0a000063        /* 10.0.0.99 */
#define BACKEND4 0x0a010005    /* 10.1.0.5 */

struct inner4 {
	struct iphdr ip;
	__be16 sport;
	__be16 dport;
	__be16 len_or_seq;
	__be16 csum;
};

static __always_inline int v4(struct __sk_buff *skb)
{
	struct iphdr outer;
	struct inner4 in;
	__u8 icmp[8];
	__u32 ioff, coff;
	__be32 vip = bpf_htonl(VIP4);
	__be16 vport = bpf_htons(80);
	__s64 diff;
	long r;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &outer, sizeof(outer)) < 0 || outer.ihl != 5 ||
	    outer.protocol != IPPROTO_ICMP)
		return TC_ACT_OK;
	coff = ETH_HLEN + sizeof(outer);
	if (bpf_skb_load_bytes(skb, coff, icmp, sizeof(icmp)) < 0)
		return TC_ACT_OK;
	put(0, (icmp[0] << 8) | icmp[1]);
	if (icmp[0] != 3 && icmp[0] != 11)
		return TC_ACT_OK;
	ioff = coff + sizeof(icmp);
	if (bpf_skb_load_bytes(skb, ioff, &in, sizeof(in)) < 0 || in.ip.ihl != 5) {
		add(1, 1);
		return TC_ACT_SHOT;
	}
	if (in.ip.saddr != bpf_htonl(BACKEND4))
		return TC_ACT_OK;

	/* The ICMP checksum covers the embedded bytes: diff every word that changes. */
	{
		__u32 old[3] = { in.ip.saddr, in.ip.check, ((__u32)in.csum << 16) | in.sport };
		__u32 new[3];
		__be16 ncheck;
		__u32 nsum;

		/* new embedded IP checksum: incremental update of the address change */
		nsum = (__u16)~bpf_ntohs(in.ip.check);
		nsum += (__u16)~(bpf_ntohl(in.ip.saddr) >> 16) + (__u16)~(bpf_ntohl(in.ip.saddr) & 0xffff);
		nsum += (VIP4 >> 16) + (VIP4 & 0xffff);
		nsum = (nsum & 0xffff) + (nsum >> 16);
		nsum = (nsum & 0xffff) + (nsum >> 16);
		ncheck = bpf_htons(~nsum & 0xffff);
		put(2, bpf_ntohs(ncheck));

		r = bpf_l3_csum_replace(skb, ioff + offsetof(struct iphdr, check), in.ip.saddr,
					vip, 4);
		put(3, r);
		r = bpf_skb_store_bytes(skb, ioff + offsetof(struct iphdr, saddr), &vip, 4, 0);
		put(4, r);
		if (in.ip.protocol == IPPROTO_UDP && in.csum) {
			r = bpf_l4_csum_replace(skb, ioff + 26, in.ip.saddr, vip,
						BPF_F_PSEUDO_HDR | 4);
			put(5, r);
			r = bpf_l4_csum_replace(skb, ioff + 26, in.sport, vport, 2);
			put(6, r);
		}
		r = bpf_skb_store_bytes(skb, ioff + 20, &vport, 2, 0);
		put(7, r);
		if (bpf_skb_load_bytes(skb, ioff + 10, &new[1], 4) < 0)
			return TC_ACT_SHOT;
		new[0] = vip;
		{
			__be16 c16 = 0, p16 = vport;

			bpf_skb_load_bytes(skb, ioff + 26, &c16, 2);
			new[2] = ((__u32)c16 << 16) | p16;
		}
		old[1] = ((__u32)in.ip.check) | ((__u32)in.ip.check << 16);
		new[1] = ((__u32)ncheck) | ((__u32)ncheck << 16);
		diff = bpf_csum_diff(old, sizeof(old), new, sizeof(new), 0);
		put(8, diff);
		r = bpf_l4_csum_replace(skb, coff + 2, 0, diff, 0);
		put(9, r);
	}
	return TC_ACT_OK;
}

static __always_inline int v6(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	__u8 icmp[8];
	__u32 coff = ETH_HLEN + sizeof(ip6);
	__be32 new_dst[4] = { bpf_htonl(0x20010db8), 0, 0, bpf_htonl(0x99) };
	__s64 diff;
	long r;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0 || ip6.nexthdr != 58)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, coff, icmp, sizeof(icmp)) < 0)
		return TC_ACT_OK;
	put(10, (icmp[0] << 8) | icmp[1]);
	if (icmp[0] != 2)
		return TC_ACT_OK;
	/* rewrite the outer destination: the pseudo header changes */
	diff = bpf_csum_diff((__be32 *)&ip6.daddr, 16, new_dst, 16, 0);
	put(11, diff);
	r = bpf_l4_csum_replace(skb, coff + 2, 0, diff, BPF_F_PSEUDO_HDR);
	put(12, r);
	r = bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, daddr), new_dst, 16, 0);
	put(13, r);
	return TC_ACT_OK;
}

SEC("tc")
int icmp_nat(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return v4(skb);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return v6(skb);
	return TC_ACT_UNSPEC;
}
