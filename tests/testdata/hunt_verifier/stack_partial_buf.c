// SPDX-License-Identifier: GPL-2.0
/* A 16-byte buffer of which only the first 6 bytes are written, passed whole to
 * bpf_skb_store_bytes (root may read uninitialised stack through a helper). */
#include "students.h"

SEC("tc")
int stack_partial_buf(struct __sk_buff *skb)
{
	__u8 buf[16];

	__builtin_memset(buf, 0xff, 6);
	bpf_skb_store_bytes(skb, 0, buf, sizeof(buf), 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
