// SPDX-License-Identifier: GPL-2.0
/*
 * Callback helpers: bpf_loop runs a static callback once per packet byte of the first
 * 32, summing them into a context struct on the stack; bpf_for_each_map_elem walks an
 * ARRAY (deterministic index order), adds the packet length to every element and stops
 * early at an element above a threshold.  Also bpf_map_lookup_percpu_elem on a
 * PERCPU_ARRAY for CPU 0 and an out-of-range CPU.
 */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} acc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pcpu SEC(".maps");

/* 0 loop sum, 1 loop rc, 2 for_each rc, 3 visited, 4 percpu cpu0, 5 percpu bad cpu */
DEFINE_SLOTS(out, 6);

struct loop_ctx {
	struct __sk_buff *skb;
	__u64 sum;
};

static long sum_byte(__u64 i, void *data)
{
	struct loop_ctx *c = data;
	__u8 b = 0;

	if (bpf_skb_load_bytes(c->skb, i, &b, 1))
		return 1;   /* stop */
	c->sum += b;
	return 0;
}

struct walk_ctx {
	__u64 add;
	__u64 visited;
};

static long bump(void *map, __u32 *key, __u64 *val, struct walk_ctx *c)
{
	*val += c->add + *key;
	c->visited++;
	return *val > 2000 ? 1 : 0;
}

SEC("tc")
int callbacks(struct __sk_buff *skb)
{
	struct loop_ctx lc = { .skb = skb };
	struct walk_ctx wc = { .add = skb->len };
	__u32 zero = 0;

	slot_set(&out, 1, bpf_loop(32, sum_byte, &lc, 0));
	slot_set(&out, 0, lc.sum);
	slot_set(&out, 2, bpf_for_each_map_elem(&acc, bump, &wc, 0));
	slot_set(&out, 3, wc.visited);

	__u64 *p = bpf_map_lookup_elem(&pcpu, &zero);
	if (p)
		*p += skb->len;
	p = bpf_map_lookup_percpu_elem(&pcpu, &zero, 0);
	slot_set(&out, 4, p ? *p : 0xdead);
	p = bpf_map_lookup_percpu_elem(&pcpu, &zero, 4096);
	slot_set(&out, 5, p ? *p : 0xdead);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
