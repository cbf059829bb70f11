// SPDX-License-Identifier: MIT
/*
 * The long-mode entry state of src/vmm/boot.c, without KVM: tables built
 * into a micro machine's RAM, then checked with the software walker (GVA ==
 * GPA across 1 GiB and 4 GiB boundaries, U and W everywhere), the register
 * state, and the GDT, TSS, IDT and stubs as the CPU would read them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/memory.h>

#include "boot.h"

#define KiB 1024ull
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

#define TABLES 0x10000ull
#define TABLES_SIZE 0x6f000ull

struct vm {
	struct mv_machine *m;
	struct mv_as *mem;
	struct mv_x86_boot b;
	struct kvm_sregs s;
	struct kvm_regs r;
};

static void vm_init(struct vm *vm, uint64_t ram)
{
	struct mv_error err;

	memset(vm, 0, sizeof(*vm));
	assert_int_equal(mv_machine_preset("micro", ram, &vm->m, &err), 0);
	vm->mem = mv_machine_find_as(vm->m, "memory");
	assert_non_null(vm->mem);
	vm->b = (struct mv_x86_boot){ .tables = TABLES,
				      .tables_size = TABLES_SIZE,
				      .map_end = 4 * GiB,
				      .entry = 0x100000,
				      .stack_top = 0x9f000,
				      .arg = { 0x1000, 1, 2, 3 } };
}

static void vm_fini(struct vm *vm)
{
	mv_machine_free(vm->m);
}

static int build(struct vm *vm)
{
	return mv_x86_boot_build(vm->mem, &vm->b, &vm->s, &vm->r);
}

/* @gva maps to itself with a leaf of @size, writable and user. */
static void expect_identity(struct vm *vm, mv_gva_t gva, uint64_t size)
{
	struct mv_x86_walk w;
	char why[256];
	int ret = mv_x86_walk(vm->mem, vm->s.cr3, gva, &w, why, sizeof(why));

	if (ret)
		fail_msg("walk of 0x%llx: %d %s", (unsigned long long)gva, ret,
			 why);
	assert_int_equal(w.gpa, gva);
	assert_int_equal(w.page_size, size);
	assert_int_equal(w.level, size == 4 * KiB ? 1 : 2);
	assert_true(w.writable);
	assert_true(w.user);
	assert_false(w.nx);
	assert_int_equal(w.table_gpa[0], vm->s.cr3);
}

/* @gva is unmapped, and the walk says so at @level. */
static void expect_unmapped(struct vm *vm, mv_gva_t gva, int level,
			    const char *name)
{
	struct mv_x86_walk w;
	char why[256];

	assert_int_equal(mv_x86_walk(vm->mem, vm->s.cr3, gva, &w, why,
				     sizeof(why)),
			 -EFAULT);
	assert_non_null(strstr(why, name));
	assert_non_null(strstr(why, "not present"));
	assert_int_not_equal(w.table_gpa[4 - level], 0);
	if (level > 1)
		assert_int_equal(w.table_gpa[4 - level + 1], 0);
}

static uint64_t ldq(struct vm *vm, mv_gpa_t gpa)
{
	uint64_t v = 0;

	assert_int_equal(mv_as_ldq_le(vm->mem, gpa, &v), 0);
	return v;
}

static void test_identity_2m_pages(void **state)
{
	static const uint64_t gvas[] = {
		0,
		0x1234,
		2 * MiB - 1,
		2 * MiB,
		GiB - 8,
		GiB,
		GiB + 2 * MiB,
		2 * GiB + 0x345,
		3 * GiB - 1,
		3 * GiB + 0x10,
		4 * GiB - 0x1000,
		4 * GiB - 1,
	};
	struct vm vm;
	size_t i;

	(void)state;
	vm_init(&vm, 64 * MiB);
	assert_int_equal(build(&vm), 0);
	for (i = 0; i < sizeof(gvas) / sizeof(gvas[0]); i++)
		expect_identity(&vm, gvas[i], 2 * MiB);
	expect_unmapped(&vm, 4 * GiB, 3, "PDPTE");
	vm_fini(&vm);
}

