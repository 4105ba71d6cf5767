// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_spin_lock / bpf_spin_unlock around a read-modify-write of a HASH value that holds a
 * struct bpf_spin_lock (BTF required), as a per-source token bucket refilled by packet
 * count rather than time.  The lock word itself is 0 whenever userspace reads the map.
 */
#include "common.h"

struct bucket {
	struct bpf_spin_lock lock;
	__u32 tokens;
	__u64 passed;
	__u64 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, struct bucket);
} buckets SEC(".maps");

SEC("tc")
int spin_lock(struct __sk_buff *skb)
{
	struct pkt p;

	if (parse_pkt(skb, &p) < 0 || !p.ip)
		return TC_ACT_OK;
	__u32 src = p.ip->saddr;
	struct bucket *b = bpf_map_lookup_elem(&buckets, &src);

	if (!b) {
		struct bucket fresh = { .tokens = 3 };

		bpf_map_update_elem(&buckets, &src, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&buckets, &src);
		if (!b)
			return TC_ACT_OK;
	}
	int drop;

	bpf_spin_lock(&b->lock);
	if (b->tokens) {
		b->tokens--;
		b->passed++;
		drop = 0;
	} else {
		b->dropped++;
		if ((b->dropped & 1) == 0)
			b->tokens = 2;
		drop = 1;
	}
	bpf_spin_unlock(&b->lock);
	return drop ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
