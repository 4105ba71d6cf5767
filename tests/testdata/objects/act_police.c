// SPDX-License-Identifier: GPL-2.0
/*
 * A SEC("action") program (BPF_PROG_TYPE_SCHED_ACT) as `tc action ... bpf` runs it: a
 * per-source byte budget kept in a HASH map.  Within budget it sets skb->mark and
 * returns TC_ACT_PIPE (continue with the next action); over budget TC_ACT_SHOT; non-IPv4
 * TC_ACT_OK.  Direct packet access is allowed for SCHED_ACT like SCHED_CLS.
 */
#include "common.h"

#define BUDGET 600

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} used SEC(".maps");

DEFINE_SLOTS(verdicts, 8);

SEC("action")
int act_police(struct __sk_buff *skb)
{
	struct pkt p;
	int verdict;

	if (parse_pkt(skb, &p) < 0 || !p.ip) {
		verdict = TC_ACT_OK;
		goto out;
	}
	__u32 src = p.ip->saddr;
	__u64 *u = bpf_map_lookup_elem(&used, &src);
	__u64 total = skb->len;

	if (u)
		total = __sync_add_and_fetch(u, skb->len);
	else
		bpf_map_update_elem(&used, &src, &total, BPF_NOEXIST);
	if (total > BUDGET) {
		verdict = TC_ACT_SHOT;
	} else {
		skb->mark = (__u32)total;
		verdict = TC_ACT_PIPE;
	}
out:
	slot_add(&verdicts, verdict & 7, 1);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
