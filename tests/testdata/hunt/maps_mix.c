// SPDX-License-Identifier: GPL-2.0
/* Map plumbing of a policy engine: per-tenant inner ARRAYs behind an ARRAY_OF_MAPS and a
 * HASH_OF_MAPS (looked up by the VLAN-less destination octet), inner updates, absent
 * slots; a PERCPU_ARRAY read on every CPU with bpf_map_lookup_percpu_elem; a PERCPU_HASH
 * and two small HASHes (preallocated and BPF_F_NO_PREALLOC) filled past max_entries, with
 * updates of existing keys of a full map; ARRAY update flags; a QUEUE filled, overwritten
 * with BPF_EXIST, peeked and popped. */
#include "hunt.h"

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner tenant_a SEC(".maps"), tenant_b SEC(".maps"), tenant_c SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} by_index SEC(".maps") = { .values = { [0] = &tenant_a, [2] = &tenant_b } };

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} by_key SEC(".maps") = { .values = { [1] = &tenant_c, [3] = &tenant_a } };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u32);
} small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 3);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32);
} small_dyn SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 3);
	__type(value, __u32);
} q SEC(".maps");

SEC("tc")
int maps_mix(struct __sk_buff *skb)
{
	__u32 k = skb->len & 3, key, val, i;
	__u64 *v, one = 1;
	void *inner;

	inner = bpf_map_lookup_elem(&by_index, &k);
	put(0, inner != 0);
	if (inner) {
		__u32 slot = skb->len % 5;

		v = bpf_map_lookup_elem(inner, &slot);
		put(1, v ? *v : 0xdead);
		if (v)
			*v += skb->len;
		put(2, bpf_map_update_elem(inner, &slot, &one, BPF_NOEXIST));
	}
	inner = bpf_map_lookup_elem(&by_key, &k);
	put(3, inner != 0);
	if (inner) {
		__u32 slot = 1;

		put(4, bpf_map_update_elem(inner, &slot, &one, BPF_ANY));
	}
	k = 9;
	put(5, bpf_map_lookup_elem(&by_index, &k) != 0);

	k = 0;
	v = bpf_map_lookup_elem(&pcpu, &k);
	if (v)
		*v += skb->len;
	for (i = 0; i < 4; i++) {
		__u64 *p = bpf_map_lookup_percpu_elem(&pcpu, &k, i);

		put(6 + i, p ? *p + 1 : 0);
	}
	put(10, bpf_map_lookup_percpu_elem(&pcpu, &k, 0xffffffff) != 0);

	for (i = 0; i < 5; i++) {
		key = skb->len + i;
		val = i;
		put(11 + i, bpf_map_update_elem(&small, &key, &val, BPF_NOEXIST));
		put(16 + i, bpf_map_update_elem(&small_dyn, &key, &val, BPF_ANY));
		put(21 + i, bpf_map_update_elem(&pcpu_hash, &key, &val, BPF_ANY));
	}
	key = skb->len;
	val = 77;
	put(26, bpf_map_update_elem(&small, &key, &val, BPF_EXIST));
	put(27, bpf_map_update_elem(&small_dyn, &key, &val, BPF_ANY));
	put(28, bpf_map_delete_elem(&small, &key));
	key = skb->len + 4;
	put(29, bpf_map_update_elem(&small, &key, &val, BPF_ANY));

	k = 1;
	put(30, bpf_map_update_elem(&arr, &k, &val, BPF_NOEXIST));
	put(31, bpf_map_update_elem(&arr, &k, &val, BPF_EXIST));
	put(32, bpf_map_update_elem(&arr, &k, &val, BPF_F_LOCK));
	put(33, bpf_map_update_elem(&arr, &k, &val, 7));
	k = 2;
	put(34, bpf_map_update_elem(&arr, &k, &val, BPF_ANY));
	put(35, bpf_map_delete_elem(&arr, &k));

	for (i = 0; i < 4; i++) {
		val = skb->len * 10 + i;
		put(36 + i, bpf_map_push_elem(&q, &val, 0));
	}
	val = 1;
	put(40, bpf_map_push_elem(&q, &val, BPF_EXIST));
	put(41, bpf_map_push_elem(&q, &val, 5));
	val = 0;
	put(42, bpf_map_peek_elem(&q, &val));
	put(43, val);
	put(44, bpf_map_pop_elem(&q, &val));
	put(45, val);
	return TC_ACT_OK;
}
