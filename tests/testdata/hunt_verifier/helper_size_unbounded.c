// SPDX-License-Identifier: GPL-2.0
/* Rejected: bpf_skb_load_bytes into a 64-byte buffer with the packet length as size. */
#include "students.h"

SEC("tc")
int helper_size_unbounded(struct __sk_buff *skb)
{
	__u8 buf[64];

	if (bpf_skb_load_bytes(skb, 0, buf, skb->len))
		return TC_ACT_OK;
	return buf[0];
}

char LICENSE[] SEC("license") = "GPL";
