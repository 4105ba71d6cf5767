// SPDX-License-Identifier: GPL-2.0
/* Rejected: the size is masked to 0..63, but bpf_skb_load_bytes does not take a size of
 * zero. */
#include "students.h"

SEC("tc")
int helper_size_zero(struct __sk_buff *skb)
{
	__u8 buf[64];

	if (bpf_skb_load_bytes(skb, 0, buf, skb->len & 63))
		return TC_ACT_OK;
	return buf[0];
}

char LICENSE[] SEC("license") = "GPL";
