/* SPDX-License-Identifier: GPL-2.0 */
/* Shared definitions for tcemu's compiled BPF test objects. */
#ifndef TCEMU_TESTDATA_COMMON_H
#define TCEMU_TESTDATA_COMMON_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#ifndef __BPF_CPU_VERSION__
#error "compile with clang -target bpf -mcpu=vN"
#endif

/* An array of u64 slots that the programs write their results into, so the compiler cannot
 * drop the computations as dead code. */
#define NSLOTS 32
struct slots {
	__u64 v[NSLOTS];
};

#define DEFINE_OUT_MAP(name)                                                                   \
	struct {                                                                               \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                              \
		__uint(max_entries, 1);                                                        \
		__type(key, __u32);                                                            \
		__type(value, struct slots);                                                   \
	} name SEC(".maps")

#endif
