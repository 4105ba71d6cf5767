// SPDX-License-Identifier: GPL-2.0
/*
 * Legacy packet access: LD_ABS loads of the ethertype, the IPv4 header's first word, TTL
 * and protocol, and LD_IND loads of the L4 ports indexed by the IHL (clang 19 emits them
 * for llvm.bpf.load.byte/half/word).  A load past the packet's end returns 0 from the
 * whole program, so short packets end early with retval 0 and no map update.  No
 * subprograms: the verifier refuses LD_ABS in programs that have them.
 */
#include "common.h"

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

DEFINE_SLOTS(out, 8);

SEC("tc")
int ld_abs(struct __sk_buff *skb)
{
	__u64 proto = load_half(skb, 12);

	slot_set(&out, 0, proto);
	if (proto != ETH_P_IP)
		return 1;
	__u64 w0 = load_word(skb, ETH_HLEN);
	__u64 ihl = (w0 >> 24) & 0xf;
	__u64 ttl = load_byte(skb, ETH_HLEN + 8);
	__u64 l4 = load_byte(skb, ETH_HLEN + 9);

	slot_set(&out, 1, w0);
	slot_set(&out, 2, ttl << 8 | l4);
	if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP)
		return 2;
	__u64 off = ihl * 4;
	__u64 ports = load_word(skb, off + ETH_HLEN) ;
	slot_set(&out, 3, ports);
	__u64 b = load_byte(skb, off + ETH_HLEN + 13);  /* TCP flags / UDP checksum low byte */
	slot_set(&out, 4, b);
	slot_add(&out, 5, 1);
	return 3;
}

char LICENSE[] SEC("license") = "GPL";
