// SPDX-License-Identifier: GPL-2.0
/*
 * Checksum helpers: bpf_csum_diff over packet words (from/to sizes 0, 4, 8, 20, a seed,
 * and an invalid size that fails), bpf_csum_update (folds a diff into skb->csum when the
 * skb is CHECKSUM_COMPLETE; test_run skbs are CHECKSUM_NONE, so it returns the error
 * value), and bpf_csum_level with QUERY, INC, DEC, RESET and an invalid level.  The
 * computed IPv4 header checksum is verified with csum_diff as well.
 */
#include "common.h"

DEFINE_SLOTS(out, 16);

SEC("tc")
int csum_helpers(struct __sk_buff *skb)
{
	__u32 from[5] = {}, to[5] = {};
	long rc;

	if (bpf_skb_load_bytes(skb, 0, from, sizeof(from)) < 0)
		return TC_ACT_OK;
	if (skb->len >= 40 && bpf_skb_load_bytes(skb, 20, to, sizeof(to)) < 0)
		return TC_ACT_OK;

	slot_set(&out, 0, bpf_csum_diff(0, 0, to, 4, 0));
	slot_set(&out, 1, bpf_csum_diff(from, 4, to, 4, 0));
	slot_set(&out, 2, bpf_csum_diff(from, 8, 0, 0, 0x1234));
	slot_set(&out, 3, bpf_csum_diff(from, 20, to, 20, 0xffffffff));
	slot_set(&out, 4, bpf_csum_diff(from, 3, to, 4, 0)); /* not a multiple of 4 */

	if (skb->protocol == bpf_htons(ETH_P_IP) && skb->len >= ETH_HLEN + 20) {
		__u32 hdr[5];

		if (bpf_skb_load_bytes(skb, ETH_HLEN, hdr, sizeof(hdr)) == 0) {
			__s64 sum = bpf_csum_diff(0, 0, hdr, sizeof(hdr), 0);
			__u32 s = (__u32)sum;

			s = (s & 0xffff) + (s >> 16);
			s = (s & 0xffff) + (s >> 16);
			slot_set(&out, 5, s);   /* 0xffff for a correct header checksum */
		}
	}
	rc = bpf_csum_update(skb, 0x1234);
	slot_set(&out, 6, rc);
	slot_set(&out, 7, bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY));
	slot_set(&out, 8, bpf_csum_level(skb, BPF_CSUM_LEVEL_INC));
	slot_set(&out, 9, bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY));
	slot_set(&out, 10, bpf_csum_level(skb, BPF_CSUM_LEVEL_DEC));
	slot_set(&out, 11, bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET));
	slot_set(&out, 12, bpf_csum_level(skb, 17));
	slot_set(&out, 13, bpf_csum_level(skb, BPF_CSUM_LEVEL_DEC));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
