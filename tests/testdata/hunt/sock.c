// SPDX-License-Identifier: GPL-2.0
/* Socket-aware classification: skb->sk (BPF_PROG_TEST_RUN attaches a dummy socket whose
 * family and addresses come from the packet) through bpf_sk_fullsock, its struct bpf_sock
 * fields, bpf_tcp_sock and bpf_get_listener_sock on it, bpf_sk_cgroup_id; socket lookups
 * (bpf_sk_lookup_tcp/udp, bpf_skc_lookup_tcp) of ports nothing listens on, with bad tuple
 * sizes, netns ids and flags, releasing whatever was found. */
#include "hunt.h"

SEC("tc")
int sock(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk = skb->sk, *full, *found;
	struct bpf_tcp_sock *tp;

	put(0, sk != 0);
	if (sk) {
		full = bpf_sk_fullsock(sk);
		put(1, full != 0);
		if (full) {
			put(2, full->family);
			put(3, full->type);
			put(4, full->protocol);
			put(5, full->mark);
			put(6, full->priority);
			put(7, full->src_ip4);
			put(8, full->dst_ip4);
			put(9, full->src_port);
			put(10, full->dst_port);
			put(11, full->state);
			put(12, full->bound_dev_if);
			put(13, full->src_ip6[0] | full->dst_ip6[3]);
			put(14, full->rx_queue_mapping);
			tp = bpf_tcp_sock(full);
			put(15, tp != 0);
			put(16, bpf_get_listener_sock(full) != 0);
		}
	}
	t.ipv4.saddr = bpf_htonl(0x0a000001);
	t.ipv4.daddr = bpf_htonl(0x0a000002);
	t.ipv4.sport = bpf_htons(40001);
	t.ipv4.dport = bpf_htons(1);
	found = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	put(20, found != 0);
	if (found)
		bpf_sk_release(found);
	found = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	put(21, found != 0);
	if (found)
		bpf_sk_release(found);
	found = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	put(22, found != 0);
	if (found)
		bpf_sk_release(found);
	found = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4) + 1, BPF_F_CURRENT_NETNS, 0);
	put(23, found != 0);
	if (found)
		bpf_sk_release(found);
	found = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv6), 0x7fffffff, 0);
	put(24, found != 0);
	if (found)
		bpf_sk_release(found);
	found = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 1);
	put(25, found != 0);
	if (found)
		bpf_sk_release(found);
	return TC_ACT_OK;
}
