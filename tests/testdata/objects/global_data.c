// SPDX-License-Identifier: GPL-2.0
/*
 * Global data: a `const volatile` configuration in .rodata (frozen, read-only to the
 * program), initialised counters and a lookup table in .data, zeroed counters and a
 * scratch struct in .bss.  libbpf turns each access into an ld_imm64 of a map value
 * address (BPF_PSEUDO_MAP_VALUE); the test compares the three data maps like any other.
 */
#include "common.h"

const volatile __u32 cfg_min_len = 60;
const volatile __u32 cfg_mark = 0xcafe;
const volatile __u8 cfg_weights[4] = { 1, 2, 3, 5 };

__u64 data_total = 1000;           /* .data: starts at 1000 */
__u32 data_by_len[4] = { 7, 7, 7, 7 };

__u64 bss_packets;                 /* .bss */
__u64 bss_short;
__u64 bss_weighted;
struct {
	__u32 last_len;
	__u16 last_proto;
	__u8 last_ttl;
	__u8 seen_ip;
} bss_last;

SEC("tc")
int global_data(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u32 bucket = len < 64 ? 0 : len < 128 ? 1 : len < 512 ? 2 : 3;

	bss_packets++;
	data_total += len;
	data_by_len[bucket] += 1;
	bss_weighted += cfg_weights[bucket];
	bss_last.last_len = len;
	bss_last.last_proto = bpf_ntohs(skb->protocol);

	struct pkt p;
	if (parse_pkt(skb, &p) == 0 && p.ip) {
		bss_last.last_ttl = p.ip->ttl;
		bss_last.seen_ip = 1;
	}
	if (len < cfg_min_len) {
		bss_short++;
		skb->mark = cfg_mark;
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
