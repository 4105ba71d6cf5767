// SPDX-License-Identifier: GPL-2.0
/*
 * An IPv4 route table in an LPM_TRIE.  The test preloads the same routes on both sides;
 * the program looks the destination up (longest prefix match), counts hits in the route's
 * value, writes the route's class into skb->mark and skb->tc_classid, and learns a /32
 * host route for every destination without a route.  A TTL of 1 deletes the host route
 * of the source again, exercising bpf_map_delete_elem on the trie.
 */
#include "common.h"

struct lpm_v4 {
	__u32 prefixlen;
	__be32 addr;
};

struct route {
	__u32 classid;
	__u32 nexthop;
	__u64 hits;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4);
	__type(value, struct route);
} routes SEC(".maps");

/* 0 lookups, 1 misses, 2 learned, 3 learn failures, 4 deletes, 5 delete result */
DEFINE_SLOTS(stats, 6);

SEC("tc")
int lpm_route(struct __sk_buff *skb)
{
	struct pkt p;

	if (parse_pkt(skb, &p) < 0 || !p.ip)
		return TC_ACT_OK;
	struct lpm_v4 key = { .prefixlen = 32, .addr = p.ip->daddr };

	slot_add(&stats, 0, 1);
	struct route *r = bpf_map_lookup_elem(&routes, &key);
	if (r) {
		__sync_fetch_and_add(&r->hits, 1);
		skb->mark = r->nexthop;
		skb->tc_classid = r->classid;
	} else {
		struct route host = { .classid = 0x10001, .nexthop = bpf_ntohl(key.addr),
				      .hits = 1 };
		long err;

		slot_add(&stats, 1, 1);
		err = bpf_map_update_elem(&routes, &key, &host, BPF_NOEXIST);
		slot_add(&stats, err ? 3 : 2, 1);
	}
	if (p.ip->ttl == 1) {
		struct lpm_v4 src = { .prefixlen = 32, .addr = p.ip->saddr };
		long err = bpf_map_delete_elem(&routes, &src);

		slot_add(&stats, 4, 1);
		slot_set(&stats, 5, (__u64)err);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
