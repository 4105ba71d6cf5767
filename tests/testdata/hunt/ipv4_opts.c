// SPDX-License-Identifier: GPL-2.0
/* IPv4 with options: the header length taken from ihl (direct packet access with a
 * variable offset), the options walked from a copy (NOP, EOL, record route, timestamp,
 * router alert), the L4 ports found after them, the option count into tc_index, and the TTL
 * decremented with a 2-byte bpf_l3_csum_replace on the TTL/protocol word. */
#include "hunt.h"

SEC("tc")
int ipv4_opts(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u8 opts[40];
	__u32 hlen, nopts = 0, kinds = 0;
	int i;

	if ((void *)(ip + 1) > end)
		return TC_ACT_UNSPEC;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	hlen = ip->ihl * 4;
	put(0, hlen);
	if (hlen < sizeof(*ip)) {
		add(1, 1);
		return TC_ACT_SHOT;
	}
	if (hlen > sizeof(*ip)) {
		__u32 olen = hlen - sizeof(*ip);

		if (olen > sizeof(opts))
			return TC_ACT_SHOT;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(*ip), opts, olen) < 0) {
			add(2, 1);
			return TC_ACT_SHOT;
		}
		for (i = 0; i < 40; i++) {
			__u8 kind;

			if (i >= olen)
				break;
			kind = opts[i & 63 & 0x3f];
			if (kind == 0)
				break;
			nopts++;
			kinds |= 1u << (kind & 31);
			if (kind == 1)
				continue;
			if (i + 1 >= olen)
				break;
			{
				__u8 l = opts[(i + 1) & 0x3f];

				if (l < 2)
					break;
				i += l - 1;
			}
		}
	}
	put(3, nopts);
	put(4, kinds);
	skb->tc_index = nopts;

	/* L4 after the options, with a variable offset from the packet pointer. */
	if (hlen <= 60) {
		__u8 *l4 = (void *)ip + hlen;

		if (l4 + 4 <= (__u8 *)end && (ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_TCP))
			put(5, ((__u64)l4[0] << 24) | (l4[1] << 16) | (l4[2] << 8) | l4[3]);
	}
	/* TTL decrement on the TTL/protocol 16-bit word. */
	if (ip->ttl > 1) {
		__be16 old = *(__be16 *)&ip->ttl;
		__be16 new;
		long r;

		ip->ttl--;
		new = *(__be16 *)&ip->ttl;
		r = bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new, 2);
		put(6, r);
	} else {
		add(7, 1);
		return TC_ACT_SHOT;
	}
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > end)
		return TC_ACT_SHOT;
	put(8, bpf_ntohs(ip->check));
	return ip->frag_off & bpf_htons(0x3fff) ? TC_ACT_PIPE : TC_ACT_OK;
}
