// SPDX-License-Identifier: GPL-2.0
/* Accepted (as root): a static helper returns the looked-up map value pointer (as a long) to its
 * caller. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __attribute__((noinline)) long slot(__u32 i)
{
	return (long)bpf_map_lookup_elem(&stats, &i);
}

SEC("tc")
int subprog_ret_ptr(struct __sk_buff *skb)
{
	__u64 *v = (__u64 *)slot(skb->mark & 3);

	if (v)
		*v += 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
