// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers that change the packet's size or layout, one program each, compared through
 * data_out and the return codes: bpf_skb_vlan_push / bpf_skb_vlan_pop, bpf_skb_change_tail
 * (grow and shrink), bpf_skb_change_head (room for an outer Ethernet header),
 * bpf_skb_adjust_room (BPF_ADJ_ROOM_NET grow by 8 then shrink by 4, IPv4 only) and
 * bpf_skb_change_proto (IPv4 -> IPv6, which only moves the headers).
 */
#include "common.h"

DEFINE_SLOTS(out, 12);

SEC("tc")
int vlan_push_pop(struct __sk_buff *skb)
{
	slot_set(&out, 0, bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), skb->len & 0xfff));
	slot_set(&out, 1, skb->vlan_present);
	slot_set(&out, 2, skb->vlan_tci);
	slot_set(&out, 3, bpf_skb_vlan_push(skb, bpf_htons(0x1234), 5)); /* bad proto */
	if (skb->len & 1)
		slot_set(&out, 4, bpf_skb_vlan_pop(skb));
	return TC_ACT_OK;
}

SEC("tc")
int change_tail(struct __sk_buff *skb)
{
	__u32 len = skb->len;

	if (len & 1)
		slot_set(&out, 5, bpf_skb_change_tail(skb, len + 16, 0));
	else
		slot_set(&out, 5, bpf_skb_change_tail(skb, len > 40 ? len - 10 : len, 0));
	slot_set(&out, 6, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int change_head(struct __sk_buff *skb)
{
	slot_set(&out, 7, bpf_skb_change_head(skb, ETH_HLEN, 0));
	slot_set(&out, 8, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int adjust_room(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	slot_set(&out, 9, bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0));
	slot_set(&out, 10, bpf_skb_adjust_room(skb, -4, BPF_ADJ_ROOM_NET, 0));
	return TC_ACT_OK;
}

SEC("tc")
int change_proto(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	slot_set(&out, 11, bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
