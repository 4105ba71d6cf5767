// SPDX-License-Identifier: GPL-2.0
/*
 * __sk_buff field access.  Reads: len, pkt_type, mark, queue_mapping, protocol,
 * vlan_present, vlan_tci, vlan_proto, priority, ingress_ifindex, ifindex, tc_index, cb[],
 * hash, tc_classid, data/data_end (as a length), napi_id, data_meta, wire_len, gso_segs,
 * gso_size, tstamp; plus narrow loads: both bytes and the half-word of protocol, a byte of
 * pkt_type, both half-words and a byte of len, a byte of mark, of cb[2] and a half of hash.
 * Writes (whole words; the verifier refuses narrow ctx stores): mark, priority, tc_index,
 * tc_classid, cb[0], cb[1], cb[3], cb[4], queue_mapping (including NO_QUEUE_MAPPING, which
 * is ignored) and tstamp.  Fields that ctx_out does not carry (tc_index, tc_classid,
 * queue_mapping) are read back into the map after the write.
 */
#include "common.h"

DEFINE_SLOTS(out, 40);

#define NARROW(type, field, byte) (*(volatile type *)((void *)&skb->field + (byte)))

SEC("tc")
int skb_ctx(struct __sk_buff *skb)
{
	slot_set(&out, 0, skb->len);
	slot_set(&out, 1, skb->pkt_type);
	slot_set(&out, 2, skb->mark);
	slot_set(&out, 3, skb->queue_mapping);
	slot_set(&out, 4, skb->protocol);
	slot_set(&out, 5, skb->vlan_present);
	slot_set(&out, 6, skb->vlan_tci);
	slot_set(&out, 7, skb->vlan_proto);
	slot_set(&out, 8, skb->priority);
	slot_set(&out, 9, skb->ingress_ifindex);
	slot_set(&out, 10, skb->ifindex);
	slot_set(&out, 11, skb->tc_index);
	slot_set(&out, 12, (__u64)skb->cb[0] | (__u64)skb->cb[4] << 32);
	slot_set(&out, 13, skb->tc_classid);
	slot_set(&out, 14, skb->data_end - skb->data);
	slot_set(&out, 15, skb->napi_id);
	slot_set(&out, 16, skb->data - skb->data_meta);
	slot_set(&out, 17, skb->wire_len);
	slot_set(&out, 18, skb->gso_segs);
	slot_set(&out, 19, skb->gso_size);
	slot_set(&out, 20, skb->tstamp);
	/* narrow loads (little-endian byte offsets) */
	slot_set(&out, 21, NARROW(__u8, protocol, 0));
	slot_set(&out, 22, NARROW(__u8, protocol, 1));
	slot_set(&out, 23, NARROW(__u16, protocol, 0));
	slot_set(&out, 24, NARROW(__u8, pkt_type, 0));
	slot_set(&out, 25, NARROW(__u16, len, 0));
	slot_set(&out, 26, NARROW(__u16, len, 2));
	slot_set(&out, 27, NARROW(__u8, len, 1));
	slot_set(&out, 28, NARROW(__u8, mark, 3));
	slot_set(&out, 29, NARROW(__u8, cb[2], 1));
	slot_set(&out, 30, NARROW(__u16, hash, 2));

	/* writes */
	skb->mark = skb->mark * 3 + skb->len;
	skb->priority = skb->cb[1] ^ 0x10;
	skb->cb[0] = skb->len;
	skb->cb[1] += 1;
	skb->cb[3] = skb->cb[2] ^ 0xa5a5a5a5;
	skb->cb[4] = skb->protocol;
	skb->tc_index = skb->len & 0xffff;
	skb->tc_classid = 0x10000 | (skb->len & 0xff);
	skb->queue_mapping = skb->len & 7;
	if (skb->len & 1)
		skb->tstamp = 1000000000ULL + skb->len;
	slot_set(&out, 31, skb->tc_index);
	slot_set(&out, 32, skb->tc_classid);
	slot_set(&out, 33, skb->queue_mapping);
	slot_set(&out, 34, skb->mark);
	slot_set(&out, 35, skb->tstamp);
	skb->queue_mapping = 0xffff;   /* NO_QUEUE_MAPPING: ignored */
	slot_set(&out, 36, skb->queue_mapping);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
