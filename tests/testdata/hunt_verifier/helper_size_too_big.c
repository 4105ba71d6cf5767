// SPDX-License-Identifier: GPL-2.0
/* Rejected: the size is bounded (1..128) but the stack buffer holds only 64 bytes. */
#include "students.h"

SEC("tc")
int helper_size_too_big(struct __sk_buff *skb)
{
	__u8 buf[64];
	__u32 n = (skb->len & 127) + 1;

	if (bpf_skb_load_bytes(skb, 0, buf, n))
		return TC_ACT_OK;
	return buf[0];
}

char LICENSE[] SEC("license") = "GPL";
