/* skb metadata across boundaries (scenario metadata-crossing).
 *
 * stamp (tc egress or ingress): observe(), then set mark, priority, tc_index, cb[0] and
 * the hash (bpf_set_hash) to values that name the hook; at egress return TC_ACT_OK, at
 * ingress cfg[0] (a verdict, or bpf_redirect to cfg[1] with flags cfg[2] when it is 7).
 * watch_in/watch_out: observe() what arrives downstream.
 */
#include "hunt.h"

SEC("tc")
int stamp(struct __sk_buff *skb)
{
	__u32 verdict = cfg_get(0);

	observe(skb, skb->ingress_ifindex ? 0 : 1);
	skb->mark = 0x1000 + skb->ifindex;
	skb->priority = 0x20 + skb->ifindex;
	skb->tc_index = 0x30 + skb->ifindex;
	skb->cb[0] = 0x40 + skb->ifindex;
	bpf_set_hash(skb, 0x50 + skb->ifindex);
	if (!skb->ingress_ifindex)
		return TC_ACT_OK;
	if (verdict == TC_ACT_REDIRECT)
		return bpf_redirect(cfg_get(1), cfg_get(2));
	return verdict;
}

SEC("tc")
int watch_in(struct __sk_buff *skb)
{
	observe(skb, 0);
	return TC_ACT_OK;
}

SEC("tc")
int watch_out(struct __sk_buff *skb)
{
	observe(skb, 1);
	return TC_ACT_OK;
}
