// SPDX-License-Identifier: GPL-2.0
/* Accepted: bpf_get_current_comm in a tc program: the kernel offers it to every program
 * type loaded with CAP_PERFMON (bpf_base_func_proto), though "current" is any task here. */
#include "students.h"

SEC("tc")
int helper_current_comm(struct __sk_buff *skb)
{
	char comm[16];

	if (bpf_get_current_comm(comm, sizeof(comm)))
		return TC_ACT_OK;
	return comm[0] == 's' ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
