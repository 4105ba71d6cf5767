// SPDX-License-Identifier: GPL-2.0
/* Rejected: a 2-byte key (the port) looked up in a map whose keys are 4 bytes, at the
 * very top of the stack. */
#include "students.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} ports SEC(".maps");

static __attribute__((noinline)) int lookup_port(__u16 port)
{
	volatile __u16 key = port;

	return bpf_map_lookup_elem(&ports, (void *)&key) != 0;
}

SEC("tc")
int map_key_short(struct __sk_buff *skb)
{
	return lookup_port(skb->mark & 0xffff) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