/* map_end is rounded up to 2 MiB; the rest of the last PD is empty. */
static void test_map_end_rounds_to_2m(void **state)
{
	struct vm vm;

	(void)state;
	vm_init(&vm, 64 * MiB);
	vm.b.map_end = GiB + 1;
	assert_int_equal(build(&vm), 0);
	expect_identity(&vm, GiB + 2 * MiB - 1, 2 * MiB);
	expect_unmapped(&vm, GiB + 2 * MiB, 2, "PDE");
	expect_unmapped(&vm, 2 * GiB, 3, "PDPTE");
	expect_unmapped(&vm, 512 * GiB, 4, "PML4E");
	vm_fini(&vm);
}

static void test_identity_4k_pages(void **state)
{
	static const uint64_t gvas[] = {
		0,
		0x1000,
		0x1fff,
		0x10000 + 8,
		2 * MiB - 1,
		2 * MiB,
		GiB - 0x1000,
		GiB,
		GiB + 0x5123,
		2 * GiB - 1,
		2 * GiB + 4097,
		4 * GiB - 1,
	};
	struct vm vm;
	size_t i;

	(void)state;
	vm_init(&vm, 64 * MiB);
	vm.b.pages_4k = true;
	vm.b.tables = 16 * MiB;
	vm.b.tables_size = 16 * MiB;
	assert_int_equal(build(&vm), 0);
	for (i = 0; i < sizeof(gvas) / sizeof(gvas[0]); i++)
		expect_identity(&vm, gvas[i], 4 * KiB);
	expect_unmapped(&vm, 4 * GiB, 3, "PDPTE");
	vm_fini(&vm);
}

/* 6 GiB of RAM: 3 GiB below the split, 3 GiB from 4 GiB. */
static void test_identity_above_4g(void **state)
{
	static const uint64_t gvas[] = {
		3 * GiB - 1,	4 * GiB,	4 * GiB + 0x1234,
		5 * GiB - 0x10, 5 * GiB,	6 * GiB + 0x201000,
		7 * GiB - 1,	7 * GiB + 4096, 8 * GiB - 1,
	};
	struct vm vm;
	size_t i;
	int pass;

	(void)state;
	for (pass = 0; pass < 2; pass++) {
		vm_init(&vm, 6 * GiB);
		vm.b.map_end = 8 * GiB;
		vm.b.pages_4k = pass;
		/* the second pass puts the tables in RAM above 4 GiB */
		vm.b.tables = pass ? 4 * GiB + 16 * MiB : 16 * MiB;
		vm.b.tables_size = 32 * MiB;
		assert_int_equal(build(&vm), 0);
		assert_int_equal(vm.s.cr3, vm.b.tables);
		for (i = 0; i < sizeof(gvas) / sizeof(gvas[0]); i++)
			expect_identity(&vm, gvas[i], pass ? 4 * KiB : 2 * MiB);
		expect_unmapped(&vm, 8 * GiB, 3, "PDPTE");
		vm_fini(&vm);
	}
}

/* 64 GiB of 4 KiB pages: 128 MiB of PTs, written a table at a time. */
static void test_identity_64g_4k_pages(void **state)
{
	struct vm vm;
	uint64_t need;

	(void)state;
	vm_init(&vm, 256 * MiB);
	vm.b.map_end = 64 * GiB;
	vm.b.pages_4k = true;
	need = mv_x86_boot_tables_size(&vm.b);
	assert_true(need > 128 * MiB && need < 129 * MiB);
	vm.b.tables = 64 * MiB;
	vm.b.tables_size = need;
	assert_int_equal(build(&vm), 0);
	expect_identity(&vm, 63 * GiB + 0x7654, 4 * KiB);
	expect_identity(&vm, 64 * GiB - 1, 4 * KiB);
	expect_identity(&vm, 0x3000, 4 * KiB);
	expect_unmapped(&vm, 64 * GiB, 3, "PDPTE");
	vm_fini(&vm);
}

