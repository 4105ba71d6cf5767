// SPDX-License-Identifier: GPL-2.0
/*
 * LRU_HASH keyed by the IPv4 source address (a "last seen" table) and LRU_PERCPU_HASH keyed
 * by the L4 destination port.  Both stay far below capacity, so no eviction happens and the
 * contents are deterministic.  Every eighth packet of a source deletes its entry again.
 */
#include "common.h"

struct seen {
	__u64 packets;
	__u32 last_len;
	__u32 last_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct seen);
} by_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} by_dport SEC(".maps");

SEC("tc")
int lru_maps(struct __sk_buff *skb)
{
	struct pkt p;

	if (parse_pkt(skb, &p) < 0 || !p.ip)
		return TC_ACT_OK;
	__u32 src = p.ip->saddr;
	struct seen *s = bpf_map_lookup_elem(&by_src, &src);
	if (s) {
		s->packets++;
		s->last_len = skb->len;
		s->last_proto = p.ip->protocol;
		if ((s->packets & 7) == 0)
			bpf_map_delete_elem(&by_src, &src);
	} else {
		struct seen n = { .packets = 1, .last_len = skb->len,
				  .last_proto = p.ip->protocol };
		bpf_map_update_elem(&by_src, &src, &n, BPF_ANY);
	}
	if (p.ip->protocol == IPPROTO_TCP || p.ip->protocol == IPPROTO_UDP) {
		struct udphdr *uh = p.data + p.l4_off;

		if ((void *)(uh + 1) > p.end)
			return TC_ACT_OK;
		__u16 port = bpf_ntohs(uh->dest);
		__u64 *c = bpf_map_lookup_elem(&by_dport, &port);
		if (c) {
			*c += skb->len;
		} else {
			__u64 first = skb->len;

			bpf_map_update_elem(&by_dport, &port, &first, BPF_NOEXIST);
		}
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
