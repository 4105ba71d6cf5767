// SPDX-License-Identifier: MIT
/* Rejected: bpf_printk (bpf_trace_printk) is GPL-only and the licence is MIT. */
#include "students.h"

SEC("tc")
int helper_gpl_only(struct __sk_buff *skb)
{
	bpf_printk("len %u", skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "MIT";