static void test_tables_size_formula(void **state)
{
	struct mv_x86_boot b = { .map_end = 4 * GiB };

	(void)state;
	/* PML4, PDPT, 4 PDs, 3 for GDT/TSS/I/O bitmap, IDT, stubs, stack */
	assert_int_equal(mv_x86_boot_tables_size(&b), 12 * 4 * KiB);
	b.pages_4k = true; /* + 2048 PTs */
	assert_int_equal(mv_x86_boot_tables_size(&b), (12 + 2048) * 4 * KiB);
	b.pages_4k = false;
	b.map_end = 513 * GiB; /* 2 PDPTs, 513 PDs */
	assert_int_equal(mv_x86_boot_tables_size(&b),
			 (1 + 2 + 513 + 6) * 4 * KiB);
	b.map_end = 4 * GiB;
	b.nr_vcpus = 8; /* 7 more CPL0 stacks; GDT, TSSs, bitmap: 3 pages */
	assert_int_equal(mv_x86_boot_tables_size(&b), 19 * 4 * KiB);
	b.map_end = 0;
	assert_int_equal(mv_x86_boot_tables_size(&b), 0);
	b.map_end = MV_X86_MAX_MAP_END + 1;
	assert_int_equal(mv_x86_boot_tables_size(&b), 0);
	b.map_end = 4 * GiB;
	b.nr_vcpus = MV_X86_BOOT_MAX_VCPUS + 1;
	assert_int_equal(mv_x86_boot_tables_size(&b), 0);
	assert_int_equal(mv_x86_boot_tables_size(NULL), 0);
}

static void test_registers_enter_long_mode_at_cpl3(void **state)
{
	struct vm vm;

	(void)state;
	vm_init(&vm, 64 * MiB);
	memset(&vm.s, 0, sizeof(vm.s));
	vm.s.apic_base = 0xfee00900; /* not long mode's business: kept */
	vm.s.cr8 = 5;
	memset(&vm.r, 0xa5, sizeof(vm.r));
	assert_int_equal(build(&vm), 0);
	assert_int_equal(vm.s.cr0, 0x80050033);
	assert_int_equal(vm.s.cr4, 0x620);
	assert_int_equal(vm.s.efer, 0x500);
	assert_int_equal(vm.s.cr3, TABLES);
	assert_int_equal(vm.s.apic_base, 0xfee00900);
	assert_int_equal(vm.s.cr8, 5);
	assert_int_equal(vm.s.cs.selector, 0x1b);
	assert_int_equal(vm.s.cs.l, 1);
	assert_int_equal(vm.s.cs.db, 0);
	assert_int_equal(vm.s.cs.dpl, 3);
	assert_int_equal(vm.s.cs.type, 0xb);
	assert_int_equal(vm.s.cs.s, 1);
	assert_int_equal(vm.s.cs.present, 1);
	assert_int_equal(vm.s.cs.g, 1);
	assert_int_equal(vm.s.cs.limit, 0xffffffff);
	assert_int_equal(vm.s.ss.selector, 0x23);
	assert_int_equal(vm.s.ss.dpl, 3);
	assert_int_equal(vm.s.ss.type, 3);
	assert_int_equal(vm.s.ss.db, 1);
	assert_int_equal(vm.s.ss.present, 1);
	assert_int_equal(vm.s.ds.selector, 0x23);
	assert_int_equal(vm.s.gs.dpl, 3);
	assert_int_equal(vm.s.tr.type, 11);
	assert_int_equal(vm.s.tr.s, 0);
	assert_int_equal(vm.s.tr.present, 1);
	assert_int_equal(vm.s.tr.selector, 0x28);
	assert_int_equal(vm.s.tr.limit, 128 + 8192); /* TSS, I/O bitmap */
	assert_int_equal(vm.s.ldt.unusable, 1);
	assert_int_equal(vm.s.ldt.present, 0);
	assert_int_equal(vm.s.gdt.limit, 8 * 7 - 1);
	assert_int_equal(vm.s.idt.limit, 4095);
	assert_int_equal(vm.r.rflags, 0x3002);
	assert_int_equal(vm.r.rip, 0x100000);
	assert_int_equal(vm.r.rsp, 0x9f000);
	assert_int_equal(vm.r.rdi, 0x1000);
	assert_int_equal(vm.r.rsi, 1);
	assert_int_equal(vm.r.rdx, 2);
	assert_int_equal(vm.r.rcx, 3);
	assert_int_equal(vm.r.rax, 0);
	assert_int_equal(vm.r.rbp, 0);
	assert_int_equal(vm.r.r15, 0);
	vm_fini(&vm);
}

