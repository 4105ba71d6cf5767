/* Lesson 4: a port mirror with bpf_clone_redirect.
 *
 * Every frame arriving on the monitored device is cloned and the clone is sent out of the
 * device whose ifindex is in `config[0]` (set by the scenario).  The original continues
 * untouched: the program returns TC_ACT_OK.  clone_redirect sends the copy immediately,
 * inside the helper call, and returns that transmission's result.
 */
#include "lesson.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

DEFINE_COUNTERS(results, 8);

SEC("tc")
int mirror(struct __sk_buff *skb)
{
	__u32 zero = 0, *ifindex = bpf_map_lookup_elem(&config, &zero);
	long err;

	if (!ifindex || !*ifindex)
		return TC_ACT_OK;
	err = bpf_clone_redirect(skb, *ifindex, 0);
	count(&results, (__u32)err);
	return TC_ACT_OK;
}
