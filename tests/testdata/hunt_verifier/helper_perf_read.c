// SPDX-License-Identifier: GPL-2.0
/* Accepted by 6.18: bpf_perf_event_read (a hardware counter read per packet) is offered
 * to tc programs loaded with CAP_PERFMON. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} cycles SEC(".maps");

SEC("tc")
int helper_perf_read(struct __sk_buff *skb)
{
	skb->mark = bpf_perf_event_read(&cycles, BPF_F_CURRENT_CPU);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
