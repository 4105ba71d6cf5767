// SPDX-License-Identifier: GPL-2.0
/* A tail-call pipeline: parse -> l3 -> l4 -> account, each stage in its own program of a
 * PROG_ARRAY, state carried in skb->cb; a stage that loops back to parse until the 33-call
 * limit stops it; a tail call from inside a bpf-to-bpf subprogram; calls to an empty slot
 * and an index past max_entries that fall through. */
#include "hunt.h"


enum { S_PARSE, S_L3, S_L4, S_ACCOUNT, S_EMPTY, S_LOOP };

int parse(struct __sk_buff *skb);
int l3(struct __sk_buff *skb);
int l4(struct __sk_buff *skb);
int account(struct __sk_buff *skb);
int loop(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, int (void *));
} stages SEC(".maps") = {
	.values = {
		[S_PARSE] = (void *)&parse,
		[S_L3] = (void *)&l3,
		[S_L4] = (void *)&l4,
		[S_ACCOUNT] = (void *)&account,
		[S_LOOP] = (void *)&loop,
	},
};

static __noinline int jump(struct __sk_buff *skb, __u32 idx)
{
	bpf_tail_call(skb, &stages, idx);
	/* reached only when the slot is empty or the limit is hit */
	return -1;
}

SEC("tc")
int parse(struct __sk_buff *skb)
{
	skb->cb[0]++;
	add(0, 1);
	if (skb->cb[1] == 0)
		skb->cb[1] = skb->protocol == bpf_htons(ETH_P_IP) ? S_L3 :
			     skb->protocol == bpf_htons(ETH_P_IPV6) ? S_LOOP : S_EMPTY;
	if (skb->cb[1] == S_LOOP) {
		bpf_tail_call(skb, &stages, S_LOOP);
		put(1, skb->cb[0]);
		return TC_ACT_SHOT;
	}
	bpf_tail_call(skb, &stages, skb->cb[1]);
	put(2, skb->cb[0]);
	bpf_tail_call(skb, &stages, 100);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int l3(struct __sk_buff *skb)
{
	struct iphdr ip;

	skb->cb[0] += 0x100;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return jump(skb, S_EMPTY) + 10;
	skb->cb[2] = ip.protocol;
	return jump(skb, S_L4);
}

SEC("tc")
int l4(struct __sk_buff *skb)
{
	skb->cb[0] += 0x10000;
	if (skb->cb[2] == IPPROTO_UDP)
		return jump(skb, S_ACCOUNT);
	put(3, skb->cb[2]);
	return TC_ACT_PIPE;
}

SEC("tc")
int account(struct __sk_buff *skb)
{
	skb->cb[0] += 0x1000000;
	add(4, skb->len);
	skb->mark = skb->cb[0];
	return TC_ACT_OK;
}

SEC("tc")
int loop(struct __sk_buff *skb)
{
	skb->cb[3]++;
	add(5, 1);
	bpf_tail_call(skb, &stages, S_PARSE);
	put(6, skb->cb[3]);
	return TC_ACT_RECLASSIFY;
}
