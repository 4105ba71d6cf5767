// SPDX-License-Identifier: GPL-2.0
/* A small L4 load balancer: a VIP table (HASH) maps (vip, port, proto) to a backend; the
 * destination address and port are rewritten with a bpf_csum_diff chain fed to
 * bpf_l3_csum_replace (size 0) and bpf_l4_csum_replace (BPF_F_PSEUDO_HDR, size 0), UDP with
 * checksum 0 keeps it through BPF_F_MARK_MANGLED_0, ICMP echo ids are rewritten with a
 * 2-byte replace without the pseudo header; replies are SNATed back with 4-byte replaces. */
#include "hunt.h"

struct vip {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct backend {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct vip);
	__type(value, struct backend);
} vips SEC(".maps");

#define IP_OFF ETH_HLEN
#define DADDR_OFF (IP_OFF + offsetof(struct iphdr, daddr))
#define SADDR_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define IPCSUM_OFF (IP_OFF + offsetof(struct iphdr, check))

SEC("tc")
int lb_nat(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct vip key = {};
	struct backend *be;
	__be16 ports[2];
	__u32 l4, csum_off;
	__u64 flags;
	__s64 diff;
	long r;

	if (bpf_skb_load_bytes(skb, IP_OFF, &ip, sizeof(ip)) < 0 || ip.version != 4)
		return TC_ACT_UNSPEC;
	l4 = IP_OFF + ip.ihl * 4;
	if (ip.protocol == IPPROTO_TCP) {
		csum_off = l4 + offsetof(struct tcphdr, check);
		flags = BPF_F_PSEUDO_HDR;
	} else if (ip.protocol == IPPROTO_UDP) {
		csum_off = l4 + offsetof(struct udphdr, check);
		flags = BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0;
	} else if (ip.protocol == IPPROTO_ICMP) {
		csum_off = l4 + 2;
		flags = 0;
	} else {
		return TC_ACT_OK;
	}
	if (ip.protocol == IPPROTO_ICMP) {
		ports[0] = 0;
		if (bpf_skb_load_bytes(skb, l4 + 4, &ports[1], 2) < 0)
			return TC_ACT_SHOT;
	} else if (bpf_skb_load_bytes(skb, l4, ports, 4) < 0) {
		return TC_ACT_SHOT;
	}
	key.addr = ip.daddr;
	key.port = ports[1];
	key.proto = ip.protocol;
	be = bpf_map_lookup_elem(&vips, &key);
	if (!be) {
		/* A reply from a backend: SNAT the source back to the VIP with 4-byte replaces. */
		key.addr = ip.saddr;
		key.port = ports[0];
		key.proto = ip.protocol | 0x80;
		be = bpf_map_lookup_elem(&vips, &key);
		if (!be)
			return TC_ACT_OK;
		r = bpf_l4_csum_replace(skb, csum_off, ip.saddr, be->addr, flags | 4);
		put(10, r);
		r = bpf_l3_csum_replace(skb, IPCSUM_OFF, ip.saddr, be->addr, 4);
		put(11, r);
		r = bpf_skb_store_bytes(skb, SADDR_OFF, &be->addr, 4, 0);
		put(12, r);
		if (ip.protocol != IPPROTO_ICMP) {
			r = bpf_l4_csum_replace(skb, csum_off, ports[0], be->port, 2);
			put(13, r);
			r = bpf_skb_store_bytes(skb, l4, &be->port, 2, 0);
		}
		return TC_ACT_OK;
	}
	diff = bpf_csum_diff(&ip.daddr, 4, &be->addr, 4, 0);
	put(0, diff);
	r = bpf_l3_csum_replace(skb, IPCSUM_OFF, 0, diff, 0);
	put(1, r);
	if (ip.protocol == IPPROTO_ICMP) {
		/* The echo id takes the backend port; ICMP has no pseudo header. */
		r = bpf_l4_csum_replace(skb, csum_off, ports[1], be->port, 2);
		put(2, r);
		r = bpf_skb_store_bytes(skb, l4 + 4, &be->port, 2, 0);
	} else {
		__u32 old[2] = { ip.daddr, ports[1] };
		__u32 new[2] = { be->addr, be->port };

		diff = bpf_csum_diff(old, 8, new, 8, 0);
		put(3, diff);
		/* The address is in the pseudo header, the port is not: two replaces. */
		r = bpf_l4_csum_replace(skb, csum_off, ip.daddr, be->addr, flags | 4);
		put(4, r);
		r = bpf_l4_csum_replace(skb, csum_off, ports[1], be->port, (flags & ~BPF_F_PSEUDO_HDR) | 2);
		put(5, r);
		r = bpf_skb_store_bytes(skb, l4 + 2, &be->port, 2, 0);
	}
	put(6, r);
	r = bpf_skb_store_bytes(skb, DADDR_OFF, &be->addr, 4, BPF_F_INVALIDATE_HASH);
	put(7, r);
	skb->mark = bpf_ntohl(be->addr);
	return TC_ACT_OK;
}
