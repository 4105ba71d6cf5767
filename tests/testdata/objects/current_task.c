// SPDX-License-Identifier: GPL-2.0
/*
 * Current-task helpers: bpf_get_current_pid_tgid, bpf_get_current_uid_gid and
 * bpf_get_current_comm.  In BPF_PROG_TEST_RUN the current task is the test process; tcemu
 * reports its injected Env task, so the values are excluded from the comparison (the
 * "task" array) while the return code of get_current_comm and the packet count compare.
 */
#include "common.h"

struct task_info {
	__u64 pid_tgid;
	__u64 uid_gid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct task_info);
} task SEC(".maps");

/* 0 comm rc, 1 packets, 2 comm rc with a zero-size buffer */
DEFINE_SLOTS(out, 3);

SEC("tc")
int current_task(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct task_info *t = bpf_map_lookup_elem(&task, &zero);

	if (!t)
		return TC_ACT_OK;
	t->pid_tgid = bpf_get_current_pid_tgid();
	t->uid_gid = bpf_get_current_uid_gid();
	slot_set(&out, 0, bpf_get_current_comm(t->comm, sizeof(t->comm)));
	slot_add(&out, 1, 1);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
