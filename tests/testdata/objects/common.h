/* SPDX-License-Identifier: GPL-2.0 */
/* Shared definitions of tcemu's differential test objects (tests/testdata/objects). */
#ifndef TCEMU_OBJECTS_COMMON_H
#define TCEMU_OBJECTS_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* One VLAN tag as it sits in the frame after the two MAC addresses. */
struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

/* An array of u64 result slots; the test compares it like every other map. */
#define DEFINE_SLOTS(name, n)                                                                  \
	struct {                                                                               \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                              \
		__uint(max_entries, n);                                                        \
		__type(key, __u32);                                                            \
		__type(value, __u64);                                                          \
	} name SEC(".maps")

static __always_inline void slot_set(void *map, __u32 idx, __u64 value)
{
	__u64 *p = bpf_map_lookup_elem(map, &idx);

	if (p)
		*p = value;
}

static __always_inline void slot_add(void *map, __u32 idx, __u64 value)
{
	__u64 *p = bpf_map_lookup_elem(map, &idx);

	if (p)
		__sync_fetch_and_add(p, value);
}

/* Parsed L2/L3 view of a frame through direct packet access. */
struct pkt {
	void *data;
	void *end;
	__u16 eth_proto;   /* host order, after at most two VLAN tags */
	__u16 l3_off;      /* offset of the L3 header */
	struct iphdr *ip;  /* NULL unless IPv4 with a complete header */
	__u16 l4_off;      /* offset of the L4 header when ip != NULL */
};

static __always_inline int parse_pkt(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u16 off = sizeof(*eth);

	p->data = data;
	p->end = end;
	p->ip = 0;
	p->l4_off = 0;
	if ((void *)(eth + 1) > end)
		return -1;
	p->eth_proto = bpf_ntohs(eth->h_proto);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (p->eth_proto != ETH_P_8021Q && p->eth_proto != ETH_P_8021AD)
			break;
		struct vlan_tag *tag = data + off;

		if ((void *)(tag + 1) > end)
			return -1;
		p->eth_proto = bpf_ntohs(tag->proto);
		off += sizeof(*tag);
	}
	p->l3_off = off;
	if (p->eth_proto == ETH_P_IP) {
		struct iphdr *ip = data + off;

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return 0;
		p->ip = ip;
		p->l4_off = off + ip->ihl * 4;
	}
	return 0;
}

#endif
