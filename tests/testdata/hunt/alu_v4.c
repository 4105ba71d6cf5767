// SPDX-License-Identifier: GPL-2.0
/* Arithmetic a metering or hashing program does, compiled for cpu v4 (sign-extending
 * loads and moves, signed division and modulo, byte swaps, 32-bit jumps): packet bytes
 * read as signed chars and shorts, divided and reduced by other packet fields (including
 * zero and INT_MIN / -1), shifted by packet-controlled amounts, folded into hashes. */
#include "hunt.h"

static __noinline __s64 sdiv64(__s64 a, __s64 b)
{
	return b ? a / b : -1;
}

static __noinline __s32 smod32(__s32 a, __s32 b)
{
	return b ? a % b : -2;
}

SEC("tc")
int alu_v4(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *p = data;
	__s8 c0, c1;
	__s16 h0, h1;
	__s32 w0, w1;
	__s64 q0, q1;
	__u64 h = 0xcbf29ce484222325ULL;
	int i;

	if (data + 64 > end)
		return TC_ACT_UNSPEC;
	c0 = *(__s8 *)(p + 42);
	c1 = *(__s8 *)(p + 43);
	h0 = *(__s16 *)(p + 44);
	h1 = *(__s16 *)(p + 46);
	w0 = *(__s32 *)(p + 48);
	w1 = *(__s32 *)(p + 52);
	q0 = *(__s64 *)(p + 56);
	q1 = (__s64)w1 * c1;

	put(0, (__s64)c0 * h0);
	put(1, (__s64)(c0 >> 2) + (h1 >> 3));
	put(2, sdiv64(q0, c1));
	put(3, sdiv64(w0, h1));
	put(4, smod32(w0, c0));
	put(5, smod32(w1, h0));
	put(6, sdiv64(q0, q1));
	put(7, (__s64)w0 / (c1 | 1));
	put(8, w0 % (h0 | 1));
	put(9, (__u32)w0 / ((__u32)c0 | 1));
	put(10, (__u64)q0 % ((__u64)h1 | 1));
	put(11, __builtin_bswap16(h0));
	put(12, __builtin_bswap32(w0));
	put(13, __builtin_bswap64(q0));
	put(14, (__u32)w0 << (c0 & 31));
	put(15, (__s32)w1 >> (h1 & 31));
	put(16, q0 >> (c1 & 63));
	put(17, (__u64)q0 >> (c0 & 63));
	put(18, (__s64)(__s32)(w0 + w1));
	put(19, (__s64)(__s16)(h0 * h1));
	put(20, (__s64)(__s8)(c0 - c1));
	for (i = 0; i < 16; i++) {
		__s8 b = *(__s8 *)(p + 42 + i);

		h ^= (__u64)(__s64)b;
		h *= 0x100000001b3ULL;
		if (b < -100)
			h = (h << 7) | (h >> 57);
	}
	put(21, h);
	put(22, w0 < 0 ? 1 : w0 > 1000 ? 2 : (w0 & 1) ? 3 : 4);
	put(23, (__s64)c0 < (__s64)h0);
	put(24, (__u32)w0 > (__u32)w1);
	return (c0 < 0) ? TC_ACT_SHOT : TC_ACT_OK;
}
