/* Lesson 1: VLAN push and pop in BPF, instead of one VLAN netdev per tag.
 *
 * vlan_push (egress): tag every frame with the VLAN id stored in `config[0]`.  The first
 * push only sets the skb's hardware-accelerated tag (skb->vlan_tci); the bytes change when
 * the device transmits it without VLAN TX offload, or when a capture shows it.
 * vlan_pop (ingress): count frames per VLAN id, then remove the tag.  At ingress the
 * kernel has already moved the outer tag out of the payload (skb_vlan_untag), so the
 * program reads the id from skb->vlan_tci, not from the packet bytes.
 */
#include "lesson.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

DEFINE_COUNTERS(per_vlan, 64);

SEC("tc")
int vlan_push(struct __sk_buff *skb)
{
	__u32 zero = 0, *vid = bpf_map_lookup_elem(&config, &zero);

	if (!vid || !*vid)
		return TC_ACT_OK;
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), *vid & 0xfff))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int vlan_pop(struct __sk_buff *skb)
{
	if (!skb->vlan_present)
		return TC_ACT_OK;
	count(&per_vlan, skb->vlan_tci & 0xfff);
	if (bpf_skb_vlan_pop(skb))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}
