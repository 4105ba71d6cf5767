// SPDX-License-Identifier: GPL-2.0
/*
 * Programs of the datapath differential tests (tests/datapath/test_kernel_diff.py).
 *
 * Every program first "stamps" the skb fields it sees into the UDP payload of the frame
 * (14 u32 at byte 42 at egress, byte 98 at ingress), so that the wire bytes captured on the
 * following devices show what the hook saw; cb[0] counts the stamps.  Then:
 * - stamp: returns cfg[2] (a verdict, 0 = TC_ACT_OK by default);
 * - redir: cfg[1] selects bpf_redirect (0), with BPF_F_INGRESS (1), bpf_redirect_peer (2)
 *   bpf_clone_redirect + TC_ACT_OK (3), bpf_redirect_neigh without nexthop (4) or with
 *   the IPv4 nexthop cfg[5] (family cfg[7], 5) to ifindex cfg[0];
 * - classid: writes tc_classid = cfg[3] and returns cfg[2] (tc_index rule of 2.5);
 * - fib: bpf_fib_lookup of the frame's IPv4 addresses on the hook's device with flags
 *   cfg[4] and tot_len cfg[5]; the result, ifindex, addresses, MACs and mtu_result are
 *   written at byte 42 instead of a stamp;
 * - misc: bpf_check_mtu on the hook's device and on ifindex cfg[6] (with len_diff cfg[7]
 *   reinterpreted as signed), bpf_get_cgroup_classid, bpf_get_route_realm, written at 42;
 * - tail: bpf_skb_change_tail to cfg[6] bytes, the result written over the first 4 bytes
 *   (the minimum length depends on the transport header the path has set);
 * - classic (section "classifier", tc's default): stamp and return -1, the filter's
 *   class in classic mode, so that the filter's actions run;
 * - encap: stamp, bpf_skb_set_tunnel_key (VNI cfg[3], remote cfg[5] as a host-order
 *   IPv4 address) and bpf_redirect to ifindex cfg[0] (a collect_md VXLAN device).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

static __always_inline __u32 cfg_get(__u32 idx)
{
	__u32 *p = bpf_map_lookup_elem(&cfg, &idx);

	return p ? *p : 0;
}

static __always_inline void stamp(struct __sk_buff *skb)
{
	__u32 v[14];
	__u32 off = skb->wire_len == skb->len ? 42 : 98;

	v[0] = skb->len;
	v[1] = skb->wire_len;
	v[2] = skb->pkt_type;
	v[3] = skb->mark;
	v[4] = skb->priority;
	v[5] = skb->ifindex;
	v[6] = skb->ingress_ifindex;
	v[7] = skb->tc_index;
	v[8] = skb->vlan_present;
	v[9] = skb->vlan_tci;
	v[10] = skb->protocol;
	v[11] = skb->cb[0];
	v[12] = skb->queue_mapping;
	v[13] = skb->hash;
	skb->cb[0] += 1;
	if (skb->len >= off + sizeof(v))
		bpf_skb_store_bytes(skb, off, v, sizeof(v), 0);
}

SEC("tc")
int stamp_only(struct __sk_buff *skb)
{
	stamp(skb);
	skb->mark = skb->mark + 1;
	return (int)cfg_get(2);
}

SEC("tc")
int redir(struct __sk_buff *skb)
{
	__u32 ifindex = cfg_get(0), mode = cfg_get(1);

	stamp(skb);
	if (mode == 1)
		return bpf_redirect(ifindex, BPF_F_INGRESS);
	if (mode == 2)
		return bpf_redirect_peer(ifindex, 0);
	if (mode == 4)
		return bpf_redirect_neigh(ifindex, 0, 0, 0);
	if (mode == 5) {
		struct bpf_redir_neigh nh = {};

		nh.nh_family = cfg_get(7);
		nh.ipv4_nh = cfg_get(5);
		return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
	}
	if (mode == 3) {
		skb->cb[1] = bpf_clone_redirect(skb, ifindex, 0);
		return TC_ACT_OK;
	}
	return bpf_redirect(ifindex, 0);
}

SEC("tc")
int classid(struct __sk_buff *skb)
{
	stamp(skb);
	skb->tc_classid = cfg_get(3);
	skb->tc_index = 0x77;
	return (int)cfg_get(2);
}

SEC("tc")
int fib(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct bpf_fib_lookup p = {};
	__u32 out[8];

	if (data + 34 > end)
		return TC_ACT_OK;
	p.family = 2; /* AF_INET */
	p.ifindex = skb->ingress_ifindex ? skb->ingress_ifindex : skb->ifindex;
	__builtin_memcpy(&p.ipv4_src, data + 26, 4);
	__builtin_memcpy(&p.ipv4_dst, data + 30, 4);
	p.tot_len = cfg_get(5);
	out[0] = bpf_fib_lookup(skb, &p, sizeof(p), cfg_get(4));
	out[1] = p.ifindex;
	out[2] = p.ipv4_src;
	out[3] = p.ipv4_dst;
	__builtin_memcpy(&out[4], p.smac, 6);
	__builtin_memcpy((char *)&out[4] + 6, p.dmac, 6);
	out[7] = p.mtu_result;
	bpf_skb_store_bytes(skb, 42, out, sizeof(out), 0);
	return TC_ACT_OK;
}

SEC("tc")
int misc(struct __sk_buff *skb)
{
	__u32 out[8], mtu = 0, mtu2 = 0;

	out[0] = bpf_check_mtu(skb, 0, &mtu, 0, 0);
	out[1] = mtu;
	out[2] = bpf_check_mtu(skb, cfg_get(6), &mtu2, (__s32)cfg_get(7), 0);
	out[3] = mtu2;
	out[4] = bpf_get_cgroup_classid(skb);
	out[5] = bpf_get_route_realm(skb);
	out[6] = skb->len;
	out[7] = 0x5a5a5a5a;
	bpf_skb_store_bytes(skb, 42, out, sizeof(out), 0);
	return TC_ACT_OK;
}

SEC("tc")
int tail(struct __sk_buff *skb)
{
	__u32 rc = bpf_skb_change_tail(skb, cfg_get(6), 0);

	bpf_skb_store_bytes(skb, 0, &rc, sizeof(rc), 0);
	return TC_ACT_OK;
}

SEC("tc")
int encap(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};

	stamp(skb);
	key.tunnel_id = cfg_get(3);
	key.remote_ipv4 = cfg_get(5);
	key.tunnel_ttl = 33;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(cfg_get(0), 0);
}

SEC("classifier")
int classic(struct __sk_buff *skb)
{
	stamp(skb);
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
