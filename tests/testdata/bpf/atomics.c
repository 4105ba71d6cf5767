// SPDX-License-Identifier: GPL-2.0
/*
 * Atomic coverage, on an array map value: __sync_fetch_and_add with the result unused
 * (the classic XADD "lock *(u64 *)(r1 +0) += r2", the only atomic before -mcpu=v3) and, from
 * v3 on, with the result used (atomic_fetch_add), __sync_fetch_and_or/and/xor with and
 * without the result, __sync_lock_test_and_set (xchg) and __sync_val_compare_and_swap
 * (cmpxchg), in 64- and 32-bit widths.
 */
#include "common.h"

struct counters {
	__u64 add64;
	__u64 or64;
	__u64 and64;
	__u64 xor64;
	__u64 xchg64;
	__u64 cmpxchg64;
	__u32 add32;
	__u32 or32;
	__u32 and32;
	__u32 xor32;
	__u32 xchg32;
	__u32 cmpxchg32;
	__u64 fetched[12];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct counters);
} counters SEC(".maps");

SEC("tc")
int atomics(struct __sk_buff *skb)
{
	__u32 key = skb->queue_mapping & 3;
	struct counters *c = bpf_map_lookup_elem(&counters, &key);
	if (!c)
		return TC_ACT_OK;
	__u64 len = skb->len;
	__u32 mark = skb->mark;

	/* Result unused: lock add (XADD), all CPU versions. */
	__sync_fetch_and_add(&c->add64, len);
	__sync_fetch_and_add(&c->add32, mark);

#if __BPF_CPU_VERSION__ >= 3
	/* Result unused: lock or/and/xor. */
	__sync_fetch_and_or(&c->or64, len);
	__sync_fetch_and_and(&c->and64, ~len);
	__sync_fetch_and_xor(&c->xor64, len << 1);
	__sync_fetch_and_or(&c->or32, mark);
	__sync_fetch_and_and(&c->and32, ~mark);
	__sync_fetch_and_xor(&c->xor32, mark << 1);

	/* Result used: the BPF_FETCH forms, xchg and cmpxchg. */
	c->fetched[0] = __sync_fetch_and_add(&c->add64, 1);
	c->fetched[1] = __sync_fetch_and_or(&c->or64, 2);
	c->fetched[2] = __sync_fetch_and_and(&c->and64, 0xff);
	c->fetched[3] = __sync_fetch_and_xor(&c->xor64, len);
	c->fetched[4] = __sync_lock_test_and_set(&c->xchg64, len);
	c->fetched[5] = __sync_val_compare_and_swap(&c->cmpxchg64, len, len + 1);
	c->fetched[6] = __sync_fetch_and_add(&c->add32, 1);
	c->fetched[7] = __sync_fetch_and_or(&c->or32, 2);
	c->fetched[8] = __sync_fetch_and_and(&c->and32, 0xff);
	c->fetched[9] = __sync_fetch_and_xor(&c->xor32, mark);
	c->fetched[10] = __sync_lock_test_and_set(&c->xchg32, mark);
	c->fetched[11] = __sync_val_compare_and_swap(&c->cmpxchg32, mark, mark + 1);
#endif
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
