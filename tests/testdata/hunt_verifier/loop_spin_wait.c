// SPDX-License-Identifier: GPL-2.0
/* Rejected: waits for a mark that nothing inside the loop can change (an infinite loop
 * to the verifier: the same state comes back). */
#include "students.h"

SEC("tc")
int loop_spin_wait(struct __sk_buff *skb)
{
	volatile __u32 *mark = &skb->mark;

	while (*mark != 42)
		;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