/* Every system structure lies in the tables area. */
static void assert_in_tables(struct vm *vm, uint64_t gpa, uint64_t len)
{
	assert_true(gpa >= vm->b.tables);
	assert_true(gpa + len <= vm->b.tables + vm->b.tables_size);
}

static void test_gdt_descriptors(void **state)
{
	struct vm vm;
	uint64_t gdt, tss_lo, tss_hi, tss_base;

	(void)state;
	vm_init(&vm, 64 * MiB);
	assert_int_equal(build(&vm), 0);
	gdt = vm.s.gdt.base;
	assert_in_tables(&vm, gdt, vm.s.gdt.limit + 1);
	assert_int_equal(ldq(&vm, gdt), 0);
	/* limit 0xfffff, G; code: L=1 D=0; data: D/B=1 */
	assert_int_equal(ldq(&vm, gdt + 0x08), 0x00af9b000000ffffull);
	assert_int_equal(ldq(&vm, gdt + 0x10), 0x00cf93000000ffffull);
	assert_int_equal(ldq(&vm, gdt + 0x18), 0x00affb000000ffffull);
	assert_int_equal(ldq(&vm, gdt + 0x20), 0x00cff3000000ffffull);
	tss_lo = ldq(&vm, gdt + 0x28);
	tss_hi = ldq(&vm, gdt + 0x30);
	assert_int_equal((tss_lo >> 40) & 0xff, 0x8b); /* P, busy TSS */
	assert_int_equal(tss_lo & 0xffff, vm.s.tr.limit & 0xffff);
	assert_int_equal((tss_lo >> 48) & 0xf, vm.s.tr.limit >> 16);
	tss_base = ((tss_lo >> 16) & 0xffffff) | ((tss_lo >> 56) << 24) |
		   (tss_hi << 32);
	assert_int_equal(tss_base, vm.s.tr.base);
	vm_fini(&vm);
}

/*
 * The TSS's I/O bitmap allows every port and ends with 0xff at the limit
 * (consulted where the hardware IOPL is not 3, e.g. under PVM).
 */
static void expect_io_bitmap_allows_all(struct vm *vm)
{
	uint64_t base = (ldq(vm, vm->s.tr.base + 96) >> 48) & 0xffff;
	uint8_t map[8193];
	size_t i;

	assert_true(base >= 104);
	assert_int_equal(vm->s.tr.limit, base + 8192);
	assert_int_equal(
		mv_as_read(vm->mem, vm->s.tr.base + base, map, sizeof(map)), 0);
	for (i = 0; i < 8192; i++)
		if (map[i])
			fail_msg("I/O bitmap byte %zu is 0x%x", i, map[i]);
	assert_int_equal(map[8192], 0xff);
	assert_in_tables(vm, vm->s.tr.base + base, sizeof(map));
}

