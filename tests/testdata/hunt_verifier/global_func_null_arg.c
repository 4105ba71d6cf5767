// SPDX-License-Identifier: GPL-2.0
/* Rejected: a global function dereferences its pointer argument without a NULL check
 * (callers may pass NULL to a global function). */
#include "students.h"

__attribute__((noinline)) int bump(__u32 *counter)
{
	*counter += 1;
	return 0;
}

SEC("tc")
int global_func_null_arg(struct __sk_buff *skb)
{
	__u32 n = skb->mark;

	bump(&n);
	skb->mark = n;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
