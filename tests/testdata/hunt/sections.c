// SPDX-License-Identifier: GPL-2.0
/* Object layout a libbpf user produces: three programs in tcx/ingress, tc/egress and
 * classifier sections sharing a static function in .text; custom global-data sections
 * (.data.counters, .rodata.table; libbpf 1.1 has no .bss.*) that libbpf turns into maps;
 * a function-static variable; a const table indexed by packet bytes.  (kconfig externs
 * are left out: tcemu refuses .kconfig with a LoadError.) */
#include "hunt.h"

__u64 per_prog[3] SEC(".data.counters") = { 100, 200, 300 };
const __u8 dscp_class[8] SEC(".rodata.table") = { 0, 1, 1, 2, 2, 3, 3, 7 };
__u32 scratch[4];

static __noinline __u32 classify(struct __sk_buff *skb, __u32 who)
{
	static __u32 calls;
	__u8 tos = 0;

	calls++;
	bpf_skb_load_bytes(skb, ETH_HLEN + 1, &tos, 1);
	scratch[who & 3] = calls;
	__sync_fetch_and_add(&per_prog[who > 2 ? 2 : who], skb->len);
	return dscp_class[(tos >> 5) & 7];
}

SEC("action")
int sec_tcx(struct __sk_buff *skb)
{
	skb->priority = classify(skb, 0);
	return TC_ACT_OK;
}

SEC("tc")
int sec_tc(struct __sk_buff *skb)
{
	skb->tc_classid = 0x10000 | classify(skb, 1);
	return TC_ACT_OK;
}

SEC("classifier")
int sec_cls(struct __sk_buff *skb)
{
	return classify(skb, 2) ? TC_ACT_OK : TC_ACT_SHOT;
}
