// SPDX-License-Identifier: GPL-2.0
/*
 * Per-protocol statistics: an ARRAY indexed by the IPv4 protocol number (256 entries) and
 * a PERCPU_ARRAY with the same index, plus an ARRAY of per-ethertype-class counters.  The
 * program drops IPv4 fragments and returns TC_ACT_UNSPEC for frames it cannot parse.
 */
#include "common.h"

struct proto_val {
	__u64 packets;
	__u64 bytes;
	__u64 min_len;
	__u64 max_len;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct proto_val);
} by_proto SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct proto_val);
} by_proto_pcpu SEC(".maps");

/* 0 IPv4, 1 IPv6, 2 ARP, 3 other, 4 tagged (any VLAN) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u32);
} by_class SEC(".maps");

static __always_inline void account(struct proto_val *v, __u32 len)
{
	v->packets++;
	v->bytes += len;
	if (v->min_len == 0 || len < v->min_len)
		v->min_len = len;
	if (len > v->max_len)
		v->max_len = len;
}

SEC("tc")
int proto_stats(struct __sk_buff *skb)
{
	struct pkt p;
	__u32 cls, proto;

	if (parse_pkt(skb, &p) < 0)
		return TC_ACT_UNSPEC;
	switch (p.eth_proto) {
	case ETH_P_IP: cls = 0; break;
	case ETH_P_IPV6: cls = 1; break;
	case ETH_P_ARP: cls = 2; break;
	default: cls = 3; break;
	}
	__u32 *c = bpf_map_lookup_elem(&by_class, &cls);
	if (c)
		__sync_fetch_and_add(c, 1);
	if (p.l3_off > ETH_HLEN) {
		cls = 4;
		c = bpf_map_lookup_elem(&by_class, &cls);
		if (c)
			*c += 1;
	}
	if (!p.ip)
		return TC_ACT_OK;
	proto = p.ip->protocol;
	struct proto_val *v = bpf_map_lookup_elem(&by_proto, &proto);
	if (v)
		account(v, skb->len);
	v = bpf_map_lookup_elem(&by_proto_pcpu, &proto);
	if (v)
		account(v, skb->len);
	if (p.ip->frag_off & bpf_htons(0x3fff))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
