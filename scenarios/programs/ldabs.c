/* Lesson 10: parsing with the legacy LD_ABS/LD_IND instructions.
 *
 * Before direct packet access, programs read the packet with BPF_LD|BPF_ABS, which loads
 * big-endian values at an absolute offset and ends the program (returning 0) when the
 * offset is outside the packet.  This program counts IPv4 packets per protocol and per
 * destination port using only such loads; LD_IND uses the IHL for the L4 offset.
 */
#include "lesson.h"
#include <stddef.h>

DEFINE_COUNTERS(protos, 16);
DEFINE_COUNTERS(dports, 64);

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

SEC("tc")
int ldabs_parse(struct __sk_buff *skb)
{
	__u32 proto, ihl, port;

	if (load_half(skb, offsetof(struct ethhdr, h_proto)) != ETH_P_IP)
		return TC_ACT_OK;
	proto = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
	count(&protos, proto);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return TC_ACT_OK;
	ihl = (load_byte(skb, ETH_HLEN) & 0xf) * 4;
	port = load_half(skb, ETH_HLEN + ihl + offsetof(struct udphdr, dest));
	count(&dports, port);
	return TC_ACT_OK;
}
