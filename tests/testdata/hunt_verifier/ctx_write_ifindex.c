// SPDX-License-Identifier: GPL-2.0
/* Rejected: "redirect" by writing skb->ifindex (read-only; bpf_redirect does that). */
#include "students.h"

SEC("tc")
int ctx_write_ifindex(struct __sk_buff *skb)
{
	skb->ifindex = 2;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
