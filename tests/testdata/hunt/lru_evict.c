// SPDX-License-Identifier: GPL-2.0
/* A connection table under pressure: LRU_HASH (common LRU) and LRU_HASH with
 * BPF_F_NO_COMMON_LRU, both far too small for the flows one packet inserts.  The packet's
 * UDP source port seeds a burst of keys; some keys are looked up again between inserts (the
 * reference bit), and which keys survive is what the map comparison sees.  An
 * LRU_PERCPU_HASH counts per burst. */
#include "hunt.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} conn SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u32);
	__type(value, __u64);
} conn_pc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} bursts SEC(".maps");

SEC("tc")
int lru_evict(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct udphdr *udp = data + ETH_HLEN + sizeof(struct iphdr);
	__u32 base, n, i, hits = 0;
	__u64 one = 1;

	if ((void *)(udp + 1) > end)
		return TC_ACT_UNSPEC;
	base = bpf_ntohs(udp->source);
	n = bpf_ntohs(udp->dest) & 31;
	for (i = 0; i < 32; i++) {
		__u32 key = base + i;
		__u64 val = ((__u64)base << 32) | i;
		__u32 old = base + i / 2;

		if (i >= n)
			break;
		put(i, bpf_map_update_elem(&conn, &key, &val, BPF_NOEXIST));
		bpf_map_update_elem(&conn_pc, &key, &val, BPF_ANY);
		if ((i & 3) == 3) {
			/* touch an older key so that it is referenced */
			if (bpf_map_lookup_elem(&conn, &old))
				hits++;
			if (bpf_map_lookup_elem(&conn_pc, &old))
				hits += 0x100;
		}
	}
	put(40, hits);
	{
		__u32 k = base & 7;
		__u64 *c = bpf_map_lookup_elem(&bursts, &k);

		if (c)
			*c += n;
		else
			bpf_map_update_elem(&bursts, &k, &one, BPF_ANY);
	}
	{
		__u32 first = base;

		put(41, bpf_map_delete_elem(&conn, &first));
		put(42, bpf_map_delete_elem(&conn, &first));
	}
	return TC_ACT_OK;
}
