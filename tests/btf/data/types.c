// SPDX-License-Identifier: GPL-2.0
/*
 * Type coverage for the BTF parser: structs with bitfields, unions (named and anonymous),
 * enums (unsigned, signed, 64-bit), typedef chains, one- and two-dimensional arrays,
 * function pointers, const/volatile/restrict, floating point, a forward declaration,
 * decl and type tags, CO-RE relocations (preserve_access_index), globals in .data,
 * .rodata and .bss, an extern __kconfig variable and extern __ksym functions (kfuncs).
 */
#include "common.h"

typedef unsigned int u32_t;
typedef u32_t addr_t;		/* a typedef of a typedef */
typedef addr_t daddr_t;		/* and one more level */

enum color { RED, GREEN = 5, BLUE };
enum delta { DOWN = -1, STILL = 0, UP = 1 };		/* signed: kind_flag set */
enum big { SMALL = 1, HUGE = 0x123456789aULL };	/* ENUM64 */
enum sbig { NEG_HUGE = -0x100000000LL, POS = 2 };	/* signed ENUM64 */

struct flow_key {
	addr_t saddr;
	daddr_t daddr;
	unsigned short sport;
	unsigned short dport;
	unsigned char proto : 4;	/* bitfields: struct gets kind_flag */
	unsigned char flags : 3;
	unsigned char valid : 1;
	unsigned int hash : 20;
	int signed_bits : 7;
};

union addr {
	__u32 v4;
	__u8 v6[16];
	struct {
		__u64 hi;
		__u64 lo;
	} halves;
};

struct opaque;	/* never defined: BTF_KIND_FWD */
union opaque_u;	/* a union forward declaration */

typedef int (*handler_fn)(struct __sk_buff *skb, const void *data, unsigned long len);

struct ops {
	handler_fn handle;
	void (*done)(int code, ...);		/* variadic function pointer */
	const char *name;
	volatile int counter;
	int *restrict out;
	struct opaque *priv;
	union opaque_u *upriv;
	float ratio;
	double scale;
	long double wide;
	enum color color;
	enum delta delta;
	enum big big;
	enum sbig sbig;
	_Bool enabled;
	char label[8];
	int grid[3][4];
	union addr addr;
	struct {
		int x, y;
	} point;			/* anonymous struct member */
	union {
		int as_int;
		float as_float;
	};				/* anonymous union member, no name */
};

struct tagged {
	int a __attribute__((btf_decl_tag("member_tag")));
	int __attribute__((btf_type_tag("user"))) *uptr;
} __attribute__((btf_decl_tag("struct_tag")));

/* CO-RE: accesses through this struct get .BTF.ext core_relo records. */
struct sk_buff_view {
	__u32 len;
	__u32 mark;
} __attribute__((preserve_access_index));

struct flow_key last_key;				/* .bss */
struct ops ops_table = { .name = "ops", .ratio = 1.5f };	/* .data */
const volatile __u32 config_limit = 100;		/* .rodata */
const char banner[] = "tcemu";				/* .rodata */
union addr addrs[4];					/* .bss */
struct tagged tagged_var __attribute__((btf_decl_tag("var_tag")));
static int static_counter;				/* a static .bss var */
extern unsigned int LINUX_KERNEL_VERSION __kconfig;	/* extern VAR in DATASEC .kconfig */
extern void bpf_rcu_read_lock(void) __ksym;		/* extern FUNC in DATASEC .ksyms */
extern void bpf_rcu_read_unlock(void) __ksym;

SEC("tc")
int types_prog(struct __sk_buff *skb)
{
	struct sk_buff_view *view = (void *)(long)skb->data;
	__u32 limit = config_limit;

	last_key.saddr = skb->remote_ip4;
	last_key.proto = skb->protocol & 0xf;
	last_key.hash = skb->hash;
	addrs[skb->queue_mapping & 3].v4 = skb->mark;
	static_counter++;
	bpf_rcu_read_lock();
	last_key.daddr = LINUX_KERNEL_VERSION;
	bpf_rcu_read_unlock();
	if (ops_table.counter > (int)limit)
		return TC_ACT_SHOT;
	if (__builtin_preserve_access_index(view->mark) == 7)
		return TC_ACT_SHOT;
	return tagged_var.a ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
