// SPDX-License-Identifier: GPL-2.0
/* Rejected: a loop over the whole packet length with no constant bound (skb->len can be
 * 4 GiB for the verifier): too many instructions. */
#include "students.h"

SEC("tc")
int loop_unbounded(struct __sk_buff *skb)
{
	__u32 sum = 0;

	for (__u32 i = 0; i < skb->len; i++) {
		__u8 b;

		if (bpf_skb_load_bytes(skb, i, &b, 1))
			break;
		sum += b;
	}
	skb->mark = sum;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
