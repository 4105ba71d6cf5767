// SPDX-License-Identifier: GPL-2.0
/* Rejected by the verifier: a global array indexed by `x % 3` computed in 32 bits.  The
 * verifier does not track ranges through BPF_MOD and marks the whole 64-bit register
 * unknown (no zero-extension), so the pointer arithmetic has an unbounded minimum. */
#include "hunt.h"

__u64 buckets[3];

SEC("tc")
int mod_index_bad(struct __sk_buff *skb)
{
	__u32 who = skb->mark;

	__sync_fetch_and_add(&buckets[who % 3], skb->len);
	return TC_ACT_OK;
}
