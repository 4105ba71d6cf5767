// SPDX-License-Identifier: GPL-2.0
/* Rejected: locks the first counter and unlocks the second (copy-paste of the pointer). */
#include "students.h"

struct counter {
	struct bpf_spin_lock lock;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

SEC("tc")
int spin_unlock_other(struct __sk_buff *skb)
{
	__u32 zero = 0, one = 1;
	struct counter *a = bpf_map_lookup_elem(&counters, &zero);
	struct counter *b = bpf_map_lookup_elem(&counters, &one);

	if (!a || !b)
		return TC_ACT_OK;
	bpf_spin_lock(&a->lock);
	a->packets++;
	bpf_spin_unlock(&b->lock);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
