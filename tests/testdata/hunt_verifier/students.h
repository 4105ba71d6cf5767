/* SPDX-License-Identifier: GPL-2.0 */
/* Shared includes of the verifier hunt programs (tests/testdata/hunt_verifier): small tc
 * programs with the mistakes people make while learning tc/BPF, one program per object. */
#ifndef TCEMU_STUDENTS_H
#define TCEMU_STUDENTS_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#endif
