// SPDX-License-Identifier: GPL-2.0
/*
 * PERCPU_HASH keyed by (ethertype, IPv4 protocol, destination port): per-CPU counters,
 * created with BPF_NOEXIST and updated in place; a second PERCPU_HASH records the last
 * packet length per source address with a plain BPF_ANY update.
 */
#include "common.h"

struct key {
	__u16 eth_proto;
	__u8 ip_proto;
	__u8 pad;
	__u16 dport;
	__u16 pad2;
};

struct val {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 128);
	__type(key, struct key);
	__type(value, struct val);
} pcpu_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u32);
} last_len SEC(".maps");

SEC("tc")
int percpu_hash(struct __sk_buff *skb)
{
	struct key k = {};
	struct pkt p;

	if (parse_pkt(skb, &p) < 0)
		return TC_ACT_OK;
	k.eth_proto = p.eth_proto;
	if (p.ip) {
		k.ip_proto = p.ip->protocol;
		__u32 saddr = p.ip->saddr;
		__u32 len = skb->len;

		bpf_map_update_elem(&last_len, &saddr, &len, BPF_ANY);
		if (k.ip_proto == IPPROTO_TCP || k.ip_proto == IPPROTO_UDP) {
			struct udphdr *uh = p.data + p.l4_off;

			if ((void *)(uh + 1) <= p.end)
				k.dport = bpf_ntohs(uh->dest);
		}
	}
	struct val *v = bpf_map_lookup_elem(&pcpu_counts, &k);
	if (!v) {
		struct val zero = {};

		bpf_map_update_elem(&pcpu_counts, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&pcpu_counts, &k);
		if (!v)
			return TC_ACT_SHOT;
	}
	v->packets += 1;
	v->bytes += skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
