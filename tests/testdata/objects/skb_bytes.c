// SPDX-License-Identifier: GPL-2.0
/*
 * Byte helpers: bpf_skb_load_bytes at fixed and packet-dependent offsets (including ones
 * past the end, which fail with -EFAULT), bpf_skb_load_bytes_relative from the MAC and
 * the network header, and bpf_skb_store_bytes with flags 0, BPF_F_RECOMPUTE_CSUM and
 * BPF_F_INVALIDATE_HASH: the destination MAC is replaced, a marker is written at the end
 * of the packet and, for IPv4, the TOS byte is rewritten.  Every return code and loaded
 * word goes into the "out" array; the rewritten packet is compared as data_out.
 */
#include "common.h"

DEFINE_SLOTS(out, 16);

SEC("tc")
int skb_bytes(struct __sk_buff *skb)
{
	__u8 buf[8] = {};
	__u64 word = 0;
	long rc;

	rc = bpf_skb_load_bytes(skb, 6, buf, 6);
	slot_set(&out, 0, rc);
	__builtin_memcpy(&word, buf, 8);
	slot_set(&out, 1, word);

	rc = bpf_skb_load_bytes(skb, skb->len - 4, &word, 4);
	slot_set(&out, 2, rc);
	slot_set(&out, 3, word);

	rc = bpf_skb_load_bytes(skb, skb->len - 2, &word, 4); /* 2 bytes past the end */
	slot_set(&out, 4, rc);

	word = 0;
	rc = bpf_skb_load_bytes_relative(skb, 0, &word, 8, BPF_HDR_START_MAC);
	slot_set(&out, 5, rc);
	slot_set(&out, 6, word);

	word = 0;
	rc = bpf_skb_load_bytes_relative(skb, 0, &word, 4, BPF_HDR_START_NET);
	slot_set(&out, 7, rc);
	slot_set(&out, 8, word);

	rc = bpf_skb_load_bytes_relative(skb, 0xffff, &word, 4, BPF_HDR_START_NET);
	slot_set(&out, 9, rc);

	__u8 mac[6] = { 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30 };
	rc = bpf_skb_store_bytes(skb, 0, mac, sizeof(mac), 0);
	slot_set(&out, 10, rc);

	__u32 marker = 0xfeedf00d;
	if (skb->len >= 64) {
		rc = bpf_skb_store_bytes(skb, skb->len - 4, &marker, 4,
					 BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH);
		slot_set(&out, 11, rc);
	}
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 tos = 0xb8;

		rc = bpf_skb_store_bytes(skb, ETH_HLEN + 1, &tos, 1, BPF_F_RECOMPUTE_CSUM);
		slot_set(&out, 12, rc);
	}
	/* Past the end: -EFAULT, nothing written. */
	rc = bpf_skb_store_bytes(skb, skb->len, &marker, 4, 0);
	slot_set(&out, 13, rc);
	/* Invalid flags: -EINVAL. */
	rc = bpf_skb_store_bytes(skb, 0, &marker, 4, 0x80);
	slot_set(&out, 14, rc);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
