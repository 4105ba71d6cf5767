// SPDX-License-Identifier: GPL-2.0
/* Accepted: a tail call through a PROG_ARRAY with an index from the packet mark. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

SEC("tc")
int tail_call_ok(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp, skb->mark & 3);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
