/* SPDX-License-Identifier: GPL-2.0 */
/* Shared includes for tcemu's BTF test objects. */
#ifndef TCEMU_BTF_COMMON_H
#define TCEMU_BTF_COMMON_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#endif
