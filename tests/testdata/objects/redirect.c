// SPDX-License-Identifier: GPL-2.0
/*
 * Redirect helpers, one program each: bpf_redirect to an ifindex taken from the packet
 * (egress), bpf_redirect with BPF_F_INGRESS and with an invalid flag (TC_ACT_SHOT),
 * bpf_redirect_peer and bpf_redirect_neigh (with and without a nexthop), whose return
 * values are the tc verdict (TC_ACT_REDIRECT = 7) that BPF_PROG_TEST_RUN reports without
 * acting on it, and bpf_clone_redirect to ifindex 1 (lo), which really transmits a clone
 * (the test runs it in a private network namespace) and returns 0 or an error.
 */
#include "common.h"

DEFINE_SLOTS(out, 8);

SEC("tc")
int redirect_egress(struct __sk_buff *skb)
{
	__u8 b = 0;

	bpf_skb_load_bytes(skb, 5, &b, 1);
	slot_add(&out, 0, 1);
	if (b & 1)
		return bpf_redirect(b, BPF_F_INGRESS);
	if (b & 2)
		return bpf_redirect(b, 0x100); /* unknown flag */
	return bpf_redirect(b, 0);
}

SEC("tc")
int redirect_peer(struct __sk_buff *skb)
{
	slot_add(&out, 1, 1);
	return bpf_redirect_peer(skb->len & 0xf, skb->len & 0x10);
}

SEC("tc")
int redirect_neigh(struct __sk_buff *skb)
{
	struct bpf_redir_neigh nh = { .nh_family = 2 /* AF_INET */, .ipv4_nh = 0x0100007f };

	slot_add(&out, 2, 1);
	if (skb->len & 1)
		return bpf_redirect_neigh(1, &nh, sizeof(nh), 0);
	if (skb->len & 2)
		return bpf_redirect_neigh(1, &nh, sizeof(nh), 1); /* flags must be 0 */
	return bpf_redirect_neigh(skb->len & 0xff, 0, 0, 0);
}

SEC("tc")
int clone_to_lo(struct __sk_buff *skb)
{
	slot_set(&out, 3, bpf_clone_redirect(skb, 1, 0));
	slot_set(&out, 4, bpf_clone_redirect(skb, 1, 0x100)); /* unknown flag: -EINVAL */
	slot_set(&out, 5, bpf_clone_redirect(skb, 0x7fff, 0)); /* no such device */
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
