// SPDX-License-Identifier: GPL-2.0
/* Rejected: a bpf_loop callback that returns 2 ("stop") instead of 1. */
#include "students.h"

struct walk {
	struct __sk_buff *skb;
	__u32 count;
};

static long step(__u32 i, void *arg)
{
	struct walk *w = arg;

	w->count += i;
	if (w->count > 100)
		return 2;
	return 0;
}

SEC("tc")
int bpf_loop_bad_ret(struct __sk_buff *skb)
{
	struct walk w = { .skb = skb, .count = 0 };

	bpf_loop(16, step, &w, 0);
	skb->mark = w.count;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
