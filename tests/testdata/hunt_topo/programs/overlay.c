/* An overlay datapath in the style of container networking (scenario overlay-containers).
 *
 * to_tunnel (tc ingress of a container's host-side veth): the tunnel of the inner IPv4
 * destination from `tunnels` (VNI, remote in host order), bpf_skb_set_tunnel_key, then
 * bpf_redirect to egress of the collect_md VXLAN device cfg[0]; no entry: TC_ACT_OK.
 * from_tunnel (tc ingress of the VXLAN device): record the tunnel key per VNI in
 * `arrivals`, then bpf_redirect_peer into the container behind veth cfg[1].
 * Both observe() the skb.
 */
#include "hunt.h"

struct tunnel {
	__u32 vni;
	__u32 remote;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct tunnel);
} tunnels SEC(".maps");

struct arrival {
	__u32 count;
	__u32 remote;
	__u32 ttl_tos;
	__s32 redirect;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct arrival);
} arrivals SEC(".maps");

SEC("tc")
int to_tunnel(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct bpf_tunnel_key key = {};
	struct tunnel *t;
	__u32 daddr;

	observe(skb, 0);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	daddr = ip->daddr;
	t = bpf_map_lookup_elem(&tunnels, &daddr);
	if (!t)
		return TC_ACT_OK;
	key.tunnel_id = t->vni;
	key.remote_ipv4 = t->remote;
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX))
		return TC_ACT_SHOT;
	return bpf_redirect(cfg_get(0), 0);
}

SEC("tc")
int from_tunnel(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	struct arrival a = {}, *old;
	__u32 vni;

	observe(skb, 0);
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0))
		return TC_ACT_SHOT;
	vni = key.tunnel_id;
	old = bpf_map_lookup_elem(&arrivals, &vni);
	if (old)
		a = *old;
	a.count += 1;
	a.remote = key.remote_ipv4;
	a.ttl_tos = key.tunnel_ttl << 8 | key.tunnel_tos;
	a.redirect = bpf_redirect_peer(cfg_get(1), 0);
	bpf_map_update_elem(&arrivals, &vni, &a, BPF_ANY);
	return a.redirect;
}
