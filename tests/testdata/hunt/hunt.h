/* SPDX-License-Identifier: GPL-2.0 */
/* Shared definitions of the program-level hunt objects (tests/testdata/hunt). */
#ifndef TCEMU_HUNT_H
#define TCEMU_HUNT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ICMP_ECHO 8
#define ICMP_ECHOREPLY 0
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* Result slots: an ARRAY of u64 the test compares like every other map. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} res SEC(".maps");

static __always_inline void put(__u32 idx, __u64 value)
{
	__u64 *p = bpf_map_lookup_elem(&res, &idx);

	if (p)
		*p = value;
}

static __always_inline void add(__u32 idx, __u64 value)
{
	__u64 *p = bpf_map_lookup_elem(&res, &idx);

	if (p)
		__sync_fetch_and_add(p, value);
}

char LICENSE[] SEC("license") = "GPL";

#endif
