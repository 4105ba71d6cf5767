// SPDX-License-Identifier: GPL-2.0
/*
 * An iproute2-style object: maps are legacy `struct bpf_elf_map` definitions in SEC("maps")
 * (the layout of iproute2's include/bpf_elf.h, defined here), the entry program is in
 * SEC("classifier"), and the tail-call targets sit in sections named "ID/IDX" by the
 * __section_tail macro of iproute2's bpf_api.h: tc puts the program of section "ID/IDX"
 * into slot IDX of the PROG_ARRAY whose bpf_elf_map.id is ID.  No BTF map definitions.
 */
#include "common.h"

/* iproute2 include/bpf_elf.h */
#define PIN_NONE 0
#define PIN_OBJECT_NS 1
#define PIN_GLOBAL_NS 2

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

/* iproute2 include/bpf_api.h */
#define __stringify_1(x) #x
#define __stringify(x) __stringify_1(x)
#define __section(NAME) __attribute__((section(NAME), used))
#define __section_tail(ID, KEY) __section(__stringify(ID) "/" __stringify(KEY))
#define __section_maps __section("maps")
#define __section_cls_entry __section("classifier")
#define __section_license __section("license")

#define JMP_MAP_ID 1

struct bpf_elf_map __section_maps jmp_tc = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.id = JMP_MAP_ID,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.pinning = PIN_NONE,
	.max_elem = 4,
};

struct bpf_elf_map __section_maps acc = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.pinning = PIN_NONE,
	.max_elem = 8,
};

struct bpf_elf_map __section_maps seen = {
	.type = BPF_MAP_TYPE_HASH,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.pinning = PIN_NONE,
	.max_elem = 64,
};

static __always_inline void bump(__u32 idx, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&acc, &idx);

	if (v)
		__sync_fetch_and_add(v, by);
}

__section_tail(JMP_MAP_ID, 0)
int cls_small(struct __sk_buff *skb)
{
	bump(1, 1);
	bump(2, skb->len);
	skb->priority = 1;
	return TC_ACT_OK;
}

__section_tail(JMP_MAP_ID, 1)
int cls_large(struct __sk_buff *skb)
{
	__u32 key = skb->len, one = 1;

	bump(3, 1);
	bpf_map_update_elem(&seen, &key, &one, BPF_ANY);
	skb->priority = 2;
	return TC_ACT_SHOT;
}

__section_cls_entry
int cls_entry(struct __sk_buff *skb)
{
	__u32 idx = skb->len < 128 ? 0 : skb->len < 512 ? 1 : 2;

	bump(0, 1);
	bpf_tail_call(skb, &jmp_tc, idx);
	bump(4, 1);     /* slot 2 is empty: the tail call falls through */
	return TC_ACT_UNSPEC;
}

char __license[] __section_license = "GPL";
