// SPDX-License-Identifier: GPL-2.0
/*
 * ALU coverage: 64-bit and (from -mcpu=v3) 32-bit arithmetic, shifts (logical and
 * arithmetic), negation, unsigned division/modulo by a register and by an immediate, signed
 * division/modulo (-mcpu=v4: sdiv/smod), sign-extending moves (v4: movsx; earlier CPUs
 * lower a cast of signed char/short/int to lsh+arsh), byte swaps (be16/be32/be64, v4 emits
 * bswap16/32/64) and 64-bit immediates (ld_imm64).
 */
#include "common.h"

DEFINE_OUT_MAP(alu_out);

SEC("tc")
int alu(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct slots *out = bpf_map_lookup_elem(&alu_out, &zero);
	if (!out)
		return TC_ACT_OK;

	/* Opaque inputs: the compiler cannot fold these. Most are 32-bit context fields, which
	 * clang narrows to 32-bit operations at v3+; now is a genuinely 64-bit value. */
	__u64 now = bpf_ktime_get_ns();
	__u64 a = skb->len;
	__u64 b = skb->mark | 1; /* never zero, but the compiler does not care */
	__u32 c = skb->priority;
	__u32 d = skb->hash;
	__s64 s = (__s64)(a - 1000);
	__s64 t = (__s64)(b - 7);

	/* 64-bit ALU, register and immediate operands. */
	out->v[0] = a + b;
	out->v[1] = (a - b) * 13;
	out->v[2] = (a / b) ^ (now / b);
	out->v[3] = (a % (b + 3)) ^ (now % (b + 5));
	out->v[4] = ((a | 0x40) ^ (b & 0xff00)) ^ 0x5a;
	out->v[5] = (a << 3) + (b >> 5);
	out->v[6] = (__u64)(s >> 7) + (__u64)(t >> (a & 63));
	out->v[7] = -a;
	out->v[8] = (a / 10) ^ (now / 1000);
	out->v[9] = (b % 10) ^ (now % 1000);
	out->v[10] = (a << (b & 63)) | (a >> (c & 63));
	out->v[11] = a * b;

	/* 32-bit ALU (w registers from -mcpu=v3 on). */
	out->v[12] = (__u32)(c + d);
	out->v[13] = (__u32)((c - d) * 7);
	out->v[14] = (__u32)(c / (d | 1));
	out->v[15] = (__u32)(c % (d | 3)) + (__u32)(d % 17);
	out->v[16] = (__u32)((c << 4) ^ (d >> 3) ^ (__u32)((__s32)c >> 2) ^ 0x77);
	out->v[10] ^= (__u32)((c << (d & 31)) + (c >> (d & 31)) + (__u32)((__s32)d >> (c & 31)));
	out->v[17] = (__u32)(-c) & (d | 0x1000);

	/* Sign extension: movsx on v4, shifts before. */
	out->v[18] = (__u64)(__s64)(__s8)a;
	out->v[19] = (__u64)(__s64)(__s16)b;
	out->v[20] = (__u64)(__s64)(__s32)(a + b);
	out->v[21] = (__u32)(__s32)(__s8)c;
	out->v[22] = (__u32)(__s32)(__s16)d;

	/* Byte swaps: be16/be32/be64 (bswap on v4). */
	out->v[23] = bpf_htons((__u16)a);
	out->v[24] = bpf_ntohl((__u32)b);
	out->v[25] = bpf_cpu_to_be64(a * b);

	/* 64-bit immediates. */
	out->v[26] = a ^ 0x0123456789abcdefULL;
	out->v[27] = b + 0xfffffffff0000000ULL;

#ifdef __BPF_FEATURE_SDIV_SMOD
	/* Signed division and modulo (64- and 32-bit, register and immediate). */
	out->v[28] = (__u64)(s / t) + (__u64)((s + 5) % (t | 1));
	out->v[29] = (__u64)(s % 1000003) + (__u64)((t + 1) / -7);
	out->v[30] = (__u32)((__s32)c / (__s32)(d | 1)) ^ (__u32)((__s32)(c + 1) % (__s32)(d | 2));
	out->v[31] = (__u32)((__s32)c / 5) ^ (__u32)((__s32)d % -3);
#endif
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