static void test_tss_rsp0_per_vcpu(void **state)
{
	uint64_t rsp0[4], trbase[4];
	struct vm vm;
	unsigned i, j;

	(void)state;
	vm_init(&vm, 64 * MiB);
	vm.b.nr_vcpus = 4;
	for (i = 0; i < 4; i++) {
		vm.b.vcpu = i;
		assert_int_equal(build(&vm), 0);
		assert_int_equal(vm.s.tr.selector, 0x28 + 16 * i);
		trbase[i] = vm.s.tr.base;
		assert_in_tables(&vm, trbase[i], 104);
		rsp0[i] = ldq(&vm, trbase[i] + 4);
		assert_int_equal(rsp0[i] & 15, 0);
		assert_in_tables(&vm, rsp0[i] - 4096, 4096);
		expect_io_bitmap_allows_all(&vm);
		assert_int_equal(vm.s.gdt.limit, 8 * (5 + 2 * 4) - 1);
	}
	for (i = 0; i < 4; i++)
		for (j = i + 1; j < 4; j++) {
			assert_int_not_equal(trbase[i], trbase[j]);
			assert_true(rsp0[i] - rsp0[j] >= 4096 ||
				    rsp0[j] - rsp0[i] >= 4096);
		}
	vm.b.vcpu = 4;
	assert_int_equal(build(&vm), -EINVAL);
	vm_fini(&vm);
}

/* The gate for @v: its handler address, checking the fixed fields. */
static uint64_t gate(struct vm *vm, unsigned v, unsigned dpl)
{
	uint64_t lo = ldq(vm, vm->s.idt.base + 16 * v);
	uint64_t hi = ldq(vm, vm->s.idt.base + 16 * v + 8);

	assert_int_equal((lo >> 16) & 0xffff, 0x08);	      /* CPL0 code */
	assert_int_equal((lo >> 32) & 0xff, 0);		      /* IST */
	assert_int_equal((lo >> 40) & 0xff, 0x8e | dpl << 5); /* P, int gate */
	return (lo & 0xffff) | ((lo >> 48) << 16) | ((hi & 0xffffffff) << 32);
}

static void read_bytes(struct vm *vm, uint64_t gpa, uint8_t *buf, size_t n)
{
	assert_int_equal(mv_as_read(vm->mem, gpa, buf, n), 0);
}

static void test_idt_gates_and_stubs(void **state)
{
	struct vm vm;
	uint8_t code[16];
	unsigned v;

	(void)state;
	vm_init(&vm, 64 * MiB);
	assert_int_equal(build(&vm), 0);
	assert_in_tables(&vm, vm.s.idt.base, 4096);
	for (v = 0; v < 32; v++) {
		uint64_t h = gate(&vm, v, 0);

		assert_in_tables(&vm, h, 16);
		read_bytes(&vm, h, code, sizeof(code));
		/* mov $v,%eax; mov $0xf5,%edx; out %eax,(%dx); hlt; jmp */
		assert_int_equal(code[0], 0xb8);
		assert_int_equal(code[1] | code[2] << 8 | code[3] << 16 |
					 (uint32_t)code[4] << 24,
				 v);
		assert_int_equal(code[5], 0xba);
		assert_int_equal(code[6] | code[7] << 8, 0xf5);
		assert_int_equal(code[10], 0xef);
		assert_int_equal(code[11], 0xf4);
		assert_int_equal(code[12], 0xeb);
		assert_int_equal((int8_t)code[13], -3); /* back to the hlt */
	}
	read_bytes(&vm, gate(&vm, 0x80, 3), code, 3);
	assert_int_equal(code[0], 0xf4);
	assert_int_equal(code[1], 0xeb);
	assert_int_equal((int8_t)code[2], -3);
	assert_int_equal(ldq(&vm, vm.s.idt.base + 16 * 0x81) >> 47 & 1, 0);
	assert_int_equal(ldq(&vm, vm.s.idt.base + 16 * 32) >> 47 & 1, 0);
	vm_fini(&vm);
}

static void test_enospc_when_area_too_small(void **state)
{
	struct vm vm;
	uint64_t need;

	(void)state;
	vm_init(&vm, 64 * MiB);
	need = mv_x86_boot_tables_size(&vm.b);
	vm.b.tables_size = need - 1;
	assert_int_equal(build(&vm), -ENOSPC);
	vm.b.tables_size = need;
	assert_int_equal(build(&vm), 0);
	vm.b.pages_4k = true;
	assert_int_equal(build(&vm), -ENOSPC);
	vm.b.pages_4k = false;
	vm.b.map_end = 64 * GiB;
	assert_int_equal(build(&vm), -ENOSPC);
	vm_fini(&vm);
}

