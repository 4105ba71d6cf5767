// SPDX-License-Identifier: GPL-2.0
/* Rejected: a bpf_for_each_map_elem callback returning -1 to stop (it must return 0 or
 * 1). */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} flows SEC(".maps");

static long sum_one(void *map, __u32 *key, __u64 *val, __u64 *total)
{
	*total += *val;
	return *total > 1000 ? -1 : 0;
}

SEC("tc")
int for_each_bad_ret(struct __sk_buff *skb)
{
	__u64 total = 0;

	bpf_for_each_map_elem(&flows, sum_one, &total, 0);
	skb->mark = total;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
