// SPDX-License-Identifier: GPL-2.0
/* Rejected: skb->sk may be NULL (no socket on ingress) and is dereferenced unchecked. */
#include "students.h"

SEC("tc")
int sk_no_null(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	return sk->family == 2 ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
