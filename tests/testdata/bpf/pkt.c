// SPDX-License-Identifier: GPL-2.0
/*
 * Direct packet access: skb->data / skb->data_end bounds checks, Ethernet + IPv4 + UDP/TCP
 * parsing with byte-swapped header fields, and sign-extending loads of signed fields from the
 * packet (-mcpu=v4: ldsx of 8, 16 and 32 bits; earlier CPUs load and shift).
 */
#include "common.h"

#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct ethhdr_ {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
} __attribute__((packed));

struct iphdr_ {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__be32 saddr;
	__be32 daddr;
};

struct l4hdr_ {
	__be16 source;
	__be16 dest;
	__s32 word; /* tcp seq / udp len+check, read as a signed 32-bit value */
};

DEFINE_OUT_MAP(pkt_out);

SEC("tc")
int pkt(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr_ *eth = data;
	__u32 zero = 0;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	struct iphdr_ *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	__u32 ihl = (ip->ver_ihl & 0x0f) * 4;
	if (ihl < sizeof(*ip))
		return TC_ACT_SHOT;
	struct l4hdr_ *l4 = (void *)ip + ihl;
	if ((void *)(l4 + 1) > data_end)
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;

	struct slots *out = bpf_map_lookup_elem(&pkt_out, &zero);
	if (!out)
		return TC_ACT_OK;
	out->v[0] = bpf_ntohl(ip->saddr);
	out->v[1] = bpf_ntohl(ip->daddr);
	out->v[2] = bpf_ntohs(l4->source);
	out->v[3] = bpf_ntohs(l4->dest);
	out->v[4] = bpf_ntohs(ip->tot_len);
	/* Sign-extending loads from the packet. */
	out->v[5] = (__u64)(__s64) * (__s8 *)&ip->ttl;
	out->v[6] = (__u64)(__s64) * (__s16 *)&ip->id;
	out->v[7] = (__u64)(__s64)l4->word;
	out->v[8] = (__u32)(__s32) * (__s8 *)&ip->tos;
	/* Payload length straight from the pointers. */
	out->v[9] = data_end - (void *)(l4 + 1);
	if (ip->ttl <= 1)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
