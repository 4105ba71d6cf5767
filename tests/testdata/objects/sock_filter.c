// SPDX-License-Identifier: GPL-2.0
/*
 * A SEC("socket") program (BPF_PROG_TYPE_SOCKET_FILTER).  BPF_PROG_TEST_RUN runs it on an
 * skb whose data starts at the network header (the MAC header is pushed back, zeroed, for
 * data_out).  The return value is the number of bytes to keep: UDP keeps the headers
 * only, TCP the whole packet, ICMP is dropped (0).  Uses LD_ABS relative to the network
 * header, bpf_skb_load_bytes, skb->protocol/len and counters in an ARRAY; no direct
 * packet access (not allowed for socket filters).
 */
#include "common.h"

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

DEFINE_SLOTS(out, 8);

SEC("socket")
int sock_filter(struct __sk_buff *skb)
{
	__u8 first = 0;

	slot_set(&out, 0, skb->len);
	slot_set(&out, 1, skb->protocol);
	slot_set(&out, 2, bpf_skb_load_bytes(skb, 0, &first, 1));
	slot_set(&out, 3, first);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return skb->len;
	__u64 proto = load_byte(skb, 9);
	__u64 tot = load_half(skb, 2);

	slot_set(&out, 4, proto << 16 | tot);
	slot_add(&out, 5, 1);
	switch (proto) {
	case IPPROTO_UDP: return 28;
	case IPPROTO_TCP: return 0xffff;
	case IPPROTO_ICMP: return 0;
	default: return 64;
	}
}

char LICENSE[] SEC("license") = "GPL";
