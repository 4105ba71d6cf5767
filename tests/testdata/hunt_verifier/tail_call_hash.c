// SPDX-License-Identifier: GPL-2.0
/* Rejected: the tail call goes through a HASH map instead of a PROG_ARRAY. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

SEC("tc")
int tail_call_hash(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
