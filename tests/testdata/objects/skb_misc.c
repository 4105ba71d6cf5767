// SPDX-License-Identifier: GPL-2.0
/*
 * Assorted skb helpers: bpf_skb_change_type (valid and invalid packet types, read back
 * through skb->pkt_type), bpf_skb_pull_data (0, the whole packet, more than the packet),
 * bpf_get_cgroup_classid, bpf_get_route_realm and bpf_skb_cgroup_id (no socket, no dst
 * and no cgroup in BPF_PROG_TEST_RUN: all 0).
 */
#include "common.h"
#include <linux/if_packet.h>

DEFINE_SLOTS(out, 12);

SEC("tc")
int skb_misc(struct __sk_buff *skb)
{
	slot_set(&out, 0, skb->pkt_type);
	slot_set(&out, 1, bpf_skb_change_type(skb, PACKET_OTHERHOST));
	slot_set(&out, 2, skb->pkt_type);
	slot_set(&out, 3, bpf_skb_change_type(skb, 7));        /* > PACKET_OTHERHOST: -EINVAL */
	slot_set(&out, 4, bpf_skb_change_type(skb, PACKET_HOST));
	slot_set(&out, 5, bpf_skb_pull_data(skb, 0));
	slot_set(&out, 6, bpf_skb_pull_data(skb, skb->len));
	slot_set(&out, 7, bpf_skb_pull_data(skb, skb->len + 1)); /* -ENOMEM */
	slot_set(&out, 8, bpf_get_cgroup_classid(skb));
	slot_set(&out, 9, bpf_get_route_realm(skb));
	slot_set(&out, 10, bpf_skb_cgroup_id(skb));
	slot_set(&out, 11, skb->data_end - skb->data);
	if (skb->len > 1000)
		bpf_skb_change_type(skb, PACKET_BROADCAST);
	return skb->pkt_type;
}

char LICENSE[] SEC("license") = "GPL";
