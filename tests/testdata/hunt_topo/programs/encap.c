/* Packet-size changes on the way through a router (scenario encap-router).
 *
 * encap (tc ingress of a router port): by the inner UDP destination port, grow or shrink
 * the frame with bpf_skb_adjust_room / bpf_skb_change_tail and write the new outer
 * header, then rewrite the MACs from `l2` and bpf_redirect to egress of cfg[0]:
 *   6001 IPIP (+20, ENCAP_L3_IPV4), 6002 GRE (+24, ENCAP_L3_IPV4 | ENCAP_L4_GRE),
 *   6003 UDP to port 9999 (+28, ENCAP_L3_IPV4 | ENCAP_L4_UDP), 6004 change_tail +100,
 *   6005 adjust_room NET -4 (the UDP payload's first bytes go), anything else: redirect
 *   unchanged.  Outer addresses: cfg[1] -> cfg[2] (network order).  The helpers'
 * results are kept in `results` by port.
 */
#include "hunt.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[12]);
} l2 SEC(".maps");

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

static __always_inline int outer_ip(struct __sk_buff *skb, __u8 proto, __u16 extra)
{
	struct iphdr ip = {};
	__u32 zero = 0;
	__s64 sum;

	ip.version = 4;
	ip.ihl = 5;
	ip.ttl = 64;
	ip.protocol = proto;
	ip.tot_len = bpf_htons(skb->len - ETH_HLEN);
	ip.saddr = cfg_get(1);
	ip.daddr = cfg_get(2);
	sum = bpf_csum_diff(&zero, 0, (__be32 *)&ip, sizeof(ip), 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip.check = ~sum;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0))
		return -1;
	if (proto == IPPROTO_GRE) {
		__u32 gre = bpf_htonl(ETH_P_IP);	/* flags 0, version 0, protocol IPv4 */

		return bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &gre, 4, 0);
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr udp = {};

		udp.source = bpf_htons(7777);
		udp.dest = bpf_htons(9999);
		udp.len = bpf_htons(skb->len - ETH_HLEN - sizeof(ip));
		return bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &udp, sizeof(udp), 0);
	}
	return 0;
}

SEC("tc")
int encap(struct __sk_buff *skb)
{
	__u32 port = udp_dport(skb), zero = 0;
	__u64 encap_ipv4 = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;
	__u8 *mac;
	long ret = 0;

	observe(skb, 0);
	if (!port)
		return TC_ACT_OK;
	switch (port) {
	case 6001:
		ret = bpf_skb_adjust_room(skb, 20, BPF_ADJ_ROOM_MAC, encap_ipv4);
		if (!ret)
			ret = outer_ip(skb, IPPROTO_IPIP, 0);
		break;
	case 6002:
		ret = bpf_skb_adjust_room(skb, 24, BPF_ADJ_ROOM_MAC,
					  encap_ipv4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE);
		if (!ret)
			ret = outer_ip(skb, IPPROTO_GRE, 4);
		break;
	case 6003:
		ret = bpf_skb_adjust_room(skb, 28, BPF_ADJ_ROOM_MAC,
					  encap_ipv4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP);
		if (!ret)
			ret = outer_ip(skb, IPPROTO_UDP, 8);
		break;
	case 6004:
		ret = bpf_skb_change_tail(skb, skb->len + 100, 0);
		break;
	case 6005:
		ret = bpf_skb_adjust_room(skb, -4, BPF_ADJ_ROOM_NET, 0);
		break;
	}
	result(port, ret);
	mac = bpf_map_lookup_elem(&l2, &zero);
	if (mac)
		bpf_skb_store_bytes(skb, 0, mac, 12, 0);
	return bpf_redirect(cfg_get(0), 0);
}
