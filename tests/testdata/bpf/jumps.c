// SPDX-License-Identifier: GPL-2.0
/*
 * Jump coverage: every conditional jump (==, !=, unsigned >, >=, <, <=, signed s>, s>=, s<,
 * s<=, and the bit test &) with register and immediate operands, unconditional gotos and,
 * from -mcpu=v3 on, their 32-bit (JMP32, w register) forms. -mcpu=v1 has no <, <=, s<, s<=
 * jumps, so clang swaps the operands there.
 *
 * clang-19's C code generation never selects >=, <=, s>=, s<= or & (jset) jumps: it rewrites
 * them into the strict relations with swapped operands or an AND plus == 0. Those encodings
 * are produced with inline assembly (ASM_JUMPS below), which clang's integrated assembler
 * encodes; the verifier sees them like any other jump.
 */
#include "common.h"

DEFINE_OUT_MAP(jumps_out);

/* The operands live in map slots and every use re-reads them through a volatile pointer:
 * a comparison's refined bounds then die with the branch, so the verifier's state pruning
 * keeps the walk linear instead of doubling the states at each of the ~70 branches. */
#define IN_A 26
#define IN_B 27
#define IN_S 28
#define IN_T 29
#define IN_C 30
#define IN_D 31
#define SCRATCH 25
#define A (vout[IN_A])
#define B (vout[IN_B])
#define S ((__s64)vout[IN_S])
#define T ((__s64)vout[IN_T])
#define C ((__u32)vout[IN_C])
#define D ((__u32)vout[IN_D])

/* Each test stores into its own slot through a volatile pointer, so clang can neither merge
 * the branches into arithmetic nor sink the stores: every condition becomes a real jump. The
 * store is skipped when the condition is false, so clang emits the INVERTED comparison; each
 * relation is therefore tested in both polarities. */
#define TEST(i, cond)                                                                          \
	do {                                                                                   \
		if (cond)                                                                      \
			vout[(i) % SCRATCH] = (i);                                               \
	} while (0)

/* "if A OP B goto +1; A += 1" on 64-bit registers, with a register and an immediate operand. */
#define ASM_JUMP64(op, x, y)                                                                   \
	do {                                                                                   \
		__u64 x64 = (__u64)(x), y64 = (__u64)(y);                                      \
		asm volatile("if %[xa] " op " %[ya] goto +1\n\t%[xa] += 1\n\t"                     \
			     "if %[xa] " op " -3 goto +1\n\t%[xa] += 1"                         \
			     : [xa] "+r"(x64)                                                  \
			     : [ya] "r"(y64));                                                 \
		vout[SCRATCH] = x64;                                                           \
	} while (0)
#ifdef __BPF_FEATURE_JMP32
/* The same on 32-bit sub-registers (JMP32), which needs the alu32 "w" constraint (v3+). */
#define ASM_JUMP32(op, x, y)                                                                   \
	do {                                                                                   \
		__u32 x32 = (__u32)(x), y32 = (__u32)(y);                                      \
		asm volatile("if %[xa] " op " %[ya] goto +1\n\t%[xa] += 1\n\t"                     \
			     "if %[xa] " op " 77 goto +1\n\t%[xa] += 1"                         \
			     : [xa] "+w"(x32)                                                  \
			     : [ya] "w"(y32));                                                 \
		vout[SCRATCH] = x32;                                                           \
	} while (0)
#else
#define ASM_JUMP32(op, x, y) do { } while (0)
#endif
#define ASM_JUMPS()                                                                            \
	do {                                                                                   \
		ASM_JUMP64(">=", A, B);                                                        \
		ASM_JUMP64("<=", A, B);                                                        \
		ASM_JUMP64("s>=", S, T);                                                       \
		ASM_JUMP64("s<=", S, T);                                                       \
		ASM_JUMP64("&", A, B);                                                         \
		ASM_JUMP32(">=", C, D);                                                        \
		ASM_JUMP32("<=", C, D);                                                        \
		ASM_JUMP32("s>=", C, D);                                                       \
		ASM_JUMP32("s<=", C, D);                                                       \
		ASM_JUMP32("&", C, D);                                                         \
		ASM_JUMP32(">", C, D);                                                         \
		ASM_JUMP32("s<", C, D);                                                        \
	} while (0)

SEC("tc")
int jumps(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct slots *out = bpf_map_lookup_elem(&jumps_out, &zero);
	if (!out)
		return TC_ACT_OK;
	volatile __u64 *vout = out->v;

	/* Genuinely 64-bit operands, or clang narrows the compares to JMP32 at v3+. */
	vout[IN_A] = ((__u64)skb->len << 32) | skb->mark;
	vout[IN_B] = ((__u64)skb->hash << 32) | skb->priority;
	vout[IN_S] = (((__u64)skb->len << 32) | skb->mark) - skb->tstamp;
	vout[IN_T] = (((__u64)skb->hash << 32) | skb->priority) ^ skb->tstamp;
	vout[IN_C] = skb->tc_index;
	vout[IN_D] = skb->queue_mapping;

	/* 64-bit, register operands. */
	TEST(0, A == B);
	TEST(1, A != B);
	TEST(2, A > B);
	TEST(3, A <= B);
	TEST(4, A >= B);
	TEST(5, A < B);
	TEST(6, S > T);
	TEST(7, S <= T);
	TEST(8, S >= T);
	TEST(9, S < T);
	TEST(10, A & B);
	TEST(11, !(A & B));

	/* 64-bit, immediate operands. */
	TEST(12, A == 60);
	TEST(13, B != 61);
	TEST(14, A > 1500);
	TEST(15, B <= 1501);
	TEST(16, A >= 1502);
	TEST(17, B < 1503);
	TEST(18, S > -5);
	TEST(19, T <= -6);
	TEST(20, S >= -7);
	TEST(21, T < -8);
	TEST(22, A & 0x8000);
	TEST(23, !(B & 0x4000));

	/* 32-bit operands (JMP32 from -mcpu=v3). */
	TEST(24, C == D);
	TEST(25, C != D);
	TEST(26, C > D);
	TEST(27, C <= D);
	TEST(28, C >= D);
	TEST(29, C < D);
	TEST(30, (__s32)C > (__s32)D);
	TEST(31, (__s32)C <= (__s32)D);
	TEST(32, (__s32)C >= (__s32)D);
	TEST(33, (__s32)C < (__s32)D);
	TEST(34, C & D);
	TEST(35, !(C & D));
	TEST(36, C == 100);
	TEST(37, C != 101);
	TEST(38, C > 102);
	TEST(39, C <= 103);
	TEST(40, D >= 104);
	TEST(41, D < 105);
	TEST(42, (__s32)C > -100);
	TEST(43, (__s32)C <= -101);
	TEST(44, (__s32)D >= -102);
	TEST(45, (__s32)D < -103);
	TEST(46, C & 0x40);
	TEST(47, !(D & 0x80));

	ASM_JUMPS();

	/* Unconditional gotos: an if/else (jump over the else arm) and a small loop. */
	if (A > B + 5)
		vout[SCRATCH] = 1;
	else
		vout[SCRATCH - 1] = 2;
	__u64 acc = 0;
	__u32 n = C & 7;
	for (__u32 i = 0; i < n; i++)
		acc += vout[i];
	vout[0] = acc;
	return (A & 1) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
