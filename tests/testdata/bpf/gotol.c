// SPDX-License-Identifier: GPL-2.0
/*
 * gotol (-mcpu=v4 only): a conditional branch over more than 32767 instructions cannot be
 * encoded in a jump's 16-bit offset, so clang inverts the condition and jumps over a
 * "gotol" (BPF_JMP32 | BPF_JA), whose 32-bit offset lives in imm. The skipped block is
 * 40960 volatile stores of an immediate (one BPF_ST instruction each at v4).
 */
#include "common.h"

#if __BPF_CPU_VERSION__ < 4
#error "gotol.c needs -mcpu=v4"
#endif

DEFINE_OUT_MAP(gotol_out);

#define X10(s) s s s s s s s s s s
#define X16(s) s s s s s s s s s s s s s s s s
#define X40960(s) X10(X16(X16(X16(s))))

SEC("tc")
int gotol(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct slots *out = bpf_map_lookup_elem(&gotol_out, &zero);
	if (!out)
		return TC_ACT_OK;
	volatile __u64 *v = out->v;

	if (skb->len > 1000) {
		X40960(v[1] = 1;)
	}
	v[0] = 2;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
