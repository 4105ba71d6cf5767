// SPDX-License-Identifier: GPL-2.0
/* 802.1ad + 802.1Q (QinQ) tags in the payload: the tags read by direct access, then
 * bpf_skb_vlan_pop (which pops the outer payload tag and moves the next one into the
 * hwaccel tag), the skb's vlan fields read back, a second pop, and a push of a new 802.1ad
 * tag; ARP behind the tags counted separately. */
#include "hunt.h"

struct vhdr {
	__be16 tci;
	__be16 proto;
};

static __always_inline void snap(__u32 base, struct __sk_buff *skb)
{
	put(base, skb->vlan_present);
	put(base + 1, skb->vlan_tci);
	put(base + 2, bpf_ntohs(skb->vlan_proto));
	put(base + 3, bpf_ntohs(skb->protocol));
	put(base + 4, skb->len);
}

SEC("tc")
int qinq(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct vhdr *outer = data + ETH_HLEN, *inner = data + ETH_HLEN + 4;
	__u32 ids = 0;
	long r;

	if ((void *)(eth + 1) > end)
		return TC_ACT_SHOT;
	if ((void *)(outer + 1) <= end &&
	    (eth->h_proto == bpf_htons(ETH_P_8021AD) || eth->h_proto == bpf_htons(ETH_P_8021Q))) {
		ids = bpf_ntohs(outer->tci) & 0xfff;
		if ((void *)(inner + 1) <= end && outer->proto == bpf_htons(ETH_P_8021Q))
			ids = ids << 12 | (bpf_ntohs(inner->tci) & 0xfff);
	}
	put(0, ids);
	snap(1, skb);
	r = bpf_skb_vlan_pop(skb);
	put(6, r);
	snap(7, skb);
	r = bpf_skb_vlan_pop(skb);
	put(12, r);
	snap(13, skb);
	r = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021AD), 0x2000 | (ids & 0xfff));
	put(18, r);
	snap(19, skb);
	r = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 0x0123);
	put(24, r);
	snap(25, skb);
	r = bpf_skb_vlan_push(skb, bpf_htons(0x1234), 1);
	put(30, r);
	skb->mark = ids;
	return TC_ACT_OK;
}
