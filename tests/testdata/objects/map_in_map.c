// SPDX-License-Identifier: GPL-2.0
/*
 * Maps of maps: an ARRAY_OF_MAPS whose slots 0 and 1 hold two inner ARRAYs (per-direction
 * counters picked by the TCP/UDP port parity), and a HASH_OF_MAPS keyed by IPv4 protocol
 * whose entries for UDP and TCP are two inner HASH maps of per-source counters.  Both
 * outer maps are initialised statically with `.values = { [K] = &inner }` (libbpf fills
 * them at load); the program only looks maps up and updates the inner maps.
 */
#include "common.h"

struct inner_arr {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_arr even_ports SEC(".maps"), odd_ports SEC(".maps");
struct inner_hash udp_srcs SEC(".maps"), tcp_srcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, struct inner_arr);
} by_parity SEC(".maps") = {
	.values = { [0] = &even_ports, [1] = &odd_ports },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner_hash);
} by_proto SEC(".maps") = {
	.values = { [IPPROTO_TCP] = &tcp_srcs, [IPPROTO_UDP] = &udp_srcs },
};

/* 0 no inner array map, 1 no inner hash map, 2 inner insert failures */
DEFINE_SLOTS(misses, 3);

SEC("tc")
int map_in_map(struct __sk_buff *skb)
{
	struct pkt p;

	if (parse_pkt(skb, &p) < 0 || !p.ip)
		return TC_ACT_OK;
	__u32 proto = p.ip->protocol;
	__u32 src = p.ip->saddr;
	__u32 parity = 2; /* no ports: the empty slot */

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		struct udphdr *uh = p.data + p.l4_off;

		if ((void *)(uh + 1) <= p.end)
			parity = bpf_ntohs(uh->dest) & 1;
	}
	void *arr = bpf_map_lookup_elem(&by_parity, &parity);
	if (arr) {
		__u32 k = proto & 3;
		__u64 *c = bpf_map_lookup_elem(arr, &k);

		if (c)
			*c += skb->len;
	} else {
		slot_add(&misses, 0, 1);
	}
	void *h = bpf_map_lookup_elem(&by_proto, &proto);
	if (!h) {
		slot_add(&misses, 1, 1);
		return TC_ACT_OK;
	}
	__u64 *c = bpf_map_lookup_elem(h, &src);
	if (c) {
		*c += 1;
	} else {
		__u64 one = 1;

		if (bpf_map_update_elem(h, &src, &one, BPF_NOEXIST))
			slot_add(&misses, 2, 1);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
