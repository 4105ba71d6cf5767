/* Lesson 2: a VXLAN device in collect_md ("external") mode is driven by BPF.
 *
 * set_key (egress of the vxlan device): choose the tunnel for each packet: VNI and remote
 * from `tunnels`, keyed by the inner IPv4 destination.  Without tunnel metadata a
 * collect_md device drops the packet.
 * get_key (ingress of the vxlan device): read the metadata the device attached on decap
 * (VNI, outer source address) and count packets per VNI.
 */
#include "lesson.h"

struct tunnel {
	__u32 vni;
	__u32 remote;   /* IPv4, host order */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);            /* inner IPv4 destination, network order */
	__type(value, struct tunnel);
} tunnels SEC(".maps");

DEFINE_COUNTERS(per_vni, 16);
DEFINE_COUNTERS(remotes, 16);

SEC("tc")
int set_key(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4(skb);
	struct bpf_tunnel_key key = {};
	struct tunnel *t;
	__u32 daddr;

	if (!ip)
		return TC_ACT_OK;
	daddr = ip->daddr;
	t = bpf_map_lookup_elem(&tunnels, &daddr);
	if (!t)
		return TC_ACT_SHOT;
	key.tunnel_id = t->vni;
	key.remote_ipv4 = t->remote;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int get_key(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0))
		return TC_ACT_SHOT;
	count(&per_vni, key.tunnel_id);
	count(&remotes, key.remote_ipv4);
	return TC_ACT_OK;
}
