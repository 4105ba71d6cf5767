// SPDX-License-Identifier: GPL-2.0
/* Rejected: a field of the record is written after it was submitted. */
#include "students.h"

struct event {
	__u32 len;
	__u32 mark;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tc")
int ringbuf_use_after_submit(struct __sk_buff *skb)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return TC_ACT_OK;
	e->len = skb->len;
	bpf_ringbuf_submit(e, 0);
	*(volatile __u32 *)&e->mark = skb->mark;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
