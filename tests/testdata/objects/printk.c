// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_trace_printk (bpf_printk with up to three arguments) and bpf_trace_vprintk (four or
 * more): the return value is the length of the formatted message, deterministic for these
 * formats, and is stored per call; an invalid conversion (%n) fails with -EINVAL.
 */
#include "common.h"

DEFINE_SLOTS(out, 8);

SEC("tc")
int printk(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u16 proto = bpf_ntohs(skb->protocol);
	static const char bad[] = "bad %n\n";

	slot_set(&out, 0, bpf_printk("tcemu: len=%u proto=0x%x", len, proto));
	slot_set(&out, 1, bpf_printk("tcemu: %d %5u %-4x|", -(int)len, len, len));
	slot_set(&out, 2, bpf_printk("tcemu: %llu %lld %c", (__u64)len << 33,
				     -(__s64)len, 'A' + (len & 15)));
	slot_set(&out, 3, bpf_printk("tcemu: four %u %u %u %x", len, proto, len + 1, proto));
	slot_set(&out, 4, bpf_printk("tcemu: no args"));
	slot_set(&out, 5, bpf_trace_printk(bad, sizeof(bad), 1));
	slot_set(&out, 6, bpf_printk("tcemu: %%%u%%", len));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
