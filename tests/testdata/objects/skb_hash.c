// SPDX-License-Identifier: GPL-2.0
/*
 * Flow hash helpers: bpf_get_hash_recalc (the flow dissector's hash, salted with a random
 * per-boot key in the kernel: nondeterministic, so its slots are excluded from the
 * comparison), bpf_set_hash with a value derived from the packet, skb->hash read back,
 * bpf_set_hash_invalid followed by a read of skb->hash (0) and a final bpf_set_hash.
 */
#include "common.h"

/* 0 recalc (excluded), 1 skb->hash after recalc (excluded), 2 hash before anything,
 * 3 set_hash rc, 4 hash after set, 5 hash after invalid, 6 final hash */
DEFINE_SLOTS(out, 7);

SEC("tc")
int skb_hash(struct __sk_buff *skb)
{
	__u32 h = skb->len * 0x01000193 ^ skb->protocol;

	slot_set(&out, 2, skb->hash);
	slot_set(&out, 3, bpf_set_hash(skb, h));
	slot_set(&out, 4, skb->hash);
	bpf_set_hash_invalid(skb);
	slot_set(&out, 5, skb->hash);
	slot_set(&out, 0, bpf_get_hash_recalc(skb));
	slot_set(&out, 1, skb->hash);
	bpf_set_hash(skb, h ^ 0xffff);
	slot_set(&out, 6, skb->hash);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
