// SPDX-License-Identifier: GPL-2.0
/* Rejected: bpf_override_return (a kprobe error-injection helper) called from tc with the
 * skb as its pt_regs: not available to SCHED_CLS. */
#include "students.h"

SEC("tc")
int helper_tracing_only(struct __sk_buff *skb)
{
	if (skb->mark == 0xdead)
		bpf_override_return((void *)skb, -1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
