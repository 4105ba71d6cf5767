// SPDX-License-Identifier: GPL-2.0
/* Bounded iteration the way current programs do it: bpf_loop with a context struct and an
 * early stop (scan the payload for a byte), bpf_loop with 0 iterations, a non-zero flag and
 * too many iterations; bpf_for_each_map_elem over a HASH that deletes the element it visits
 * and over a PERCPU_ARRAY; an open-coded bounded for loop summing the payload. */
#include "hunt.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pcpu SEC(".maps");

struct scan {
	struct __sk_buff *skb;
	__u32 found;
	__u32 visited;
	__u8 want;
};

static long scan_cb(__u32 idx, void *ctx)
{
	struct scan *s = ctx;
	__u8 b;

	s->visited++;
	if (bpf_skb_load_bytes(s->skb, idx, &b, 1) < 0)
		return 1;
	if (b == s->want) {
		s->found = idx;
		return 1;
	}
	return 0;
}

struct walk {
	__u64 sum;
	__u32 n;
	__u32 deleted;
};

static long hash_cb(void *map, __u32 *key, __u64 *val, void *ctx)
{
	struct walk *w = ctx;

	w->n++;
	w->sum += *val * (*key + 1);
	if (*key & 1) {
		if (bpf_map_delete_elem(map, key) == 0)
			w->deleted++;
	} else {
		*val += 1;
	}
	return w->n >= 12;
}

static long pcpu_cb(void *map, __u32 *key, __u64 *val, void *ctx)
{
	struct walk *w = ctx;

	*val += *key + 1;
	w->sum += *val;
	w->n++;
	return 0;
}

static long nop_cb(__u32 idx, void *ctx)
{
	return 0;
}

SEC("tc")
int loops(struct __sk_buff *skb)
{
	struct scan s = { .skb = skb, .found = 0xffff, .want = 0x35 };
	struct walk w = {};
	__u32 key = skb->len & 15, i;
	__u64 v = skb->len, sum = 0;
	void *data, *end;

	put(0, bpf_loop(skb->len, scan_cb, &s, 0));
	put(1, s.found);
	put(2, s.visited);
	put(3, bpf_loop(0, scan_cb, &s, 0));
	put(4, bpf_loop(4, nop_cb, 0, 1));
	put(5, bpf_loop(1 << 24, nop_cb, 0, 0));

	bpf_map_update_elem(&seen, &key, &v, BPF_ANY);
	key ^= 1;
	bpf_map_update_elem(&seen, &key, &v, BPF_ANY);
	put(6, bpf_for_each_map_elem(&seen, hash_cb, &w, 0));
	put(7, w.n);
	put(8, w.sum);
	put(9, w.deleted);
	put(10, bpf_for_each_map_elem(&seen, hash_cb, &w, 1));

	w.n = 0;
	w.sum = 0;
	put(11, bpf_for_each_map_elem(&pcpu, pcpu_cb, &w, 0));
	put(12, w.sum);

	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	for (i = 0; i < 128; i++) {
		__u8 *p = data + i;

		if ((void *)(p + 1) > end)
			break;
		sum += *p;
	}
	put(13, sum);
	put(14, i);
	return TC_ACT_OK;
}
