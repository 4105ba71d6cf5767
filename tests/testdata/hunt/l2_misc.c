// SPDX-License-Identifier: GPL-2.0
/* An edge filter's grab bag: ECN marking with bpf_skb_ecn_set_ce (IPv4 ECT(0)/ECT(1)/
 * not-ECT/CE, IPv6, non-IP), the flow hash (recalculated: only whether it is non-zero and
 * stable, since the kernel salts it), set_hash_invalid then a read, bpf_set_hash,
 * bpf_get_socket_cookie and bpf_get_socket_uid of the test run's dummy socket, bpf_skb_cgroup_classid,
 * bpf_check_mtu on lo, bpf_csum_level, and an ARP request answered by rewriting it into a reply in place. */
#include "hunt.h"

struct arp_eth {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__be32 spa;
	__u8 tha[6];
	__be32 tpa;
} __attribute__((packed));

static __always_inline int arp_reply(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp_eth *arp = data + ETH_HLEN;
	__u8 mine[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
	__be32 ip;

	if ((void *)(arp + 1) > end)
		return TC_ACT_SHOT;
	if (arp->op != bpf_htons(1) || arp->plen != 4 || arp->hlen != 6)
		return TC_ACT_OK;
	ip = arp->tpa;
	arp->op = bpf_htons(2);
	__builtin_memcpy(arp->tha, arp->sha, 6);
	arp->tpa = arp->spa;
	__builtin_memcpy(arp->sha, mine, 6);
	arp->spa = ip;
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, mine, 6);
	put(20, bpf_ntohl(ip));
	return TC_ACT_OK;
}

SEC("tc")
int l2_misc(struct __sk_buff *skb)
{
	__u32 h1, h2, mtu = 0;

	put(0, bpf_skb_ecn_set_ce(skb));
	h1 = bpf_get_hash_recalc(skb);
	h2 = bpf_get_hash_recalc(skb);
	put(1, (h1 != 0) | ((h1 == h2) << 1) | ((skb->hash == h1) << 2));
	bpf_set_hash_invalid(skb);
	put(2, skb->hash);
	h2 = bpf_get_hash_recalc(skb);
	put(3, h1 == h2);
	put(4, bpf_set_hash(skb, 0x1234));
	put(5, skb->hash);
	bpf_set_hash_invalid(skb);
	put(6, skb->hash);
	{
		/* BPF_PROG_TEST_RUN gives the skb a dummy socket; its cookie comes from a global
		 * counter, so only its properties are compared. */
		__u64 c1 = bpf_get_socket_cookie(skb), c2 = bpf_get_socket_cookie(skb);

		put(7, (c1 != 0) | ((c1 == c2) << 1));
	}
	put(8, bpf_get_socket_uid(skb));
	put(9, bpf_skb_cgroup_classid(skb));
	put(10, bpf_check_mtu(skb, 0, &mtu, 0, 0));
	put(11, mtu);
	mtu = 0;
	put(12, bpf_check_mtu(skb, 0, &mtu, 100000, 0));
	put(13, mtu);
	put(14, bpf_check_mtu(skb, 0, &mtu, 0, 8));
	put(15, bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY));
	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return arp_reply(skb);
	return TC_ACT_PIPE;
}
