/* Lesson 6: checksum-correct destination NAT.
 *
 * Packets to the service address 10.0.0.100 are rewritten to the backend 10.0.0.2.  The
 * IPv4 header checksum is fixed with bpf_l3_csum_replace, the TCP/UDP checksum (which
 * covers the pseudo-header) with bpf_l4_csum_replace and BPF_F_PSEUDO_HDR, and only then
 * is the address stored with bpf_skb_store_bytes.  For UDP a zero checksum means "none"
 * and must stay zero: BPF_F_MARK_MANGLED_0.
 */
#include "lesson.h"
#include <stddef.h>

#define SERVICE  bpf_htonl(0x0a000064)   /* 10.0.0.100 */
#define BACKEND  bpf_htonl(0x0a000002)   /* 10.0.0.2 */
#define IP_DST   (ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_CSUM  (ETH_HLEN + offsetof(struct iphdr, check))
#define L4_OFF   (ETH_HLEN + sizeof(struct iphdr))

DEFINE_COUNTERS(nat_hits, 4);

SEC("tc")
int dnat(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4(skb);
	__u32 old = SERVICE, new = BACKEND;
	__u32 l4_csum;
	__u8 proto;

	if (!ip || ip->daddr != SERVICE || ip->ihl != 5)
		return TC_ACT_OK;
	proto = ip->protocol;
	if (proto == IPPROTO_TCP)
		l4_csum = L4_OFF + offsetof(struct tcphdr, check);
	else if (proto == IPPROTO_UDP)
		l4_csum = L4_OFF + offsetof(struct udphdr, check);
	else
		return TC_ACT_OK;
	bpf_l4_csum_replace(skb, l4_csum, old, new, BPF_F_PSEUDO_HDR | sizeof(new) |
			    (proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0));
	bpf_l3_csum_replace(skb, IP_CSUM, old, new, sizeof(new));
	bpf_skb_store_bytes(skb, IP_DST, &new, sizeof(new), 0);
	count(&nat_hits, proto);
	return TC_ACT_OK;
}
