// SPDX-License-Identifier: GPL-2.0
/* Rejected: the payload length is computed as a signed int (len - 14) and only checked
 * against an upper bound, so it may be negative when passed as a size. */
#include "students.h"

SEC("tc")
int helper_size_signed(struct __sk_buff *skb)
{
	__u8 buf[64];
	int n = skb->len - 14;

	if (n > 64)
		n = 64;
	if (bpf_skb_load_bytes(skb, 14, buf, n))
		return TC_ACT_OK;
	return buf[0];
}

char LICENSE[] SEC("license") = "GPL";
