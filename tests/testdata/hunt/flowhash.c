// SPDX-License-Identifier: GPL-2.0
/* Flow-consistent load balancing: bpf_get_hash_recalc picks a backend, so every packet of
 * a flow must get the same hash (whatever its TTL, IP id, length or payload), both
 * directions of a flow too (the kernel orders addresses and ports before hashing), and an
 * IPv6 flow label replaces the ports.  The kernel salts the hash, so the program keeps the
 * raw hashes in a map the test does not compare and records, per packet, which earlier
 * packets had the same hash. */
#include "hunt.h"

#define N 32

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, N);
	__type(key, __u32);
	__type(value, __u32);
} seen SEC(".maps");

__u32 count;

SEC("tc")
int flowhash(struct __sk_buff *skb)
{
	__u32 h = bpf_get_hash_recalc(skb), n = count, i;
	__u32 *slot;
	__u64 same = 0;

	if (n >= N)
		return TC_ACT_SHOT;
	for (i = 0; i < N; i++) {
		__u32 k = i, *old;

		if (i >= n)
			break;
		old = bpf_map_lookup_elem(&seen, &k);
		if (old && *old == h)
			same |= 1ULL << i;
	}
	slot = bpf_map_lookup_elem(&seen, &n);
	if (slot)
		*slot = h;
	put(n, same);
	count = n + 1;
	return h ? TC_ACT_OK : TC_ACT_SHOT;
}
