// SPDX-License-Identifier: GPL-2.0
/* Rejected: the IPv4 header (ihl * 4 bytes, 0..60) copied into a 60-byte buffer: ihl
 * may be 0, and bpf_skb_load_bytes does not take a size of zero. */
#include "students.h"

SEC("tc")
int helper_size_ihl(struct __sk_buff *skb)
{
	__u8 hdr[60];
	__u8 vihl;
	__u32 n;

	if (bpf_skb_load_bytes(skb, 14, &vihl, 1))
		return TC_ACT_OK;
	n = (vihl & 0xf) * 4;
	if (bpf_skb_load_bytes(skb, 14, hdr, n))
		return TC_ACT_OK;
	return hdr[9];
}

char LICENSE[] SEC("license") = "GPL";
