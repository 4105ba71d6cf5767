// SPDX-License-Identifier: GPL-2.0
/*
 * RINGBUF: UDP packets reserve a record, fill it from the packet and submit it; TCP packets
 * reserve and discard (the consumer must skip the record); everything else is copied with
 * bpf_ringbuf_output.  Oversized reservations fail and return NULL.  The test consumes the
 * ring after each packet and compares the records.
 */
#include "common.h"

struct event {
	__u32 kind;
	__u32 len;
	__u16 eth_proto;
	__u16 pad;
	__u32 mark;
	__u8 head[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

/* 0 submitted, 1 discarded, 2 output rc, 3 failed reservations */
DEFINE_SLOTS(stats, 4);

SEC("tc")
int ringbuf(struct __sk_buff *skb)
{
	struct pkt p;

	if (parse_pkt(skb, &p) < 0)
		return TC_ACT_OK;
	__u8 proto = p.ip ? p.ip->protocol : 0;

	if (proto == IPPROTO_UDP || proto == IPPROTO_TCP) {
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

		if (!e) {
			slot_add(&stats, 3, 1);
			return TC_ACT_OK;
		}
		e->kind = proto;
		e->len = skb->len;
		e->eth_proto = p.eth_proto;
		e->pad = 0;
		e->mark = skb->mark;
		if (bpf_skb_load_bytes(skb, 0, e->head, sizeof(e->head)) < 0)
			__builtin_memset(e->head, 0xee, sizeof(e->head));
		if (proto == IPPROTO_UDP) {
			bpf_ringbuf_submit(e, 0);
			slot_add(&stats, 0, 1);
		} else {
			bpf_ringbuf_discard(e, 0);
			slot_add(&stats, 1, 1);
		}
		/* Far larger than the ring: always fails. */
		void *big = bpf_ringbuf_reserve(&events, 8192, 0);
		if (big)
			bpf_ringbuf_discard(big, 0);
		else
			slot_add(&stats, 3, 1);
		return TC_ACT_OK;
	}
	struct event e = { .kind = 0x100 | proto, .len = skb->len, .eth_proto = p.eth_proto,
			   .mark = skb->mark };
	if (bpf_skb_load_bytes(skb, 0, e.head, sizeof(e.head)) < 0)
		__builtin_memset(e.head, 0xee, sizeof(e.head));
	slot_set(&stats, 2, bpf_ringbuf_output(&events, &e, sizeof(e), 0));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
