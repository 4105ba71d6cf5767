// SPDX-License-Identifier: GPL-2.0
/* Every __sk_buff field a tc program can read, folded into result slots, under several
 * ctx_in values (mark, priority, ifindex, cb, tstamp, wire_len, gso_segs, gso_size,
 * hwtstamp); the socket fields (family, addresses, ports) are not readable at tc and
 * are left out; then writes of mark, priority, tc_index, cb, tc_classid, queue_mapping,
 * tstamp (with and without tstamp_type) and narrow reads of what was written. */
#include "hunt.h"

SEC("tc")
int skb_fields(struct __sk_buff *skb)
{
	__u32 i = 0;

	put(i++, skb->len);
	put(i++, skb->pkt_type);
	put(i++, skb->mark);
	put(i++, skb->queue_mapping);
	put(i++, skb->protocol);
	put(i++, skb->vlan_present);
	put(i++, skb->vlan_tci);
	put(i++, skb->vlan_proto);
	put(i++, skb->priority);
	put(i++, skb->ingress_ifindex);
	put(i++, skb->ifindex);
	put(i++, skb->tc_index);
	put(i++, ((__u64)skb->cb[0] << 32) | skb->cb[4]);
	put(i++, skb->tc_classid);
	put(i++, skb->data_end - skb->data);
	put(i++, skb->napi_id);
	put(i++, skb->data_meta - skb->data);
	put(i++, skb->tstamp);
	put(i++, skb->wire_len);
	put(i++, skb->gso_segs);
	put(i++, skb->gso_size);
	put(i++, skb->tstamp_type);
	put(i++, skb->hwtstamp);
	put(i++, skb->sk != 0);

	skb->mark = skb->mark * 3 + 1;
	skb->priority = 0x10003;
	skb->tc_index = 0x1ff;
	skb->cb[2] = skb->len;
	skb->tc_classid = 0x10002;
	skb->queue_mapping = skb->len & 7;
	if (skb->tstamp_type == BPF_SKB_TSTAMP_UNSPEC)
		skb->tstamp = 1000;
	put(i++, skb->tstamp_type);
	put(i++, skb->tstamp);
	put(i++, *(__u8 *)&skb->mark);
	put(i++, *((__u16 *)&skb->priority + 1));
	put(i++, *(__u16 *)&skb->tc_index);
	put(i++, *((__u8 *)&skb->protocol + 1));
	put(i++, *((__u16 *)&skb->len));
	bpf_skb_set_tstamp(skb, 5000, BPF_SKB_TSTAMP_DELIVERY_MONO);
	put(i++, skb->tstamp_type);
	put(i++, skb->tstamp);
	put(i++, bpf_skb_set_tstamp(skb, 7000, 3));
	put(i++, bpf_skb_set_tstamp(skb, 0, BPF_SKB_TSTAMP_DELIVERY_MONO));
	put(i++, skb->tstamp_type);
	return skb->queue_mapping;
}
