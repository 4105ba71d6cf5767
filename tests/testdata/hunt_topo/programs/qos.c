/* Egress classification into HTB classes (scenario egress-qos).
 *
 * set_prio (clsact egress, before the root qdisc): skb->priority = `prios`[UDP port]
 * when there is an entry; HTB takes a priority naming one of its classes as the class.
 * set_class (cls_bpf, direct action, attached to the HTB qdisc with classid 1:):
 * skb->tc_classid = `classes`[port] and the verdict `verdicts`[port] (TC_ACT_OK without
 * an entry).  Both observe() the skb; watch_in at the receiver shows what crossed.
 */
#include "hunt.h"

#define PORT_MAP(name, vtype)                                                                   \
	struct {                                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                                               \
		__uint(max_entries, 32);                                                       \
		__type(key, __u32);                                                            \
		__type(value, vtype);                                                          \
	} name SEC(".maps")

PORT_MAP(prios, __u32);
PORT_MAP(classes, __u32);
PORT_MAP(verdicts, __s32);

SEC("tc")
int set_prio(struct __sk_buff *skb)
{
	__u32 port = udp_dport(skb), *p = bpf_map_lookup_elem(&prios, &port);

	if (p)
		skb->priority = *p;
	observe(skb, 1);
	return TC_ACT_OK;
}

SEC("tc")
int set_class(struct __sk_buff *skb)
{
	__u32 port = udp_dport(skb), *c = bpf_map_lookup_elem(&classes, &port);
	__s32 *v = bpf_map_lookup_elem(&verdicts, &port);

	if (c)
		skb->tc_classid = *c;
	observe(skb, 1);
	return v ? *v : TC_ACT_OK;
}

SEC("tc")
int watch_in(struct __sk_buff *skb)
{
	observe(skb, 0);
	return TC_ACT_OK;
}
