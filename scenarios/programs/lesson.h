/* SPDX-License-Identifier: GPL-2.0 */
/* Shared definitions of the scenario lessons' programs (scenarios/programs). */
#ifndef TCEMU_LESSON_H
#define TCEMU_LESSON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* A u32 -> u64 counter table every lesson uses to show what happened. */
#define DEFINE_COUNTERS(name, n)                                                               \
	struct {                                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                                               \
		__uint(max_entries, n);                                                        \
		__type(key, __u32);                                                            \
		__type(value, __u64);                                                          \
	} name SEC(".maps")

static __always_inline void count(void *map, __u32 key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(map, &key, &one, BPF_NOEXIST);
}

/* The IPv4 header of an untagged Ethernet frame, or NULL. */
static __always_inline struct iphdr *ipv4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	return ip;
}

char LICENSE[] SEC("license") = "GPL";

#endif
