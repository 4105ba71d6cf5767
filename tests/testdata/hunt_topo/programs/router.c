/* A BPF router between namespaces (scenario router-3ns).
 *
 * route: at tc ingress of a router port, look up the IPv4 destination in `routes`
 * (destination -> ifindex) and `modes` (destination -> mode, default 0); without an entry the frame goes up the stack
 * (TC_ACT_OK).  Otherwise TTL is decremented with bpf_l3_csum_replace fixing the header
 * checksum (TTL 1 or 0: dropped, counted), the MACs are rewritten from `macs` (the same
 * key: destination MAC then source MAC) when an entry exists, and the frame leaves by
 * mode: 0 bpf_redirect to egress, 1 bpf_redirect with BPF_F_INGRESS, 2 bpf_redirect_peer,
 * 3 bpf_redirect_neigh (FIB of the router's namespace), 4 bpf_clone_redirect to ingress
 * and TC_ACT_OK, 5 bpf_clone_redirect to egress and TC_ACT_SHOT.  Helper results are
 * kept in `results` per mode; observe() records the skb each hook saw.
 * route_out: the same at tc egress.
 * watch_in/watch_out: observe at tc ingress/egress (the receivers).
 */
#include "hunt.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);		/* IPv4 destination, network order */
	__type(value, __u32);		/* ifindex */
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);		/* IPv4 destination, network order */
	__type(value, __u32);		/* mode, 0 when absent */
} modes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u8[12]);
} macs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __s64);
} results SEC(".maps");

static __always_inline void result(__u32 key, __s64 value)
{
	bpf_map_update_elem(&results, &key, &value, BPF_ANY);
}

static __always_inline int route_at(struct __sk_buff *skb, __u32 egress)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 *ifindex, *modep, mode;
	__u8 *mac;
	__u32 daddr;
	__u16 old, new;
	long ret;

	observe(skb, egress);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	daddr = ip->daddr;
	ifindex = bpf_map_lookup_elem(&routes, &daddr);
	if (!ifindex)
		return TC_ACT_OK;
	modep = bpf_map_lookup_elem(&modes, &daddr);
	mode = modep ? *modep : 0;
	if (ip->ttl <= 1) {
		result(100, ip->ttl);
		return TC_ACT_SHOT;
	}
	old = *(__u16 *)&ip->ttl;
	ip->ttl -= 1;
	new = *(__u16 *)&ip->ttl;
	ret = bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new, 2);
	result(200, ret);
	mac = bpf_map_lookup_elem(&macs, &daddr);
	if (mac) {
		ret = bpf_skb_store_bytes(skb, 0, mac, 12, 0);
		result(201, ret);
	}
	switch (mode) {
	case 0:
		ret = bpf_redirect(*ifindex, 0);
		break;
	case 1:
		ret = bpf_redirect(*ifindex, BPF_F_INGRESS);
		break;
	case 2:
		ret = bpf_redirect_peer(*ifindex, 0);
		break;
	case 3:
		ret = bpf_redirect_neigh(*ifindex, 0, 0, 0);
		break;
	case 4:
		result(4, bpf_clone_redirect(skb, *ifindex, BPF_F_INGRESS));
		return TC_ACT_OK;
	case 5:
		result(5, bpf_clone_redirect(skb, *ifindex, 0));
		return TC_ACT_SHOT;
	default:
		return TC_ACT_SHOT;
	}
	result(mode, ret);
	return ret;
}

SEC("tc")
int route(struct __sk_buff *skb)
{
	return route_at(skb, 0);
}

SEC("tc")
int route_out(struct __sk_buff *skb)
{
	return route_at(skb, 1);
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
