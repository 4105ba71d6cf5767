// SPDX-License-Identifier: GPL-2.0
/*
 * Programs for the real-kernel topology harness (tests/kernel/test_netns_harness.py),
 * attached by fd after `bpftool prog loadall`:
 *
 * - set_tunnel_key (vxlan egress): give the frame TX tunnel metadata, VNI 42 to 10.9.0.2,
 *   so that a collect_md ("external") VXLAN device encapsulates it instead of dropping it;
 * - get_tunnel_key (vxlan ingress): record the RX tunnel metadata the receiving collect_md
 *   device attached (id, remote, local, tos, ttl, flags) in the `seen` slots;
 * - vlan_push (veth egress): put a hw-accel 802.1Q tag (TCI 0x2077) on the frame, which
 *   the captures must show re-inserted in the bytes.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline void slot_set(__u32 idx, __u64 value)
{
	__u64 *p = bpf_map_lookup_elem(&seen, &idx);

	if (p)
		*p = value;
}

SEC("tc")
int set_tunnel_key(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {
		.tunnel_id = 42,
		.remote_ipv4 = 0x0a090002, /* 10.9.0.2, host order */
	};

	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int get_tunnel_key(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	long ret = bpf_skb_get_tunnel_key(skb, &key, sizeof(key), BPF_F_TUNINFO_FLAGS);

	slot_set(0, ret);
	slot_set(1, key.tunnel_id);
	slot_set(2, key.remote_ipv4);
	slot_set(3, key.local_ipv4);
	slot_set(4, key.tunnel_tos);
	slot_set(5, key.tunnel_ttl);
	slot_set(6, key.tunnel_flags);
	return TC_ACT_OK;
}

SEC("tc")
int vlan_push(struct __sk_buff *skb)
{
	if (bpf_skb_vlan_push(skb, bpf_htons(0x8100), 0x2077) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
