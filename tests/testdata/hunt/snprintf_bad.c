// SPDX-License-Identifier: GPL-2.0
/* Rejected by the verifier: a bpf_snprintf whose constant format has more conversions than
 * the data array has u64 slots (check_bpf_snprintf_call: "Invalid format string"). */
#include "hunt.h"

static const char fmt[] = "%u %u %u";

SEC("tc")
int snprintf_bad(struct __sk_buff *skb)
{
	__u64 args[2] = { skb->len, skb->mark };
	char out[32];

	return bpf_snprintf(out, sizeof(out), fmt, args, sizeof(args)) > 0;
}
