// SPDX-License-Identifier: GPL-2.0
/*
 * Source NAT: IPv4 TCP/UDP packets whose source matches a translation entry (HASH map,
 * preloaded by the test on both sides; misses are counted) get a new source address and
 * port.  The IP checksum is fixed with bpf_l3_csum_replace (4-byte replace), the L4
 * checksum with bpf_l4_csum_replace, once with BPF_F_PSEUDO_HDR for the address (part of
 * the pseudo header) and once without for the port; UDP adds BPF_F_MARK_MANGLED_0 so a
 * zero (absent) UDP checksum stays zero.  The bytes are written with bpf_skb_store_bytes.
 * Packets with a NAT entry keyed by the destination get a DNAT with a 2-byte l3 replace
 * of the TTL/protocol word and csum_diff-based fix-up instead.
 */
#include "common.h"

struct nat_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct nat_val {
	__be32 addr;
	__be16 port;
	__u16 pad;
	__u64 hits;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct nat_key);
	__type(value, struct nat_val);
} snat SEC(".maps");

/* 0 misses, 1 l3 rc, 2 l4 addr rc, 3 l4 port rc, 4 store rc, 5 ttl rc, 6 bad-flags rc */
DEFINE_SLOTS(stats, 7);

SEC("tc")
int nat_rewrite(struct __sk_buff *skb)
{
	struct pkt p;

	if (parse_pkt(skb, &p) < 0 || !p.ip || p.l3_off != ETH_HLEN)
		return TC_ACT_OK;
	__u8 proto = p.ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return TC_ACT_OK;
	if (p.ip->ihl != 5 || p.ip->frag_off & bpf_htons(0x3fff))
		return TC_ACT_OK;
	struct udphdr *uh = p.data + p.l4_off;
	if ((void *)(uh + 1) > p.end)
		return TC_ACT_OK;
	__u32 csum_off = p.l4_off + (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
							   : offsetof(struct udphdr, check));
	__u64 mangled = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	struct nat_key k = { .addr = p.ip->saddr, .port = uh->source, .proto = proto };
	__be32 old_addr = p.ip->saddr;
	__be16 old_port = uh->source;
	__u8 old_ttl = p.ip->ttl;

	struct nat_val *v = bpf_map_lookup_elem(&snat, &k);
	if (!v) {
		slot_add(&stats, 0, 1);
		return TC_ACT_OK;
	}
	__sync_fetch_and_add(&v->hits, 1);
	__be32 new_addr = v->addr;
	__be16 new_port = v->port;
	long rc;

	rc = bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_addr,
				 new_addr, 4);
	slot_set(&stats, 1, rc);
	rc = bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr,
				 BPF_F_PSEUDO_HDR | mangled | 4);
	slot_set(&stats, 2, rc);
	rc = bpf_l4_csum_replace(skb, csum_off, old_port, new_port, mangled | 2);
	slot_set(&stats, 3, rc);
	rc = bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, saddr), &new_addr, 4, 0);
	rc |= bpf_skb_store_bytes(skb, p.l4_off + offsetof(struct udphdr, source), &new_port, 2,
				  0);
	slot_set(&stats, 4, rc);

	/* Decrement the TTL: a 2-byte replace of the TTL/protocol word. */
	__be16 old_word = bpf_htons((__u16)old_ttl << 8 | proto);
	__u8 new_ttl = old_ttl - 1;
	__be16 new_word = bpf_htons((__u16)new_ttl << 8 | proto);
	rc = bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_word,
				 new_word, 2);
	rc |= bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &new_ttl, 1, 0);
	slot_set(&stats, 5, rc);
	/* A size of 3 is invalid for both helpers. */
	rc = bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), 0, 0, 3);
	rc ^= bpf_l4_csum_replace(skb, csum_off, 0, 0, 3) << 8;
	slot_set(&stats, 6, rc);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
