/* Filter stacks (scenario filter-stack).
 *
 * step1..step4 (direct action): observe() the skb, append the step's number to
 * skb->mark (mark = mark * 16 + n), count the run in cb[0], then return the verdict
 * `verdicts` holds for (n << 16 | UDP destination port), TC_ACT_UNSPEC (-1: the next
 * filter runs) when there is none.  tc_classid is set to 0x10 * n + 1 on the way, so a
 * classid a later hook sees names the filter.
 * classic (classic mode, section "classifier"): observe(), mark += 0x100, and return
 * `verdicts`[5 << 16 | port] as the class (0: no match, the next filter; -1: the
 * filter's own classid; anything else: that classid); the filter's actions then run.
 */
#include "hunt.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __s32);
} verdicts SEC(".maps");

static __always_inline int step(struct __sk_buff *skb, __u32 n, __u32 egress)
{
	__u32 key = (n << 16) | udp_dport(skb);
	__s32 *v;

	observe(skb, egress);
	skb->mark = skb->mark * 16 + n;
	skb->cb[0] += 1;
	skb->tc_classid = 0x10 * n + 1;
	v = bpf_map_lookup_elem(&verdicts, &key);
	return v ? *v : TC_ACT_UNSPEC;
}

SEC("tc")
int step1(struct __sk_buff *skb) { return step(skb, 1, 0); }
SEC("tc")
int step2(struct __sk_buff *skb) { return step(skb, 2, 0); }
SEC("tc")
int step3(struct __sk_buff *skb) { return step(skb, 3, 0); }
SEC("tc")
int step4(struct __sk_buff *skb) { return step(skb, 4, 0); }
SEC("tc")
int step6(struct __sk_buff *skb) { return step(skb, 6, 1); }

SEC("classifier")
int classic(struct __sk_buff *skb)
{
	__u32 key = (5 << 16) | udp_dport(skb);
	__s32 *v;

	observe(skb, 0);
	skb->mark += 0x100;
	v = bpf_map_lookup_elem(&verdicts, &key);
	return v ? *v : -1;
}
