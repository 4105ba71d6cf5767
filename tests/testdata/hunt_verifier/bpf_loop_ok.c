// SPDX-License-Identifier: GPL-2.0
/* Accepted: bpf_loop with a context struct, the callback stops with 1. */
#include "students.h"

struct walk {
	__u32 limit;
	__u32 count;
};

static long step(__u32 i, void *arg)
{
	struct walk *w = arg;

	w->count += i;
	return w->count > w->limit ? 1 : 0;
}

SEC("tc")
int bpf_loop_ok(struct __sk_buff *skb)
{
	struct walk w = { .limit = skb->len, .count = 0 };

	bpf_loop(16, step, &w, 0);
	skb->mark = w.count;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
