// SPDX-License-Identifier: GPL-2.0
/* Rejected: an early return inside the critical section leaves the lock held. */
#include "students.h"

struct counter {
	struct bpf_spin_lock lock;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

SEC("tc")
int spin_lock_leak(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &zero);

	if (!c)
		return TC_ACT_OK;
	bpf_spin_lock(&c->lock);
	if (c->packets > 1000)
		return TC_ACT_SHOT;
	c->packets++;
	bpf_spin_unlock(&c->lock);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