static void test_einval_for_bad_inputs(void **state)
{
	struct mv_x86_boot good;
	struct vm vm;

	(void)state;
	vm_init(&vm, 64 * MiB);
	good = vm.b;
#define EXPECT_EINVAL(field, value)                    \
	do {                                           \
		vm.b = good;                           \
		vm.b.field = value;                    \
		assert_int_equal(build(&vm), -EINVAL); \
	} while (0)
	EXPECT_EINVAL(map_end, 0);
	EXPECT_EINVAL(map_end, MV_X86_MAX_MAP_END + 2 * MiB);
	EXPECT_EINVAL(tables, TABLES + 8);	 /* not 4 KiB-aligned */
	EXPECT_EINVAL(tables, 4 * GiB - 0x1000); /* the end not mapped */
	EXPECT_EINVAL(entry, 4 * GiB);
	EXPECT_EINVAL(stack_top, 0);
	EXPECT_EINVAL(stack_top, 4 * GiB + 8);
	EXPECT_EINVAL(vcpu, 1);
	EXPECT_EINVAL(nr_vcpus, MV_X86_BOOT_MAX_VCPUS + 1);
#undef EXPECT_EINVAL
	vm.b = good;
	assert_int_equal(build(&vm), 0);
	assert_int_equal(mv_x86_boot_build(NULL, &vm.b, &vm.s, &vm.r), -EINVAL);
	assert_int_equal(mv_x86_boot_build(vm.mem, NULL, &vm.s, &vm.r),
			 -EINVAL);
	assert_int_equal(mv_x86_boot_build(vm.mem, &vm.b, NULL, &vm.r),
			 -EINVAL);
	assert_int_equal(mv_x86_boot_build(vm.mem, &vm.b, &vm.s, NULL),
			 -EINVAL);
	vm_fini(&vm);
}

/* Tables over ROM, MMIO, a hole or past the end of RAM: -EFAULT. */
static void test_efault_when_area_not_ram(void **state)
{
	static const uint64_t where[] = { 0xfe000000, 4 * GiB - 64 * KiB,
					  0x10000000, 64 * MiB - 0x4000 };
	struct vm vm;
	size_t i;

	(void)state;
	vm_init(&vm, 64 * MiB);
	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		vm.b.tables = where[i];
		vm.b.map_end = 8 * GiB;
		assert_int_equal(build(&vm), -EFAULT);
	}
	vm_fini(&vm);
}

/* Hand-made tables at 32 MiB: PML4 at +0, PDPT at +4K, PD at +8K. */
#define HT (32 * MiB)
static void put_entry(struct vm *vm, uint64_t gpa, uint64_t e)
{
	assert_int_equal(mv_as_stq_le(vm->mem, gpa, e), 0);
}

