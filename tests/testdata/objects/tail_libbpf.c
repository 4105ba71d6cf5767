// SPDX-License-Identifier: GPL-2.0
/*
 * libbpf-style tail calls: a dispatcher SEC("tc") program jumps through a BTF-defined
 * PROG_ARRAY initialised with `.values = { [IDX] = &prog }` (libbpf fills it at load).
 * Index = IPv4 protocol class; an empty slot (ICMP) makes bpf_tail_call fall through, and
 * the dispatcher then counts a miss.  The targets write what they see into maps and the
 * packet's mark, and the TCP target chains one more tail call to the common tail.
 */
#include "common.h"

/* 0 dispatched, 1 fell through, 2 udp, 3 tcp, 4 tail (chained), 5 last mark */
DEFINE_SLOTS(hits, 6);

enum { PROG_UDP = 0, PROG_TCP = 1, PROG_ICMP = 2, PROG_TAIL = 3 };

static __always_inline __u32 classify(struct __sk_buff *skb)
{
	struct pkt p;

	if (parse_pkt(skb, &p) < 0 || !p.ip)
		return 7;
	switch (p.ip->protocol) {
	case IPPROTO_UDP: return PROG_UDP;
	case IPPROTO_TCP: return PROG_TCP;
	case IPPROTO_ICMP: return PROG_ICMP;
	default: return 6;
	}
}

int tail_common(struct __sk_buff *skb);
int tail_udp(struct __sk_buff *skb);
int tail_tcp(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, int (void *));
} jump_table SEC(".maps") = {
	.values = {
		[PROG_UDP] = (void *)&tail_udp,
		[PROG_TCP] = (void *)&tail_tcp,
		[PROG_TAIL] = (void *)&tail_common,
	},
};

SEC("tc")
int tail_common(struct __sk_buff *skb)
{
	slot_add(&hits, 4, 1);
	skb->mark |= 0x100;
	slot_set(&hits, 5, skb->mark);
	return TC_ACT_OK;
}


SEC("tc")
int tail_udp(struct __sk_buff *skb)
{
	slot_add(&hits, 2, 1);
	skb->mark = 0x11;
	slot_set(&hits, 5, skb->mark);
	return TC_ACT_PIPE;
}

SEC("tc")
int tail_tcp(struct __sk_buff *skb)
{
	slot_add(&hits, 3, 1);
	skb->mark = 0x6;
	bpf_tail_call(skb, &jump_table, PROG_TAIL);
	return TC_ACT_SHOT;
}

SEC("tc")
int dispatcher(struct __sk_buff *skb)
{
	__u32 idx = classify(skb);

	slot_add(&hits, 0, 1);
	bpf_tail_call(skb, &jump_table, idx);
	slot_add(&hits, 1, 1);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
