// SPDX-License-Identifier: GPL-2.0
/*
 * port_guard: the tutorial's classifier (docs/tutorial.md).
 *
 * Drops UDP datagrams to the ports listed in the `blocked` map and counts, per port, how
 * many it dropped; every other packet passes.  A direct-action tc program: the return
 * value is the verdict (TC_ACT_OK passes, TC_ACT_SHOT drops).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* UDP destination port (host order) -> datagrams dropped so far. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u64);
} blocked SEC(".maps");

SEC("tc")
int port_guard(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp;
	__u64 *drops;
	__u16 port;

	/* Every access is checked against data_end first: the verifier insists. */
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_OK;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		return TC_ACT_OK;

	port = bpf_ntohs(udp->dest);
	drops = bpf_map_lookup_elem(&blocked, &port);
	if (!drops)
		return TC_ACT_OK;
	__sync_fetch_and_add(drops, 1);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