static void test_walk_leaf_sizes_and_bits(void **state)
{
	struct mv_x86_walk w;
	struct vm vm;
	char why[256];

	(void)state;
	vm_init(&vm, 64 * MiB);
	put_entry(&vm, HT, (HT + 0x1000) | 0x7);
	/* PDPTE 1: a 1 GiB page at 5 GiB, read-only, NX */
	put_entry(&vm, HT + 0x1000 + 8, (5 * GiB) | 0x85 | 1ull << 63);
	/* PDPTE 0 -> PD; PDE 3: 2 MiB page at 6 MiB, supervisor */
	put_entry(&vm, HT + 0x1000, (HT + 0x2000) | 0x7);
	put_entry(&vm, HT + 0x2000 + 3 * 8, (6 * MiB) | 0x83);
	/* PDE 4: reserved bit 13 in a 2 MiB leaf; PDE 5: PAT bit 12 is fine */
	put_entry(&vm, HT + 0x2000 + 4 * 8, (8 * MiB) | 0x2000 | 0x87);
	put_entry(&vm, HT + 0x2000 + 5 * 8, (10 * MiB) | 0x1000 | 0x87);

	assert_int_equal(mv_x86_walk(vm.mem, HT, GiB + 0x12345, &w, why,
				     sizeof(why)),
			 0);
	assert_int_equal(w.gpa, 5 * GiB + 0x12345);
	assert_int_equal(w.page_size, GiB);
	assert_int_equal(w.level, 3);
	assert_false(w.writable);
	assert_true(w.user);
	assert_true(w.nx);
	assert_int_equal(w.table_gpa[1], HT + 0x1000);
	assert_int_equal(w.table_gpa[2], 0);

	assert_int_equal(mv_x86_walk(vm.mem, HT | 0x18, 6 * MiB + 0x1001, &w,
				     why, sizeof(why)),
			 0);
	assert_int_equal(w.gpa, 6 * MiB + 0x1001);
	assert_int_equal(w.page_size, 2 * MiB);
	assert_true(w.writable);
	assert_false(w.user);
	assert_false(w.nx);
	assert_int_equal(w.entry[2], (6 * MiB) | 0x83);

	assert_int_equal(mv_x86_walk(vm.mem, HT, 8 * MiB, &w, why, sizeof(why)),
			 -EFAULT);
	assert_non_null(strstr(why, "reserved"));
	assert_int_equal(mv_x86_walk(vm.mem, HT, 10 * MiB + 4, &w, NULL, 0), 0);
	assert_int_equal(w.gpa, 10 * MiB + 4);
	vm_fini(&vm);
}

