// SPDX-License-Identifier: GPL-2.0
/*
 * BTF-defined maps: array, hash with a struct key, LRU hash with map_flags, per-CPU array,
 * LPM trie, ring buffer, a pinned map, a map given by key_size/value_size, a bloom filter
 * with map_extra, a NUMA node, a prog array with initial values, and array-of-maps /
 * hash-of-maps with an __array(values, struct inner) definition.
 */
#include "common.h"

struct flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
};

struct lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

typedef struct flow_stats flow_stats_t;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, flow_stats_t);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u64);
	__type(value, struct flow_stats);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct flow_stats);
} percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4);
	__type(value, __u32);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__uint(key_size, 4);
	__uint(value_size, 12);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(numa_node, 0);
} pinned_sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 100);
	__uint(map_extra, 3);	/* number of hash functions */
	__type(value, __u32);
} bloom SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer_array SEC(".maps") = {
	.values = { &inner_a, [3] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 32);
		__type(key, __u16);
		__type(value, struct flow_key);
	});
} outer_hash SEC(".maps");

int tail_target(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} jumps SEC(".maps") = {
	.values = { [1] = (void *)&tail_target },
};

SEC("tc")
int tail_target(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int maps_prog(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *cnt = bpf_map_lookup_elem(&counters, &key);
	struct flow_key fk = { .saddr = skb->remote_ip4, .proto = 6 };
	flow_stats_t *st = bpf_map_lookup_elem(&flows, &fk);
	void *inner = bpf_map_lookup_elem(&outer_array, &key);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	if (st)
		st->packets++;
	if (inner)
		bpf_map_lookup_elem(inner, &key);
	bpf_map_lookup_elem(&lru, &key);
	bpf_map_lookup_elem(&percpu, &key);
	bpf_map_lookup_elem(&routes, &key);
	bpf_map_lookup_elem(&pinned_sized, &key);
	bpf_map_lookup_elem(&outer_hash, &key);
	bpf_map_push_elem(&bloom, &key, 0);
	bpf_ringbuf_output(&events, &key, sizeof(key), 0);
	bpf_tail_call(skb, &jumps, 1);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
