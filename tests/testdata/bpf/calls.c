// SPDX-License-Identifier: GPL-2.0
/*
 * Call coverage: bpf-to-bpf calls into static __noinline functions in .text (including a
 * nested call and one taking the context), helper calls (bpf_map_lookup_elem,
 * bpf_map_update_elem, bpf_skb_load_bytes, bpf_ktime_get_ns) and a global variable, which
 * libbpf turns into an ld_imm64 of a map value address (BPF_PSEUDO_MAP_VALUE).
 */
#include "common.h"

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	__u64 last_seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct flow_stats);
} flows SEC(".maps");

/* Lives in .bss: accessed through an ld_imm64 with src_reg = BPF_PSEUDO_MAP_VALUE. */
__u64 total_packets;

static __noinline __u32 mix(__u32 x, __u32 y)
{
	x ^= y * 0x9e3779b1;
	return (x << 7) | (x >> 25);
}

static __noinline __u32 flow_key(struct __sk_buff *skb)
{
	__u8 hdr[4] = {};

	/* Bytes 12..15 (ethertype + first IPv4/IPv6 bytes); zero if the packet is shorter. */
	if (bpf_skb_load_bytes(skb, 12, hdr, sizeof(hdr)) < 0)
		return 0;
	return mix(hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (__u32)hdr[3] << 24, skb->ifindex);
}

static __noinline int account(__u32 key, __u64 bytes, __u64 now)
{
	struct flow_stats *st = bpf_map_lookup_elem(&flows, &key);

	if (st) {
		st->packets += 1;
		st->bytes += bytes;
		st->last_seen_ns = now;
		return 0;
	}
	struct flow_stats fresh = { .packets = 1, .bytes = bytes, .last_seen_ns = now };
	return bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
}

SEC("tc")
int calls(struct __sk_buff *skb)
{
	__u32 key = flow_key(skb);
	__u64 now = bpf_ktime_get_ns();

	total_packets += 1;
	if (account(key, skb->len, now) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
