/* Lesson 7: a classifier passes mark, tc_index and cb[] to an action.
 *
 * `classify` runs as a classic (not direct-action) cls_bpf classifier: its return value
 * is a class id, not a verdict.  It writes skb->mark, skb->cb[0] and skb->tc_index and
 * returns -1 ("use the filter's classid"), which makes the filter match and run its
 * actions.  `act` is the act_bpf action attached to that filter: it sees what the
 * classifier wrote and records it in `seen`.
 */
#include "lesson.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline void put(__u32 slot, __u64 value)
{
	__u64 *p = bpf_map_lookup_elem(&seen, &slot);

	if (p)
		*p = value;
}

SEC("classifier")
int classify(struct __sk_buff *skb)
{
	skb->mark = 0xcafe;
	skb->cb[0] = 0x1234;
	skb->tc_index = 7;
	return -1;
}

SEC("action")
int act(struct __sk_buff *skb)
{
	put(0, skb->mark);
	put(1, skb->cb[0]);
	put(2, skb->tc_index);
	return TC_ACT_OK;
}
