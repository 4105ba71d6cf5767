// SPDX-License-Identifier: GPL-2.0
/*
 * VLAN and IPv6 parsing: up to two 802.1Q/802.1ad tags (the VLAN id of the outer tag
 * keys an ARRAY of per-VLAN counters), then IPv6 with the addresses fetched through
 * bpf_skb_load_bytes into a HASH keyed by (source /64 prefix, next header), and the
 * traffic class and flow label read by direct packet access.  BPF_PROG_TEST_RUN does
 * not untag VLANs (no hardware acceleration), so skb->vlan_present is 0 and the tags stay
 * in the packet.
 */
#include "common.h"

struct v6key {
	__u8 prefix[8];
	__u8 nexthdr;
	__u8 pad[3];
};

struct v6val {
	__u64 packets;
	__u32 flowlabel;
	__u8 tclass;
	__u8 hop_limit;
	__u16 payload_len;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct v6key);
	__type(value, struct v6val);
} v6flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} per_vlan SEC(".maps");

/* 0 tagged frames, 1 double-tagged, 2 IPv6, 3 vlan_present, 4 load_bytes failures */
DEFINE_SLOTS(stats, 5);

SEC("tc")
int vlan_ipv6(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 off = ETH_HLEN;

	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	slot_add(&stats, 3, skb->vlan_present);
	__u16 proto = bpf_ntohs(eth->h_proto);
	if (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
		struct vlan_tag *tag = data + off;

		if ((void *)(tag + 1) > end)
			return TC_ACT_SHOT;
		__u32 vid = bpf_ntohs(tag->tci) & 0xf;
		__u64 *c = bpf_map_lookup_elem(&per_vlan, &vid);

		if (c)
			*c += 1;
		slot_add(&stats, 0, 1);
		proto = bpf_ntohs(tag->proto);
		off += sizeof(*tag);
		if (proto == ETH_P_8021Q) {
			tag = data + off;
			if ((void *)(tag + 1) > end)
				return TC_ACT_SHOT;
			slot_add(&stats, 1, 1);
			proto = bpf_ntohs(tag->proto);
			off += sizeof(*tag);
		}
	}
	if (proto != ETH_P_IPV6)
		return TC_ACT_OK;
	struct ipv6hdr *ip6 = data + off;
	if ((void *)(ip6 + 1) > end)
		return TC_ACT_OK;
	slot_add(&stats, 2, 1);

	struct v6key k = {};
	if (bpf_skb_load_bytes(skb, off + offsetof(struct ipv6hdr, saddr), k.prefix, 8)) {
		slot_add(&stats, 4, 1);
		return TC_ACT_OK;
	}
	k.nexthdr = ip6->nexthdr;
	struct v6val *v = bpf_map_lookup_elem(&v6flows, &k);
	if (!v) {
		struct v6val z = {};

		bpf_map_update_elem(&v6flows, &k, &z, BPF_ANY);
		v = bpf_map_lookup_elem(&v6flows, &k);
		if (!v)
			return TC_ACT_OK;
	}
	v->packets++;
	v->flowlabel = (ip6->flow_lbl[0] & 0xf) << 16 | ip6->flow_lbl[1] << 8 | ip6->flow_lbl[2];
	v->tclass = ip6->priority << 4 | ip6->flow_lbl[0] >> 4;
	v->hop_limit = ip6->hop_limit;
	v->payload_len = bpf_ntohs(ip6->payload_len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
