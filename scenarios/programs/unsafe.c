/* Lesson 9: the verifier rejects a program that reads the packet without proving the
 * read stays inside it.
 *
 * `unchecked` reads the IPv4 protocol byte without comparing against data_end first; the
 * verifier refuses it ("invalid access to packet").  `checked` is the same program with
 * the bounds check, and loads.
 */
#include "lesson.h"

SEC("tc")
int unchecked(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	return ip->protocol == IPPROTO_ICMP ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int checked(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);

	if ((void *)(ip + 1) > end)
		return TC_ACT_OK;
	return ip->protocol == IPPROTO_ICMP ? TC_ACT_SHOT : TC_ACT_OK;
}
