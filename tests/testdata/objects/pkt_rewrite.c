// SPDX-License-Identifier: GPL-2.0
/*
 * Direct packet access, reads and writes: a reflector that swaps the MAC addresses, and for
 * IPv4 swaps the addresses (checksum-neutral), decrements the TTL with an incremental
 * RFC 1624 checksum update, rewrites the DSCP to EF keeping ECN, swaps TCP/UDP ports and
 * writes byte, half-word, word and double-word stores into the payload.  Packets whose
 * TTL would reach 0 are dropped.  The rewritten bytes are compared as data_out.
 */
#include "common.h"

DEFINE_SLOTS(out, 4);

static __always_inline void csum_replace2(__sum16 *sum, __be16 old, __be16 new)
{
	__u32 c = (__u16)~*sum + (__u16)~old + (__u16)new;

	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	*sum = ~c;
}

SEC("tc")
int pkt_rewrite(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	__u8 tmp[ETH_ALEN];
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;

	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return TC_ACT_OK;
	if (ip->ttl <= 1) {
		slot_add(&out, 0, 1);
		return TC_ACT_SHOT;
	}
	__be32 a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;

	__be16 old = *(__be16 *)&ip->ttl;
	ip->ttl--;
	csum_replace2(&ip->check, old, *(__be16 *)&ip->ttl);

	old = *(__be16 *)ip;
	ip->tos = (ip->tos & 3) | (46 << 2);
	csum_replace2(&ip->check, old, *(__be16 *)ip);

	if (ip->ihl != 5 || (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP))
		return TC_ACT_OK;
	struct udphdr *uh = (void *)(ip + 1);
	if ((void *)(uh + 1) > end)
		return TC_ACT_OK;
	__be16 port = uh->source;
	uh->source = uh->dest;
	uh->dest = port;
	slot_add(&out, 1, 1);

	__u8 *pl = (__u8 *)(uh + 1) + (ip->protocol == IPPROTO_TCP ? 12 : 0);
	if ((void *)(pl + 16) > end)
		return TC_ACT_OK;
	/* Payload stores of every width: the L4 checksum is not fixed, which tc allows. */
	pl[0] = 0xab;
	*(__u16 *)(pl + 2) = 0xcdef;
	*(__u32 *)(pl + 4) = 0x01234567;
	*(__u64 *)(pl + 8) = 0x89abcdef01234567ULL ^ *(__u64 *)(pl + 8);
	slot_add(&out, 2, pl[1]);
	return TC_ACT_PIPE;
}

char LICENSE[] SEC("license") = "GPL";
