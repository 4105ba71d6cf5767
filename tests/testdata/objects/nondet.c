// SPDX-License-Identifier: GPL-2.0
/*
 * Nondeterministic helpers: bpf_ktime_get_ns, bpf_ktime_get_boot_ns,
 * bpf_ktime_get_coarse_ns, bpf_get_prandom_u32 and bpf_get_smp_processor_id.  Their raw
 * values are stored in slots that the comparison excludes; what is deterministic is
 * stored too and compared: the monotonicity of two successive clock reads, the CPU number
 * (the test pins the kernel run to CPU 0 and runs tcemu with cpu=0) and whether the
 * prandom value is within range (always 1).
 */
#include "common.h"

/* excluded: 0 ktime, 1 boot ns, 2 coarse ns, 3 prandom; compared: 4 monotonic, 5 cpu,
 * 6 prandom % 1 == 0, 7 packets */
DEFINE_SLOTS(out, 8);

SEC("tc")
int nondet(struct __sk_buff *skb)
{
	__u64 t0 = bpf_ktime_get_ns();
	__u64 t1 = bpf_ktime_get_ns();
	__u32 r = bpf_get_prandom_u32();

	slot_set(&out, 0, t0);
	slot_set(&out, 1, bpf_ktime_get_boot_ns());
	slot_set(&out, 2, bpf_ktime_get_coarse_ns());
	slot_set(&out, 3, r);
	slot_set(&out, 4, t1 >= t0);
	slot_set(&out, 5, bpf_get_smp_processor_id());
	slot_set(&out, 6, (r | 1) != 0);
	slot_add(&out, 7, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
