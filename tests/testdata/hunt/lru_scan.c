// SPDX-License-Identifier: GPL-2.0
/* A connection table with a periodic sweep: an LRU_HASH of 16 flows is filled, a
 * bpf_for_each_map_elem sweep reads every entry (counting old ones and deleting expired
 * ones) -- an iteration must not count as a use -- then new flows arrive and push old
 * ones out.  Which keys survive shows whether the sweep touched the reference bits. */
#include "hunt.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} flows SEC(".maps");

struct sweep {
	__u64 now;
	__u32 seen;
	__u32 expired;
};

static long sweep_cb(void *map, __u32 *key, __u64 *stamp, void *ctx)
{
	struct sweep *s = ctx;

	s->seen++;
	if (*stamp + 3 < s->now) {
		bpf_map_delete_elem(map, key);
		s->expired++;
	}
	return 0;
}

__u64 clock;

SEC("tc")
int lru_scan(struct __sk_buff *skb)
{
	struct sweep s = {};
	__u32 base = skb->len * 100, i;
	__u64 now = ++clock;

	for (i = 0; i < 12; i++) {
		__u32 k = base + i;

		bpf_map_update_elem(&flows, &k, &now, BPF_ANY);
	}
	if (skb->len & 1) {
		s.now = now;
		put(0, bpf_for_each_map_elem(&flows, sweep_cb, &s, 0));
		put(1, s.seen);
		put(2, s.expired);
	}
	for (i = 0; i < 6; i++) {
		__u32 k = base + 50 + i;

		bpf_map_update_elem(&flows, &k, &now, BPF_ANY);
	}
	return TC_ACT_OK;
}
