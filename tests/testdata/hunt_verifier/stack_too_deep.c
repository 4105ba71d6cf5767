// SPDX-License-Identifier: GPL-2.0
/* Rejected: two functions with 320-byte buffers each, one calling the other: each frame
 * fits in 512 bytes but together they do not. */
#include "students.h"

static __attribute__((noinline)) int inner(struct __sk_buff *skb)
{
	__u8 buf[320];

	if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)))
		return 0;
	return buf[0] + buf[319];
}

static __attribute__((noinline)) int outer(struct __sk_buff *skb)
{
	__u8 buf[320];

	if (bpf_skb_load_bytes(skb, 0, buf, sizeof(buf)))
		return 0;
	return buf[0] + buf[319] + inner(skb);
}

SEC("tc")
int stack_too_deep(struct __sk_buff *skb)
{
	return outer(skb) ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
