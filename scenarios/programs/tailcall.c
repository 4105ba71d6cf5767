/* Lesson 3: the tail-call protocol dispatcher of the 2015 bpf_tail_call commit.
 *
 * packet_parser reads the IPv4 protocol and jumps through the program array `jmp_table`
 * to parse_tcp or parse_udp (slots IPPROTO_TCP = 6 and IPPROTO_UDP = 17, filled at load
 * time from the `.values` initialiser).  A tail call replaces the running program: it
 * does not return.  When the slot is empty the call falls through and packet_parser
 * counts the packet as "other".
 */
#include "lesson.h"

DEFINE_COUNTERS(ports, 64);
DEFINE_COUNTERS(other, 8);

static __always_inline __u16 dport(struct __sk_buff *skb, struct iphdr *ip)
{
	void *end = (void *)(long)skb->data_end;
	struct udphdr *l4 = (void *)ip + sizeof(*ip);   /* no IP options in this lesson */

	if ((void *)(l4 + 1) > end)
		return 0;
	return bpf_ntohs(l4->dest);
}

SEC("tc")
int parse_tcp(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4(skb);

	if (ip)
		count(&ports, 0x60000 | dport(skb, ip));
	return TC_ACT_OK;
}

SEC("tc")
int parse_udp(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4(skb);

	if (ip)
		count(&ports, 0x110000 | dport(skb, ip));
	return TC_ACT_OK;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 32);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} jmp_table SEC(".maps") = {
	.values = {
		[IPPROTO_TCP] = (void *)&parse_tcp,
		[IPPROTO_UDP] = (void *)&parse_udp,
	},
};

SEC("tc")
int packet_parser(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4(skb);

	if (!ip)
		return TC_ACT_OK;
	bpf_tail_call(skb, &jmp_table, ip->protocol);
	count(&other, ip->protocol);
	return TC_ACT_OK;
}
