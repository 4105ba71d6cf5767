/* Lesson 5: an egress policy by net_cls classid.
 *
 * Tasks in a net_cls cgroup stamp their sockets with a classid; at tc egress
 * bpf_get_cgroup_classid() returns it.  Only the class 1:10 may send; everything else is
 * dropped and counted by classid.
 */
#include "lesson.h"

DEFINE_COUNTERS(verdicts, 16);

SEC("tc")
int netcls_policy(struct __sk_buff *skb)
{
	__u32 classid = bpf_get_cgroup_classid(skb);

	count(&verdicts, classid);
	return classid == 0x10010 ? TC_ACT_OK : TC_ACT_SHOT;
}
