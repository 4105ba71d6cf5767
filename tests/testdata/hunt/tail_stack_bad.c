// SPDX-License-Identifier: GPL-2.0
/* Rejected by the verifier: a subprogram that tail-calls, called from a frame holding a
 * 300-byte buffer (bpf2bpf calls mixed with tail calls limit the callers' stack to 256
 * bytes). */
#include "hunt.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} jt SEC(".maps");

static __noinline int jump(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jt, 0);
	return 1;
}

SEC("tc")
int tail_stack_bad(struct __sk_buff *skb)
{
	volatile __u8 buf[300];
	int i;

	for (i = 0; i < 300; i += 50)
		buf[i] = skb->len + i;
	return jump(skb) + buf[skb->len & 255];
}
