// SPDX-License-Identifier: GPL-2.0
/* A flow sampler that streams variable-size records: bpf_ringbuf_reserve of sizes that are
 * not multiples of 8, submit with BPF_RB_NO_WAKEUP/BPF_RB_FORCE_WAKEUP, discard, and
 * bpf_ringbuf_output of the packet head; the ring (one page) is filled until a reservation
 * fails; bpf_ringbuf_query of the available data, ring size and positions. */
#include "hunt.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ring SEC(".maps");

struct rec {
	__u32 len;
	__u16 proto;
	__u8 head[18];
};

SEC("tc")
int ringbuf_dyn(struct __sk_buff *skb)
{
	struct rec *r;
	__u8 head[32] = {};
	__u32 i, ok = 0, fails = 0;

	put(0, bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA));
	put(1, bpf_ringbuf_query(&ring, BPF_RB_RING_SIZE));
	put(2, bpf_ringbuf_query(&ring, BPF_RB_CONS_POS));
	put(3, bpf_ringbuf_query(&ring, BPF_RB_PROD_POS));
	put(4, bpf_ringbuf_query(&ring, 77));

	r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (r) {
		r->len = skb->len;
		r->proto = skb->protocol;
		bpf_skb_load_bytes(skb, 0, r->head, skb->len < 18 ? 14 : 18);
		bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	}
	put(5, bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA));
	r = bpf_ringbuf_reserve(&ring, sizeof(*r), 0);
	if (r)
		bpf_ringbuf_discard(r, BPF_RB_FORCE_WAKEUP);
	put(6, bpf_ringbuf_query(&ring, BPF_RB_PROD_POS));
	if (bpf_skb_load_bytes(skb, 0, head, 14) == 0)
		put(7, bpf_ringbuf_output(&ring, head, 13, 0));
	put(8, bpf_ringbuf_output(&ring, head, 8, 4));
	{
		__u8 *bad = bpf_ringbuf_reserve(&ring, 8, 1);

		put(9, bad != 0);
		if (bad)
			bpf_ringbuf_discard(bad, 0);
		bad = bpf_ringbuf_reserve(&ring, 5000, 0);
		put(14, bad != 0);
		if (bad)
			bpf_ringbuf_discard(bad, 0);
	}

	if (skb->len > 60) {
		for (i = 0; i < 200; i++) {
			__u8 *big = bpf_ringbuf_reserve(&ring, 250, 0);

			if (!big) {
				fails++;
				break;
			}
			big[0] = i;
			big[249] = 0xee;
			if (i & 1)
				bpf_ringbuf_discard(big, 0);
			else
				bpf_ringbuf_submit(big, 0);
			ok++;
		}
	}
	put(10, ok);
	put(11, fails);
	put(12, bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA));
	put(13, bpf_ringbuf_query(&ring, BPF_RB_PROD_POS));
	return TC_ACT_OK;
}
