// SPDX-License-Identifier: GPL-2.0
/* Returns a map value pointer as the verdict (forgot to dereference). */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s32);
} verdict SEC(".maps");

SEC("tc")
int ret_pointer(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__s32 *v = bpf_map_lookup_elem(&verdict, &zero);

	if (!v)
		return TC_ACT_OK;
	return (long)v;
}

char LICENSE[] SEC("license") = "GPL";
