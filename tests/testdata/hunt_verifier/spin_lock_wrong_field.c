// SPDX-License-Identifier: GPL-2.0
/* Rejected: the lock is the second member of the value; the program passes the first. */
#include "students.h"

struct counter {
	__u64 packets;
	struct bpf_spin_lock lock;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

SEC("tc")
int spin_lock_wrong_field(struct __sk_buff *skb)
{
	__u32 key = skb->ifindex;
	struct counter *c = bpf_map_lookup_elem(&counters, &key);

	if (!c)
		return TC_ACT_OK;
	bpf_spin_lock((struct bpf_spin_lock *)&c->packets);
	c->packets++;
	bpf_spin_unlock(&c->lock);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
