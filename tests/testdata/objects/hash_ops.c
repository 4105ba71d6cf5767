// SPDX-License-Identifier: GPL-2.0
/*
 * Map-update semantics and error codes: a small HASH (8 entries) is filled with
 * BPF_NOEXIST (then -EEXIST on a repeat), updated with BPF_EXIST (-ENOENT for a missing
 * key), overflowed (-E2BIG once full), and entries are deleted (-ENOENT for a missing
 * key); an ARRAY rejects BPF_NOEXIST (-EEXIST), out-of-range indexes (-E2BIG) and deletes
 * (-EINVAL); bad flags give -EINVAL.  Keys come from the packet; every return code is
 * recorded.
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u16);
	__type(value, __u32);
} small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} arr SEC(".maps");

DEFINE_SLOTS(rc, 12);

SEC("tc")
int hash_ops(struct __sk_buff *skb)
{
	__u16 key = skb->len & 0x1f;
	__u32 val = skb->len;
	__u32 idx = skb->len & 7;

	slot_set(&rc, 0, bpf_map_update_elem(&small, &key, &val, BPF_NOEXIST));
	val += 1;
	slot_set(&rc, 1, bpf_map_update_elem(&small, &key, &val, BPF_NOEXIST));
	slot_set(&rc, 2, bpf_map_update_elem(&small, &key, &val, BPF_EXIST));
	__u16 other = key ^ 0x20;
	slot_set(&rc, 3, bpf_map_update_elem(&small, &other, &val, BPF_EXIST));
	slot_set(&rc, 4, bpf_map_update_elem(&small, &key, &val, 7));
	if (skb->len & 0x40)
		slot_set(&rc, 5, bpf_map_delete_elem(&small, &key));
	slot_set(&rc, 6, bpf_map_delete_elem(&small, &other));
	__u32 *v = bpf_map_lookup_elem(&small, &key);
	slot_set(&rc, 7, v ? *v : 0xdead);

	slot_set(&rc, 8, bpf_map_update_elem(&arr, &idx, &val, BPF_ANY));
	slot_set(&rc, 9, bpf_map_update_elem(&arr, &idx, &val, BPF_NOEXIST));
	slot_set(&rc, 10, bpf_map_update_elem(&arr, &idx, &val, BPF_EXIST));
	slot_set(&rc, 11, bpf_map_delete_elem(&arr, &idx));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
