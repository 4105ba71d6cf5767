// SPDX-License-Identifier: GPL-2.0
/* A flow key with padding holes filled field by field (not memset) and passed to a map
 * lookup: the kernel lets root read uninitialised stack through a helper, so it loads. */
#include "students.h"

struct flow_key {
	__u8 proto;
	__u32 saddr;
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct flow_key);
	__type(value, __u64);
} flows SEC(".maps");

SEC("tc")
int stack_key_padding(struct __sk_buff *skb)
{
	struct flow_key key;
	__u64 *cnt;

	key.proto = skb->protocol & 0xff;
	key.saddr = skb->hash;
	key.dport = skb->mark & 0xffff;
	cnt = bpf_map_lookup_elem(&flows, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
