// SPDX-License-Identifier: GPL-2.0
/*
 * The tail-call limit: a program that tail-calls itself through a one-slot PROG_ARRAY.
 * MAX_TAIL_CALL_CNT is 33, so the program runs 34 times per packet; the 34th call fails,
 * falls through to the next instruction, and the program returns its run count (cb[0]).
 * `runs` counts the runs over all packets.
 */
#include "common.h"

int tail_limit(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int (void *));
} self_calls SEC(".maps") = {
	.values = { [0] = (void *)&tail_limit },
};

DEFINE_SLOTS(runs, 1);

SEC("tc")
int tail_limit(struct __sk_buff *skb)
{
	slot_add(&runs, 0, 1);
	skb->cb[0] += 1;
	bpf_tail_call(skb, &self_calls, 0);
	return skb->cb[0];
}

char LICENSE[] SEC("license") = "GPL";
