// SPDX-License-Identifier: GPL-2.0
/*
 * Legacy packet loads: LD_ABS and LD_IND in byte, half-word and word sizes, through the
 * llvm.bpf.load.{byte,half,word} intrinsics (clang-19 has no __builtin for them). The
 * verifier requires the context in r6 and no bpf-to-bpf calls in the same program; the kernel
 * expands each load into a call of an internal helper when it rewrites the program.
 */
#include "common.h"

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6

SEC("tc")
int ldabs(struct __sk_buff *skb)
{
	/* LD_ABS: constant offsets. */
	if (load_half(skb, 12) != ETH_P_IP)
		return TC_ACT_OK;
	if (load_byte(skb, ETH_HLEN + 9) != IPPROTO_TCP)
		return TC_ACT_OK;
	__u32 saddr = load_word(skb, ETH_HLEN + 12);

	/* LD_IND: offsets computed at run time from the IPv4 header length. */
	__u64 ihl = (load_byte(skb, ETH_HLEN) & 0x0f) << 2;
	__u32 ports = load_word(skb, ETH_HLEN + ihl);
	__u16 dport = load_half(skb, ETH_HLEN + ihl + 2);
	__u8 flags = load_byte(skb, ETH_HLEN + ihl + 13);

	if (dport == 22 && (flags & 0x02) && saddr != 0x7f000001 && ports)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
