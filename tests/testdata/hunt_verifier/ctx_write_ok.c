// SPDX-License-Identifier: GPL-2.0
/* Rejected: writes only fields a tc program may write (mark, priority, tc_index,
 * tc_classid, queue_mapping, tstamp, cb[]), but clang merges the adjacent mark and
 * priority stores into one 8-byte store, which the context does not allow. */
#include "students.h"

SEC("tc")
int ctx_write_ok(struct __sk_buff *skb)
{
	skb->mark = 1;
	skb->priority = 2;
	skb->tc_index = 3;
	skb->tc_classid = 0x10001;
	skb->queue_mapping = 0;
	skb->tstamp = 0;
	skb->cb[4] = skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
