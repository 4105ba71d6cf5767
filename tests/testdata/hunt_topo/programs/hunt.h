/* SPDX-License-Identifier: GPL-2.0 */
/* Shared parts of the topology hunt programs (tests/testdata/hunt_topo/programs).
 *
 * observe() writes what a hook saw of the skb into the `seen` hash map, under the key
 * (ifindex << 24) | (egress << 23) | n, n counting the packets that hook saw; the
 * scenario comparison (`tcemu diff`) then compares every field on both backends.
 */
#ifndef TCEMU_HUNT_H
#define TCEMU_HUNT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct record {
	__u32 len;
	__u32 wire_len;
	__u32 pkt_type;
	__u32 mark;
	__u32 priority;
	__u32 ifindex;
	__u32 ingress_ifindex;
	__u32 tc_index;
	__u32 tc_classid;
	__u32 protocol;
	__u32 vlan_present;
	__u32 vlan_tci;
	__u32 vlan_proto;
	__u32 cb0;
	__u32 queue_mapping;
	__u32 linear;		/* data_end - data */
	__u32 ttl;		/* IPv4 TTL / IPv6 hop limit, or 0 */
	__u32 l4;		/* IP protocol / next header, or 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct record);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} seq SEC(".maps");

static __always_inline void hunt_l3(struct __sk_buff *skb, struct record *r)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return;
		r->ttl = ip->ttl;
		r->l4 = ip->protocol;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return;
		r->ttl = ip6->hop_limit;
		r->l4 = ip6->nexthdr;
	}
}

static __always_inline void observe(struct __sk_buff *skb, __u32 egress)
{
	struct record r = {};
	__u32 key = (skb->ifindex << 24) | (egress << 23), one = 1, *n;

	n = bpf_map_lookup_elem(&seq, &key);
	if (n) {
		key |= *n & 0x7fffff;
		*n += 1;
	} else {
		bpf_map_update_elem(&seq, &key, &one, BPF_ANY);
	}
	r.len = skb->len;
	r.wire_len = skb->wire_len;
	r.pkt_type = skb->pkt_type;
	r.mark = skb->mark;
	r.priority = skb->priority;
	r.ifindex = skb->ifindex;
	r.ingress_ifindex = skb->ingress_ifindex;
	r.tc_index = skb->tc_index;
	r.tc_classid = skb->tc_classid;
	r.protocol = skb->protocol;
	r.vlan_present = skb->vlan_present;
	r.vlan_tci = skb->vlan_tci;
	r.vlan_proto = skb->vlan_proto;
	r.cb0 = skb->cb[0];
	r.queue_mapping = skb->queue_mapping;
	r.linear = skb->data_end - skb->data;
	hunt_l3(skb, &r);
	bpf_map_update_elem(&seen, &key, &r, BPF_ANY);
}

/* A u32 -> u32 configuration array. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

static __always_inline __u32 cfg_get(__u32 idx)
{
	__u32 *p = bpf_map_lookup_elem(&cfg, &idx);

	return p ? *p : 0;
}

/* The UDP destination port of an untagged IPv4 frame without options, or 0. */
static __always_inline __u32 udp_dport(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	return bpf_ntohs(udp->dest);
}

char LICENSE[] SEC("license") = "GPL";

#endif
