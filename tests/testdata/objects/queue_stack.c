// SPDX-License-Identifier: GPL-2.0
/*
 * QUEUE and STACK maps (no key): every IPv4 packet pushes a record into both.  The queue
 * is small and pushed with BPF_EXIST, which overwrites the oldest element when it is full;
 * the stack is pushed with flags 0, which fails with -E2BIG when full.  UDP packets pop
 * from the queue, TCP packets pop from the stack, ICMP packets peek at both; every return
 * code and popped record is written into the "results" array.
 */
#include "common.h"

struct rec {
	__u32 saddr;
	__u16 len;
	__u8 proto;
	__u8 ttl;
};

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4);
	__type(value, struct rec);
} fifo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 3);
	__type(value, struct rec);
} lifo SEC(".maps");

/* 0 push fifo rc, 1 push lifo rc, 2 pop/peek rc A, 3 record A, 4 pop/peek rc B, 5 record B */
DEFINE_SLOTS(results, 6);

static __always_inline __u64 pack(const struct rec *r)
{
	return (__u64)r->saddr << 32 | (__u64)r->len << 16 | (__u64)r->proto << 8 | r->ttl;
}

SEC("tc")
int queue_stack(struct __sk_buff *skb)
{
	struct pkt p;
	struct rec r = {}, out = {};
	long rc;

	if (parse_pkt(skb, &p) < 0 || !p.ip)
		return TC_ACT_OK;
	r.saddr = bpf_ntohl(p.ip->saddr);
	r.len = skb->len;
	r.proto = p.ip->protocol;
	r.ttl = p.ip->ttl;

	slot_set(&results, 0, bpf_map_push_elem(&fifo, &r, BPF_EXIST));
	slot_set(&results, 1, bpf_map_push_elem(&lifo, &r, 0));
	switch (r.proto) {
	case IPPROTO_UDP:
		rc = bpf_map_pop_elem(&fifo, &out);
		slot_set(&results, 2, rc);
		slot_set(&results, 3, pack(&out));
		break;
	case IPPROTO_TCP:
		rc = bpf_map_pop_elem(&lifo, &out);
		slot_set(&results, 2, rc);
		slot_set(&results, 3, pack(&out));
		rc = bpf_map_pop_elem(&lifo, &out);
		slot_set(&results, 4, rc);
		slot_set(&results, 5, pack(&out));
		break;
	case IPPROTO_ICMP:
		rc = bpf_map_peek_elem(&fifo, &out);
		slot_set(&results, 2, rc);
		slot_set(&results, 3, pack(&out));
		rc = bpf_map_peek_elem(&lifo, &out);
		slot_set(&results, 4, rc);
		slot_set(&results, 5, pack(&out));
		break;
	default:
		return TC_ACT_UNSPEC;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
