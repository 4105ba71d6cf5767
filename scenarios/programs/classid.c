/* Lesson 8: a direct-action classifier steers packets into classes of a classful qdisc.
 *
 * Attached as `classid 1:` to the root htb (or prio) qdisc 1:, the program writes the
 * class minor into skb->tc_classid and returns TC_ACT_OK; cls_bpf then reports class
 * TC_H_MAJ(1:) | minor.  DNS (UDP port 53) goes to 1:10, everything else to 1:20.
 */
#include "lesson.h"

SEC("tc")
int steer(struct __sk_buff *skb)
{
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = ipv4(skb);
	struct udphdr *udp;

	skb->tc_classid = 0x20;
	if (!ip || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_OK;
	udp = (void *)ip + sizeof(*ip);
	if ((void *)(udp + 1) <= end && udp->dest == bpf_htons(53))
		skb->tc_classid = 0x10;
	return TC_ACT_OK;
}
