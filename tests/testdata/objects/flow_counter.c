// SPDX-License-Identifier: GPL-2.0
/*
 * Per-flow accounting: a HASH map keyed by the IPv4 5-tuple whose packet and byte counters
 * are bumped with __sync_fetch_and_add (BPF_ATOMIC add), first packets inserted with
 * BPF_NOEXIST; non-IPv4 frames are counted in an ARRAY by a small class index.
 */
#include "common.h"

struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_val {
	__u64 packets;
	__u64 bytes;
	__u32 first_len;
	__u32 tcp_flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

/* 0: not IPv4, 1: IPv4 without ports, 2: truncated L4 */
DEFINE_SLOTS(other, 4);

SEC("tc")
int flow_counter(struct __sk_buff *skb)
{
	struct flow_key key = {};
	struct pkt p;
	__u32 flags = 0;

	if (parse_pkt(skb, &p) < 0 || !p.ip) {
		slot_add(&other, 0, 1);
		return TC_ACT_OK;
	}
	key.saddr = p.ip->saddr;
	key.daddr = p.ip->daddr;
	key.proto = p.ip->protocol;
	if (key.proto == IPPROTO_TCP || key.proto == IPPROTO_UDP) {
		struct udphdr *uh = p.data + p.l4_off;

		if ((void *)(uh + 1) > p.end) {
			slot_add(&other, 2, 1);
			return TC_ACT_OK;
		}
		key.sport = uh->source;
		key.dport = uh->dest;
		if (key.proto == IPPROTO_TCP) {
			__u8 *fl = p.data + p.l4_off + 13;

			if ((void *)(fl + 1) <= p.end)
				flags = *fl;
		}
	} else {
		slot_add(&other, 1, 1);
	}

	struct flow_val *v = bpf_map_lookup_elem(&flows, &key);

	if (v) {
		__sync_fetch_and_add(&v->packets, 1);
		__sync_fetch_and_add(&v->bytes, skb->len);
		__sync_fetch_and_or(&v->tcp_flags, flags);
		return TC_ACT_OK;
	}
	struct flow_val fresh = {
		.packets = 1, .bytes = skb->len, .first_len = skb->len, .tcp_flags = flags,
	};
	bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
