// SPDX-License-Identifier: GPL-2.0
/* A text-protocol classifier: the UDP payload copied into a buffer and parsed with
 * bpf_strtol/bpf_strtoul in every base (0, 8, 10, 16), bad bases and flag bits, short
 * lengths; the result variable is pre-set so that whether the helper writes it shows;
 * bpf_strncmp against method names; bpf_snprintf of a log line (%d %u %x %lld %s %c %pI4
 * %%, widths and flags) and into a buffer too small for it. */
#include "hunt.h"

#define BUF 80

static const char get[] = "GET ";
static const char hex[] = "0x1f";
static const char fmt[] = "%s len=%u id=%x v=%lld [%5d|%-4x|%c] %pI4 100%%";
static const char fmt2[] = "<%12pI4|%-3s|%08x|%+d|% d>";

static __always_inline void parse(__u32 slot, const char *buf, __u32 len, __u64 flags)
{
	long v = 0x5555;
	unsigned long u = 0x6666;
	long r;

	r = bpf_strtol(buf, len, flags, &v);
	put(slot, ((__u64)(__u32)r << 32) | (__u32)v);
	put(slot + 1, v);
	r = bpf_strtoul(buf, len, flags, &u);
	put(slot + 2, ((__u64)(__u32)r << 32) | (__u32)u);
	put(slot + 3, u);
}

SEC("tc")
int strings(struct __sk_buff *skb)
{
	char buf[BUF];
	char out[96];
	__u64 args[8];
	long r;

	__builtin_memset(buf, 0, sizeof(buf));
	__builtin_memset(out, 0, sizeof(out));
	if (bpf_skb_load_bytes(skb, 42, buf, BUF) < 0)
		return TC_ACT_UNSPEC;
	parse(0, buf, BUF, 0);
	parse(4, buf, BUF, 8);
	parse(8, buf, BUF, 10);
	parse(12, buf, BUF, 16);
	parse(16, buf, BUF, 2);
	parse(20, buf, BUF, 0x20 | 10);
	parse(24, buf, 3, 0);
	parse(28, buf, 1, 16);
	put(32, bpf_strncmp(buf, 4, get));
	put(33, bpf_strncmp(buf, BUF, hex));
	put(34, bpf_strncmp(buf, 2, hex));

	buf[15] = 0;
	args[0] = (__u64)(long)buf;
	args[1] = skb->len;
	args[2] = 0xbeef;
	args[3] = -1234567890123LL;
	args[4] = -42;
	args[5] = 0xab;
	args[6] = 'Z';
	args[7] = (__u64)(long)&args[2];
	r = bpf_snprintf(out, sizeof(out), fmt, args, sizeof(args));
	put(35, r);
	if (r > 0) {
		__u64 w[12];

		__builtin_memcpy(w, out, sizeof(w));
		for (int i = 0; i < 12; i++)
			put(36 + i, w[i]);
	}
	r = bpf_snprintf(out, 8, fmt, args, sizeof(args));
	put(48, r);
	put(49, *(__u64 *)out);
	r = bpf_snprintf(out, 0, fmt, args, sizeof(args));
	put(50, r);
	__builtin_memset(out, 0, sizeof(out));
	args[0] = (__u64)(long)&args[2];
	args[1] = (__u64)(long)buf;
	r = bpf_snprintf(out, 48, fmt2, args, 40);
	put(51, r);
	{
		__u64 w[6];

		__builtin_memcpy(w, out, sizeof(w));
		for (int i = 0; i < 6; i++)
			put(52 + i, w[i]);
	}
	return TC_ACT_OK;
}
