// SPDX-License-Identifier: GPL-2.0
/* An IPv6 policy table in an LPM_TRIE: the test preloads ::/0, 2001:db8::/32,
 * 2001:db8:1::/48, 2001:db8:1:2::/64; the program looks up the destination (longest match
 * decides the verdict class), learns a /128 for every new source, deletes the /48 when a
 * packet carries hop limit 1, and probes invalid prefix lengths and deletes of absent
 * prefixes. */
#include "hunt.h"

struct key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct key6);
	__type(value, __u32);
} policy SEC(".maps");

SEC("tc")
int lpm6(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	struct key6 k = {};
	__u32 *cls, val;
	long r;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0 || ip6.version != 6)
		return TC_ACT_UNSPEC;
	k.prefixlen = 128;
	__builtin_memcpy(k.addr, &ip6.daddr, 16);
	cls = bpf_map_lookup_elem(&policy, &k);
	put(0, cls ? *cls : 0xffff);
	if (cls)
		__sync_fetch_and_add(cls, 0x10000);

	/* a shorter lookup key: only its first prefixlen bits count */
	k.prefixlen = 40;
	cls = bpf_map_lookup_elem(&policy, &k);
	put(1, cls ? *cls & 0xffff : 0xffff);
	k.prefixlen = 129;
	cls = bpf_map_lookup_elem(&policy, &k);
	put(2, cls ? 1 : 0);
	val = 7;
	put(3, bpf_map_update_elem(&policy, &k, &val, BPF_ANY));

	k.prefixlen = 128;
	__builtin_memcpy(k.addr, &ip6.saddr, 16);
	val = 0x80 | ip6.hop_limit;
	r = bpf_map_update_elem(&policy, &k, &val, BPF_NOEXIST);
	put(4, r);
	r = bpf_map_update_elem(&policy, &k, &val, BPF_EXIST);
	put(5, r);

	if (ip6.hop_limit == 1) {
		struct key6 p48 = { .prefixlen = 48,
				    .addr = { 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01 } };

		put(6, bpf_map_delete_elem(&policy, &p48));
		put(7, bpf_map_delete_elem(&policy, &p48));
		p48.prefixlen = 47;
		put(8, bpf_map_delete_elem(&policy, &p48));
	}
	/* a prefix with host bits set beyond its length */
	{
		struct key6 odd = { .prefixlen = 16, .addr = { 0xfe, 0x80, 0xff, 0xff } };

		val = 0x55;
		put(9, bpf_map_update_elem(&policy, &odd, &val, BPF_ANY));
	}
	return cls ? TC_ACT_OK : TC_ACT_SHOT;
}
