/* VXLAN metadata from BPF (scenario vxlan-fixed-to-md).
 *
 * set_key (egress of a collect_md device): the tunnel of each packet comes from `tun`,
 * keyed by the inner UDP destination port (0 for anything else): VNI, remote (host
 * order), helper flags, tos, ttl, label and which size to pass (0 the whole struct, 1
 * the compat size ending before tunnel_label, 2 an invalid size).  No entry: no
 * metadata (the device drops the packet).  The helper's result is kept in `results`
 * under the port.
 * get_key (ingress of a VXLAN device): the key as bpf_skb_get_tunnel_key returns it
 * with flags 0 and BPF_F_TUNINFO_FLAGS, and bpf_skb_get_tunnel_opt's result, kept in
 * `keys` in arrival order; observe() records the skb.
 */
#include "hunt.h"

struct tun {
	__u32 vni;
	__u32 remote;
	__u32 flags;
	__u8 tos;
	__u8 ttl;
	__u8 size;
	__u8 pad;
	__u32 label;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct tun);
} tun SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __s64);
} results SEC(".maps");

struct got {
	__s32 ret;
	__u32 tunnel_id;
	__u32 remote_ipv4;
	__u8 tos;
	__u8 ttl;
	__u16 tunnel_ext;
	__u32 label;
	__s32 ret_flags;
	__u16 tunnel_flags;
	__u16 pad;
	__u32 remote_flags;
	__s32 opt_ret;
	__s32 v6_ret;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct got);
} keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} nkeys SEC(".maps");

SEC("tc")
int set_key(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	__u32 port = udp_dport(skb), size;
	struct tun *t;
	__s64 ret;

	observe(skb, 1);
	t = bpf_map_lookup_elem(&tun, &port);
	if (!t)
		return TC_ACT_OK;
	key.tunnel_id = t->vni;
	key.remote_ipv4 = t->remote;
	key.tunnel_tos = t->tos;
	key.tunnel_ttl = t->ttl;
	key.tunnel_label = t->label;
	size = sizeof(key);
	if (t->size == 1)
		size = offsetof(struct bpf_tunnel_key, tunnel_label);
	else if (t->size == 2)
		size = 20;
	ret = bpf_skb_set_tunnel_key(skb, &key, size, t->flags);
	bpf_map_update_elem(&results, &port, &ret, BPF_ANY);
	return TC_ACT_OK;
}

SEC("tc")
int get_key(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {}, key2 = {};
	struct got g = {};
	__u8 opt[8];
	__u32 zero = 0, *n;

	observe(skb, 0);
	n = bpf_map_lookup_elem(&nkeys, &zero);
	if (!n)
		return TC_ACT_OK;
	g.ret = bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0);
	g.tunnel_id = key.tunnel_id;
	g.remote_ipv4 = key.remote_ipv4;
	g.tos = key.tunnel_tos;
	g.ttl = key.tunnel_ttl;
	g.tunnel_ext = key.tunnel_ext;
	g.label = key.tunnel_label;
	g.ret_flags = bpf_skb_get_tunnel_key(skb, &key2, sizeof(key2), BPF_F_TUNINFO_FLAGS);
	g.tunnel_flags = key2.tunnel_flags;
	g.remote_flags = key2.remote_ipv4;
	g.opt_ret = bpf_skb_get_tunnel_opt(skb, opt, sizeof(opt));
	g.v6_ret = bpf_skb_get_tunnel_key(skb, &key2, sizeof(key2), BPF_F_TUNINFO_IPV6);
	bpf_map_update_elem(&keys, n, &g, BPF_ANY);
	*n += 1;
	return TC_ACT_OK;
}