static void test_walk_errors_name_the_level(void **state)
{
	struct mv_x86_walk w;
	struct vm vm;
	char why[256];

	(void)state;
	vm_init(&vm, 64 * MiB);
	assert_int_equal(build(&vm), 0);
	assert_int_equal(mv_x86_walk(vm.mem, vm.s.cr3, 1ull << 47, &w, why,
				     sizeof(why)),
			 -EINVAL);
	assert_non_null(strstr(why, "canonical"));
	assert_int_equal(mv_x86_walk(vm.mem, vm.s.cr3, 0xffff800000000000ull,
				     &w, why, sizeof(why)),
			 -EFAULT);
	assert_non_null(strstr(why, "PML4E"));
	/* a table in a hole */
	assert_int_equal(mv_x86_walk(vm.mem, 0x10000000, 0, &w, why,
				     sizeof(why)),
			 -EFAULT);
	assert_non_null(strstr(why, "not in RAM"));
	/* a PS bit in a PML4E is reserved */
	put_entry(&vm, HT, 0x87);
	assert_int_equal(mv_x86_walk(vm.mem, HT, 0, &w, why, sizeof(why)),
			 -EFAULT);
	assert_non_null(strstr(why, "PML4E"));
	/* a 4 KiB hole under the 4 KiB map: level 1 */
	vm.b.pages_4k = true;
	vm.b.tables = 16 * MiB;
	vm.b.tables_size = 16 * MiB;
	assert_int_equal(build(&vm), 0);
	expect_identity(&vm, 0x5000, 4 * KiB);
	{
		struct mv_x86_walk w0;

		assert_int_equal(
			mv_x86_walk(vm.mem, vm.s.cr3, 0x5000, &w0, NULL, 0), 0);
		put_entry(&vm, w0.table_gpa[3] + 5 * 8, 0);
	}
	expect_unmapped(&vm, 0x5000, 1, "PTE");
	assert_int_equal(mv_x86_walk(NULL, 0, 0, &w, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(mv_x86_walk(vm.mem, 0, 0, NULL, why, sizeof(why)),
			 -EINVAL);
	vm_fini(&vm);
}

/* What the CPU pushes on the CPL0 stack, then the stub's exit state. */
static void fake_fault(struct vm *vm, bool with_err, uint64_t err, uint64_t rip)
{
	uint64_t rsp0 = ldq(vm, vm->s.tr.base + 4);
	uint64_t frame[6] = { err, rip, 0x1b, 0x3002, 0x9ef00, 0x23 };
	unsigned n = with_err ? 6 : 5;

	assert_int_equal(mv_as_write(vm->mem, rsp0 - 8 * n,
				     frame + (with_err ? 0 : 1), 8 * n),
			 0);
	vm->r.rsp = rsp0 - 8 * n;
}

static void test_describe_fault(void **state)
{
	struct vm vm;
	char msg[256];

	(void)state;
	vm_init(&vm, 64 * MiB);
	assert_int_equal(build(&vm), 0);
	fake_fault(&vm, true, 0x6, 0x401234);
	vm.s.cr2 = 0xdead000;
	assert_int_equal(mv_x86_describe_fault(vm.mem, 14, &vm.r, &vm.s, msg,
					       sizeof(msg)),
			 0);
	assert_string_equal(msg, "guest exception #PF (vector 14) at rip "
				 "0x401234 (CPL3), error code 0x6 (not "
				 "present, write, user), cr2 0xdead000, rsp "
				 "0x9ef00, rflags 0x3002");

	fake_fault(&vm, false, 0, 0x100020);
	assert_int_equal(mv_x86_describe_fault(vm.mem, 6, &vm.r, &vm.s, msg,
					       sizeof(msg)),
			 0);
	assert_string_equal(msg, "guest exception #UD (vector 6) at rip "
				 "0x100020 (CPL3), rsp 0x9ef00, rflags 0x3002");

	/* int $3 from CPL3 through a DPL0 gate: #GP naming the IDT entry */
	fake_fault(&vm, true, 3 * 8 + 2, 0x100030);
	assert_int_equal(mv_x86_describe_fault(vm.mem, 13, &vm.r, &vm.s, msg,
					       sizeof(msg)),
			 0);
	assert_non_null(strstr(msg, "#GP (vector 13)"));
	assert_non_null(strstr(msg, "error code 0x1a (IDT vector 0x3)"));

	assert_int_equal(mv_x86_describe_fault(vm.mem, 99, &vm.r, &vm.s, msg,
					       sizeof(msg)),
			 0);
	assert_non_null(strstr(msg, "99"));

	vm.r.rsp = 5 * GiB; /* outside the map */
	assert_int_equal(mv_x86_describe_fault(vm.mem, 13, &vm.r, &vm.s, msg,
					       sizeof(msg)),
			 0);
	assert_non_null(strstr(msg, "#GP"));
	assert_non_null(strstr(msg, "unreadable"));

	/* a short buffer is cut, still terminated */
	assert_int_equal(
		mv_x86_describe_fault(vm.mem, 13, &vm.r, &vm.s, msg, 8), 0);
	assert_int_equal(strlen(msg), 7);
	assert_int_equal(mv_x86_describe_fault(vm.mem, 13, &vm.r, &vm.s, NULL,
					       8),
			 -EINVAL);
	vm_fini(&vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_2m_pages),
		cmocka_unit_test(test_map_end_rounds_to_2m),
		cmocka_unit_test(test_identity_4k_pages),
		cmocka_unit_test(test_identity_above_4g),
		cmocka_unit_test(test_identity_64g_4k_pages),
		cmocka_unit_test(test_tables_size_formula),
		cmocka_unit_test(test_registers_enter_long_mode_at_cpl3),
		cmocka_unit_test(test_gdt_descriptors),
		cmocka_unit_test(test_tss_rsp0_per_vcpu),
		cmocka_unit_test(test_idt_gates_and_stubs),
		cmocka_unit_test(test_enospc_when_area_too_small),
		cmocka_unit_test(test_einval_for_bad_inputs),
		cmocka_unit_test(test_efault_when_area_not_ram),
		cmocka_unit_test(test_walk_leaf_sizes_and_bits),
		cmocka_unit_test(test_walk_errors_name_the_level),
		cmocka_unit_test(test_describe_fault),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
