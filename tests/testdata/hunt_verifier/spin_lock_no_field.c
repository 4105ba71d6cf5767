// SPDX-License-Identifier: GPL-2.0
/* Rejected: the value has no struct bpf_spin_lock; the program locks its first bytes. */
#include "students.h"

struct counter {
	__u32 word;
	__u32 pad;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} counters SEC(".maps");

SEC("tc")
int spin_lock_no_field(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct counter *c = bpf_map_lookup_elem(&counters, &zero);

	if (!c)
		return TC_ACT_OK;
	bpf_spin_lock((struct bpf_spin_lock *)&c->word);
	c->packets++;
	bpf_spin_unlock((struct bpf_spin_lock *)&c->word);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
