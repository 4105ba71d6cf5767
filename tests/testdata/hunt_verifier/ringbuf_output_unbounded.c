// SPDX-License-Identifier: GPL-2.0
/* Rejected: bpf_ringbuf_output of a stack buffer with the packet length as size. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("tc")
int ringbuf_output_unbounded(struct __sk_buff *skb)
{
	__u8 buf[32] = {};

	bpf_ringbuf_output(&events, buf, skb->len, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
