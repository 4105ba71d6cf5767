// SPDX-License-Identifier: GPL-2.0
/* Per-program state in global data the way libbpf programs keep it: a `const volatile`
 * config block in .rodata, initialised tables in .data, counters and a ring of recent
 * sources in .bss; updated with every atomic the ISA has (add/and/or/xor with and without
 * fetch, xchg, cmpxchg; 32 and 64 bits), indexed by packet bytes. */
#include "hunt.h"

const volatile struct {
	__u32 sample_every;
	__u32 ports[4];
	__u8 enabled;
} cfg = { .sample_every = 3, .ports = { 53, 80, 443, 8080 }, .enabled = 1 };

__u64 proto_bytes[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
__u32 flags32 = 0xf0f0f0f0;
__u64 flags64 = 0x0123456789abcdefULL;

struct {
	__u64 packets;
	__u64 last_len;
	__u32 recent[8];
	__u32 head;
	__u32 cas_ok;
	__u32 cas_fail;
	__u64 xchg_old;
} stats;

SEC("tc")
int globals(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u64 n, old;
	__u32 idx, o32;
	int i;

	if (!cfg.enabled)
		return TC_ACT_UNSPEC;
	n = __sync_fetch_and_add(&stats.packets, 1);
	stats.xchg_old = __sync_lock_test_and_set(&stats.last_len, (__u64)skb->len);
	if ((void *)(ip + 1) > end)
		return TC_ACT_OK;

	idx = ip->protocol & 7;
	__sync_fetch_and_add(&proto_bytes[idx], skb->len);
	o32 = __sync_fetch_and_or(&flags32, 1u << (ip->ttl & 31));
	put(0, o32);
	o32 = __sync_fetch_and_and(&flags32, ~(1u << (ip->tos & 31)));
	put(1, o32);
	o32 = __sync_fetch_and_xor(&flags32, ip->id);
	put(2, o32);
	__sync_fetch_and_xor(&flags64, (__u64)ip->saddr << 17);
	__sync_fetch_and_and(&flags64, ~((__u64)ip->daddr));
	__sync_fetch_and_or(&flags64, (__u64)skb->len << 40);
	old = __sync_val_compare_and_swap(&flags64, 0, 1);
	put(3, old);
	if (__sync_bool_compare_and_swap(&stats.head, n & 7, (n + 1) & 7))
		stats.cas_ok++;
	else
		stats.cas_fail++;
	o32 = __sync_val_compare_and_swap(&stats.recent[n & 7], 0, ip->saddr);
	put(4, o32);
	if (n % cfg.sample_every == 0)
		add(5, 1);
	for (i = 0; i < 4; i++) {
		struct udphdr *udp = (void *)ip + sizeof(*ip);

		if ((void *)(udp + 1) > end || ip->ihl != 5)
			break;
		if (bpf_ntohs(udp->dest) == cfg.ports[i]) {
			add(6 + i, 1);
			break;
		}
	}
	put(10, __sync_add_and_fetch(&proto_bytes[(idx + 1) & 7], 0x100));
	return TC_ACT_OK;
}
