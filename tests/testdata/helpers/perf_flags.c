// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_perf_event_output(skb, map, flags, data, size) with its flags and error paths
 * (bpf_skb_event_output in net/core/filter.c, __bpf_perf_event_output in
 * kernel/trace/bpf_trace.c).  The map has 4 slots; the test installs one perf event per
 * possible CPU in slot <cpu> and runs on CPU 0.  Every return code goes to `rcs`; the
 * samples (metadata, then `ctxlen` packet bytes) are read from the events' rings.
 *
 *   0 BPF_F_CURRENT_CPU, 8-byte sample          1 + the whole packet (ctxlen = len)
 *   2 ctxlen = len + 1: -EFAULT                 3 index 0 given explicitly
 *   4 index 1: event of another CPU (-EOPNOTSUPP with 2 CPUs)
 *   5 index 3: no event installed (-ENOENT with <= 3 CPUs)
 *   6 index 4 >= max_entries: -E2BIG            7 a flag bit outside both masks: -EINVAL
 *   8 empty sample with 5 packet bytes          9 7-byte sample, 3 packet bytes
 *  10 ctxlen 0xfffff: -EFAULT
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 11);
	__type(key, __u32);
	__type(value, __u64);
} rcs SEC(".maps");

struct small {
	__u32 len;
	__u16 proto;
	__u8 tag;
} __attribute__((packed));

static __always_inline void put(__u32 idx, long rc)
{
	__u64 *p = bpf_map_lookup_elem(&rcs, &idx);

	if (p)
		*p = (__u64)rc;
}

SEC("tc")
int perf_flags(struct __sk_buff *skb)
{
	__u64 meta = 0x1122334455667788ULL ^ skb->len;
	struct small s = { .len = skb->len, .proto = (__u16)skb->protocol, .tag = 7 };
	__u64 len = skb->len;

	put(0, bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU, &meta, sizeof(meta)));
	put(1, bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU | len << 32, &meta,
				     sizeof(meta)));
	put(2, bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU | (len + 1) << 32, &meta,
				     sizeof(meta)));
	put(3, bpf_perf_event_output(skb, &events, 0, &meta, sizeof(meta)));
	put(4, bpf_perf_event_output(skb, &events, 1, &meta, sizeof(meta)));
	put(5, bpf_perf_event_output(skb, &events, 3, &meta, sizeof(meta)));
	put(6, bpf_perf_event_output(skb, &events, 4, &meta, sizeof(meta)));
	put(7, bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU | 1ULL << 52, &meta,
				     sizeof(meta)));
	put(8, bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU | 5ULL << 32, &meta, 0));
	put(9, bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU | 3ULL << 32, &s,
				     sizeof(s)));
	put(10, bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU | 0xfffffULL << 32, &meta,
				      sizeof(meta)));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
