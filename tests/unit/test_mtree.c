// SPDX-License-Identifier: MIT
/*
 * `info mtree` text (tree, -D, -f) and `info ramblock` on small hand-built
 * machines, byte for byte in QEMU 7.2's formats (reference §2.1, §2.2,
 * §2.4) with the block order of docs/mtree.md; then `explain` and the JSON
 * variants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <memvirt/memory.h>

#include "helpers.h"

/* ---- building blocks ------------------------------------------------------ */

/* Every region a test made, released at the end. */
struct bench {
	struct mv_machine *m;
	struct mv_region *r[32];
	size_t nr;
};

static void bench_init(struct bench *b)
{
	memset(b, 0, sizeof(*b));
	assert_int_equal(mv_machine_new(&b->m), 0);
}

static struct mv_region *keep(struct bench *b, struct mv_region *r)
{
	assert_non_null(r);
	assert_true(b->nr < sizeof(b->r) / sizeof(b->r[0]));
	b->r[b->nr++] = r;
	return r;
}

static void bench_free(struct bench *b)
{
	while (b->nr)
		mv_region_unref(b->r[--b->nr]);
	mv_machine_free(b->m);
}

static struct mv_region *container(struct bench *b, const char *name,
				   uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(mv_region_new_container(b->m, name, size, &r), 0);
	return keep(b, r);
}

static struct mv_region *io(struct bench *b, const char *name, uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(
		mv_region_new_io(b->m, name, size, &mv_zero_ops, NULL, &r), 0);
	return keep(b, r);
}

static struct mv_region *ram(struct bench *b, const char *name, uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(mv_region_new_ram(b->m, name, size, NULL, &r), 0);
	return keep(b, r);
}

static struct mv_region *rom(struct bench *b, const char *name, uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(mv_region_new_rom(b->m, name, size, NULL, &r), 0);
	return keep(b, r);
}

static struct mv_region *alias(struct bench *b, const char *name,
			       struct mv_region *target, uint64_t offset,
			       uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(
		mv_region_new_alias(b->m, name, target, offset, size, &r), 0);
	return keep(b, r);
}

static void add(struct mv_region *parent, uint64_t addr,
		struct mv_region *child, int priority)
{
	assert_int_equal(mv_region_add_subregion_overlap(parent, addr, child,
							 priority),
			 0);
}

static struct mv_as *as_new(struct bench *b, const char *name,
			    struct mv_region *root)
{
	struct mv_as *as = NULL;

	assert_int_equal(mv_as_new(b->m, name, root, &as), 0);
	return as;
}

typedef int (*print_fn)(struct mv_machine *m, FILE *f, unsigned flags);

static char *capture(struct mv_machine *m, print_fn fn, unsigned flags)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(fn(m, f, flags), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

static int ramblock_print(struct mv_machine *m, FILE *f, unsigned flags)
{
	(void)flags;
	return mv_ramblock_print(m, f);
}

static void expect_text(const char *what, char *text, const char *want)
{
	if (strcmp(text, want)) {
		print_error("%s:\n%s\nexpected:\n%s\n", what, text, want);
		free(text);
		fail();
	}
	free(text);
}

static void expect_mtree(struct mv_machine *m, unsigned flags, const char *want)
{
	mv_test_check_views(m);
	expect_text("mtree", capture(m, mv_mtree_print, flags), want);
}

#define Z16 "0000000000000000"

/* ---- a pc-like machine ------------------------------------------------------ */

/*
 * system: RAM below 1 MiB through an alias, a lower-priority pci container
 * with VGA MMIO, option ROM, the BIOS and its ISA alias; an I/O space with
 * a background MMIO root.  ASes: memory, cpu-memory-0 (same root), I/O.
 */
static void build_pc(struct bench *b)
{
	struct mv_region *sys = container(b, "system", UINT64_MAX);
	struct mv_region *pcram = ram(b, "pc.ram", 0x100000);
	struct mv_region *pci = container(b, "pci", UINT64_MAX);
	struct mv_region *bios = rom(b, "pc.bios", 0x40000);
	struct mv_region *isa_bios =
		alias(b, "isa-bios", bios, 0x20000, 0x20000);
	struct mv_region *iort = NULL;

	assert_int_equal(mv_region_new_io(b->m, "io", 0x10000,
					  &mv_unassigned_io_ops, NULL, &iort),
			 0);
	keep(b, iort);
	add(sys, 0, alias(b, "ram-below-1m", pcram, 0, 0xa0000), 0);
	add(sys, 0, pci, -1);
	add(pci, 0xa0000, io(b, "vga-lowmem", 0x20000), 1);
	add(pci, 0xc0000, rom(b, "pc.rom", 0x20000), 1);
	add(pci, 0xfffc0000, bios, 0);
	assert_int_equal(mv_region_set_readonly(isa_bios, true), 0);
	add(pci, 0xe0000, isa_bios, 1);
	add(iort, 0x60, io(b, "kbd", 5), 0);
	as_new(b, "memory", sys);
	as_new(b, "cpu-memory-0", sys);
	as_new(b, "I/O", iort);
}

static const char pc_tree[] =
	"address-space: I/O\n"
	"  " Z16 "-000000000000ffff (prio 0, i/o): io\n"
	"    0000000000000060-0000000000000064 (prio 0, i/o): kbd\n"
	"\n"
	"address-space: cpu-memory-0\n"
	"address-space: memory\n"
	"  " Z16 "-ffffffffffffffff (prio 0, i/o): system\n"
	"    " Z16 "-000000000009ffff (prio 0, ram): alias ram-below-1m"
	" @pc.ram " Z16 "-000000000009ffff\n"
	"    " Z16 "-ffffffffffffffff (prio -1, i/o): pci\n"
	"      00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem\n"
	"      00000000000c0000-00000000000dffff (prio 1, rom): pc.rom\n"
	"      00000000000e0000-00000000000fffff (prio 1, rom): alias"
	" isa-bios @pc.bios 0000000000020000-000000000003ffff\n"
	"      00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\n"
	"\n"
	"memory-region: pc.bios\n"
	"  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\n"
	"\n"
	"memory-region: pc.ram\n"
	"  " Z16 "-00000000000fffff (prio 0, ram): pc.ram\n"
	"\n";

static void test_tree_pc_like(void **state)
{
	struct bench b;

	(void)state;
	bench_init(&b);
	build_pc(&b);
	expect_mtree(b.m, 0, pc_tree);
	/* Nothing is disabled: -D prints the same. */
	expect_mtree(b.m, MV_MTREE_DISABLED, pc_tree);
	bench_free(&b);
}

static void test_flat_pc_like(void **state)
{
	struct bench b;
	struct mv_region *sys, *wrap, *sys_alias;

	(void)state;
	bench_init(&b);
	build_pc(&b);
	sys = mv_as_root(mv_machine_find_as(b.m, "memory"));
	/* An AS whose root aliases system shares system's view. */
	sys_alias = alias(&b, "sys-alias", sys, 0, UINT64_MAX);
	as_new(&b, "alias-as", sys_alias);
	/* Nothing enabled under the root: the shared empty view. */
	as_new(&b, "empty", container(&b, "nothing", 0x1000));
	/* A container with one child covering it renders from the child. */
	wrap = container(&b, "wrap", 0x10000);
	add(wrap, 0, io(&b, "inner", 0x10000), 0);
	as_new(&b, "dma", wrap);

	expect_mtree(
		b.m, MV_MTREE_FLAT,
		"FlatView #0\n"
		" AS \"I/O\", root: io\n"
		" Root memory region: io\n"
		"  " Z16 "-000000000000005f (prio 0, i/o): io\n"
		"  0000000000000060-0000000000000064 (prio 0, i/o): kbd\n"
		"  0000000000000065-000000000000ffff (prio 0, i/o): io"
		" @0000000000000065\n"
		"\n"
		"FlatView #1\n"
		" AS \"dma\", root: wrap\n"
		" Root memory region: inner\n"
		"  " Z16 "-000000000000ffff (prio 0, i/o): inner\n"
		"\n"
		"FlatView #2\n"
		" AS \"empty\", root: nothing\n"
		" Root memory region: (none)\n"
		"  No rendered FlatView\n"
		"\n"
		"FlatView #3\n"
		" AS \"memory\", root: system\n"
		" AS \"cpu-memory-0\", root: system\n"
		" AS \"alias-as\", root: sys-alias, alias system\n"
		" Root memory region: system\n"
		"  " Z16 "-000000000009ffff (prio 0, ram): pc.ram\n"
		"  00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem\n"
		"  00000000000c0000-00000000000dffff (prio 1, rom): pc.rom\n"
		"  00000000000e0000-00000000000fffff (prio 0, rom): pc.bios"
		" @0000000000020000\n"
		"  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\n"
		"\n");
	bench_free(&b);
}

static void test_ramblock_pc_like(void **state)
{
	struct bench b;

	(void)state;
	if (sysconf(_SC_PAGESIZE) != 4096)
		skip();
	bench_init(&b);
	build_pc(&b);
	expect_text("info ramblock", capture(b.m, ramblock_print, 0),
		    "              Block Name    PSize              Offset"
		    "               Used              Total\n"
		    "                  pc.ram    4 KiB  0x0000000000000000"
		    " 0x0000000000100000 0x0000000000100000\n"
		    "                 pc.bios    4 KiB  0x0000000000100000"
		    " 0x0000000000040000 0x0000000000040000\n"
		    "                  pc.rom    4 KiB  0x0000000000140000"
		    " 0x0000000000020000 0x0000000000020000\n");
	bench_free(&b);
}

/* ---- ordering, disabled regions, alias targets -------------------------- */

static void test_tree_children_order(void **state)
{
	struct bench b;
	struct mv_region *sys;

	(void)state;
	bench_init(&b);
	sys = container(&b, "system", 0x10000);
	add(sys, 0x1000, io(&b, "a", 0x100), 0);
	add(sys, 0, io(&b, "b", 0x100), 0);
	add(sys, 0, io(&b, "c1", 0x100), 2);
	add(sys, 0, io(&b, "c2", 0x100), 2);
	add(sys, 0, io(&b, "d", 0x100), -1);
	add(sys, 0, io(&b, "e", 0x100), 0);
	as_new(&b, "memory", sys);
	/* Address ascending, then priority descending, then list order
	 * (newest first among equal priorities). */
	expect_mtree(b.m, 0,
		     "address-space: memory\n"
		     "  " Z16 "-000000000000ffff (prio 0, i/o): system\n"
		     "    " Z16 "-00000000000000ff (prio 2, i/o): c2\n"
		     "    " Z16 "-00000000000000ff (prio 2, i/o): c1\n"
		     "    " Z16 "-00000000000000ff (prio 0, i/o): e\n"
		     "    " Z16 "-00000000000000ff (prio 0, i/o): b\n"
		     "    " Z16 "-00000000000000ff (prio -1, i/o): d\n"
		     "    0000000000001000-00000000000010ff (prio 0, i/o): a\n"
		     "\n");
	bench_free(&b);
}

static void build_disabled(struct bench *b)
{
	struct mv_region *sys = container(b, "system", 0x10000);
	struct mv_region *dev = container(b, "dev", 0x1000);
	struct mv_region *r = ram(b, "ram", 0x1000);
	struct mv_region *off = alias(b, "off-alias", r, 0, 0x1000);

	add(dev, 0, io(b, "reg-a", 0x10), 0);
	add(dev, 0x10, io(b, "reg-b", 0x10), 0);
	add(sys, 0, r, 0);
	add(sys, 0x1000, dev, 0);
	add(sys, 0x3000, off, 0);
	assert_int_equal(mv_region_set_enabled(dev, false), 0);
	assert_int_equal(mv_region_set_enabled(off, false), 0);
	as_new(b, "memory", sys);
}

static void test_tree_disabled_regions(void **state)
{
	struct bench b;

	(void)state;
	bench_init(&b);
	build_disabled(&b);
	/* Lines of disabled regions vanish, their children do not, and the
	 * target of a disabled alias still gets its block. */
	expect_mtree(b.m, 0,
		     "address-space: memory\n"
		     "  " Z16 "-000000000000ffff (prio 0, i/o): system\n"
		     "    " Z16 "-0000000000000fff (prio 0, ram): ram\n"
		     "      0000000000001000-000000000000100f (prio 0, i/o):"
		     " reg-a\n"
		     "      0000000000001010-000000000000101f (prio 0, i/o):"
		     " reg-b\n"
		     "\n"
		     "memory-region: ram\n"
		     "  " Z16 "-0000000000000fff (prio 0, ram): ram\n"
		     "\n");
	expect_mtree(
		b.m, MV_MTREE_DISABLED,
		"address-space: memory\n"
		"  " Z16 "-000000000000ffff (prio 0, i/o): system\n"
		"    " Z16 "-0000000000000fff (prio 0, ram): ram\n"
		"    0000000000001000-0000000000001fff (prio 0, i/o): dev"
		" [disabled]\n"
		"      0000000000001000-000000000000100f (prio 0, i/o):"
		" reg-a\n"
		"      0000000000001010-000000000000101f (prio 0, i/o):"
		" reg-b\n"
		"    0000000000003000-0000000000003fff (prio 0, ram): alias"
		" off-alias @ram " Z16 "-0000000000000fff [disabled]\n"
		"\n"
		"memory-region: ram\n"
		"  " Z16 "-0000000000000fff (prio 0, ram): ram\n"
		"\n");
	/* The flat view has none of them; with ram the only enabled child
	 * at 0, QEMU renders the view from ram itself. */
	expect_mtree(b.m, MV_MTREE_FLAT | MV_MTREE_DISABLED,
		     "FlatView #0\n"
		     " AS \"memory\", root: system\n"
		     " Root memory region: ram\n"
		     "  " Z16 "-0000000000000fff (prio 0, ram): ram\n"
		     "\n");
	bench_free(&b);
}

static void test_tree_alias_target_blocks(void **state)
{
	struct bench b;
	struct mv_region *sys, *t1, *t2;

	(void)state;
	bench_init(&b);
	sys = container(&b, "system", 0x100000);
	t1 = container(&b, "t1", 0x1000);
	t2 = ram(&b, "t2", 0x1000);
	add(t1, 0x800, alias(&b, "inner", t2, 0x100, 0x100), 0);
	add(sys, 0, alias(&b, "a1", t1, 0, 0x1000), 0);
	add(sys, 0x1000, alias(&b, "a2", t1, 0, 0x1000), 0);
	add(sys, 0x2000, alias(&b, "a3", t2, 0, 0x800), 0);
	as_new(&b, "memory", sys);
	/* t1 once although two aliases name it; t2, met inside t1's block
	 * and directly, once too. */
	expect_mtree(b.m, 0,
		     "address-space: memory\n"
		     "  " Z16 "-00000000000fffff (prio 0, i/o): system\n"
		     "    " Z16 "-0000000000000fff (prio 0, i/o): alias a1 @t1"
		     " " Z16 "-0000000000000fff\n"
		     "    0000000000001000-0000000000001fff (prio 0, i/o):"
		     " alias a2 @t1 " Z16 "-0000000000000fff\n"
		     "    0000000000002000-00000000000027ff (prio 0, ram):"
		     " alias a3 @t2 " Z16 "-00000000000007ff\n"
		     "\n"
		     "memory-region: t1\n"
		     "  " Z16 "-0000000000000fff (prio 0, i/o): t1\n"
		     "    0000000000000800-00000000000008ff (prio 0, ram):"
		     " alias inner @t2 0000000000000100-00000000000001ff\n"
		     "\n"
		     "memory-region: t2\n"
		     "  " Z16 "-0000000000000fff (prio 0, ram): t2\n"
		     "\n");
	bench_free(&b);
}

/* A target met only inside another target's block is printed too. */
static void test_tree_nested_alias_target(void **state)
{
	struct bench b;
	struct mv_region *sys, *outer, *deep;

	(void)state;
	bench_init(&b);
	sys = container(&b, "system", 0x10000);
	outer = container(&b, "outer", 0x1000);
	deep = io(&b, "deep", 0x100);
	add(outer, 0, alias(&b, "to-deep", deep, 0, 0x100), 0);
	add(sys, 0, alias(&b, "to-outer", outer, 0, 0x1000), 0);
	as_new(&b, "memory", sys);
	expect_mtree(b.m, 0,
		     "address-space: memory\n"
		     "  " Z16 "-000000000000ffff (prio 0, i/o): system\n"
		     "    " Z16 "-0000000000000fff (prio 0, i/o): alias"
		     " to-outer @outer " Z16 "-0000000000000fff\n"
		     "\n"
		     "memory-region: deep\n"
		     "  " Z16 "-00000000000000ff (prio 0, i/o): deep\n"
		     "\n"
		     "memory-region: outer\n"
		     "  " Z16 "-0000000000000fff (prio 0, i/o): outer\n"
		     "    " Z16 "-00000000000000ff (prio 0, i/o): alias to-deep"
		     " @deep " Z16 "-00000000000000ff\n"
		     "\n");
	bench_free(&b);
}

/* ---- types and attributes ------------------------------------------------ */

static void build_attrs(struct bench *b, struct mv_region **flash)
{
	struct mv_region *sys = container(b, "system", UINT64_MAX);
	struct mv_region *r = ram(b, "ram", 0x10000);
	struct mv_region *ro = alias(b, "ram-ro", r, 0, 0x10000);
	struct mv_region *nvram = ram(b, "nvram", 0x1000);
	struct mv_region *nv1 = ram(b, "nv1", 0x2000);
	struct mv_region *nvd = alias(b, "nvdimm-memory", nv1, 0, 0x2000);
	struct mv_region *f = NULL;

	assert_int_equal(mv_region_new_rom_device(b->m, "flash", 0x1000,
						  &mv_zero_ops, NULL, NULL, &f),
			 0);
	*flash = keep(b, f);
	assert_int_equal(mv_region_set_readonly(ro, true), 0);
	assert_int_equal(mv_region_set_nonvolatile(nvram, true), 0);
	assert_int_equal(mv_region_set_nonvolatile(nvd, true), 0);
	add(sys, 0, ro, 0);
	add(sys, 0x100000, alias(b, "ram-rw", r, 0x1000, 0x1000), 0);
	add(sys, 0x200000, nvram, 0);
	add(sys, 0x300000, nvd, 0);
	add(sys, 0x400000, f, 0);
	as_new(b, "memory", sys);
}

static void test_tree_types(void **state)
{
	struct bench b;
	struct mv_region *flash;

	(void)state;
	bench_init(&b);
	build_attrs(&b, &flash);
	/* An alias prints its target's type even when it is readonly itself;
	 * nv- comes from the line's own region. */
	expect_mtree(b.m, 0,
		     "address-space: memory\n"
		     "  " Z16 "-ffffffffffffffff (prio 0, i/o): system\n"
		     "    " Z16 "-000000000000ffff (prio 0, ram): alias ram-ro"
		     " @ram " Z16 "-000000000000ffff\n"
		     "    0000000000100000-0000000000100fff (prio 0, ram):"
		     " alias ram-rw @ram 0000000000001000-0000000000001fff\n"
		     "    0000000000200000-0000000000200fff (prio 0, nv-ram):"
		     " nvram\n"
		     "    0000000000300000-0000000000301fff (prio 0, nv-ram):"
		     " alias nvdimm-memory @nv1 " Z16 "-0000000000001fff\n"
		     "    0000000000400000-0000000000400fff (prio 0, romd):"
		     " flash\n"
		     "\n"
		     "memory-region: nv1\n"
		     "  " Z16 "-0000000000001fff (prio 0, ram): nv1\n"
		     "\n"
		     "memory-region: ram\n"
		     "  " Z16 "-000000000000ffff (prio 0, ram): ram\n"
		     "\n");
	bench_free(&b);
}

#define ATTRS_FLAT_HEAD                                                 \
	"FlatView #0\n"                                                 \
	" AS \"memory\", root: system\n"                                \
	" Root memory region: system\n"                                 \
	"  " Z16 "-000000000000ffff (prio 0, rom): ram\n"               \
	"  0000000000100000-0000000000100fff (prio 0, ram): ram"        \
	" @0000000000001000\n"                                          \
	"  0000000000200000-0000000000200fff (prio 0, nv-ram): nvram\n" \
	"  0000000000300000-0000000000301fff (prio 0, nv-ram): nv1\n"

static void test_flat_types(void **state)
{
	struct bench b;
	struct mv_region *flash;

	(void)state;
	bench_init(&b);
	build_attrs(&b, &flash);
	/* A readonly range prints rom; nv- is the range's. */
	expect_mtree(
		b.m, MV_MTREE_FLAT,
		ATTRS_FLAT_HEAD
		"  0000000000400000-0000000000400fff (prio 0, romd): flash\n"
		"\n");
	assert_int_equal(mv_region_rom_device_set_romd(flash, false), 0);
	expect_mtree(
		b.m, MV_MTREE_FLAT,
		ATTRS_FLAT_HEAD
		"  0000000000400000-0000000000400fff (prio 0, i/o): flash\n"
		"\n");
	assert_int_equal(mv_region_rom_device_set_romd(flash, true), 0);
	expect_mtree(
		b.m, MV_MTREE_FLAT,
		ATTRS_FLAT_HEAD
		"  0000000000400000-0000000000400fff (prio 0, romd): flash\n"
		"\n");
	bench_free(&b);
}

/* ---- sizes: 0, 1, 2^64, wrap-around -------------------------------------- */

static void build_sizes(struct bench *b)
{
	struct mv_region *sys = container(b, "system", UINT64_MAX);
	struct mv_region *whole = NULL;

	add(sys, 0, io(b, "all", UINT64_MAX), -1);
	add(sys, 0x1000, io(b, "zero", 0), 0);
	add(sys, 0x2000, io(b, "one", 1), 0);
	add(sys, 0xfffffffffffff000ull, io(b, "wrap", 0x2000), 0);
	as_new(b, "memory", sys);
	assert_int_equal(mv_region_new_io(b->m, "whole", UINT64_MAX,
					  &mv_unassigned_io_ops, NULL, &whole),
			 0);
	as_new(b, "I/O", keep(b, whole));
}

static void test_tree_sizes(void **state)
{
	struct bench b;

	(void)state;
	bench_init(&b);
	build_sizes(&b);
	/* Size 0 and size 1 both print X-X; the overflow mark comes before
	 * the indent. */
	expect_mtree(
		b.m, 0,
		"address-space: I/O\n"
		"  " Z16 "-ffffffffffffffff (prio 0, i/o): whole\n"
		"\n"
		"address-space: memory\n"
		"  " Z16 "-ffffffffffffffff (prio 0, i/o): system\n"
		"    " Z16 "-ffffffffffffffff (prio -1, i/o): all\n"
		"    0000000000001000-0000000000001000 (prio 0, i/o): zero\n"
		"    0000000000002000-0000000000002000 (prio 0, i/o): one\n"
		"[DETECTED OVERFLOW!]     fffffffffffff000-0000000000000fff"
		" (prio 0, i/o): wrap\n"
		"\n");
	bench_free(&b);
}

static void test_flat_sizes(void **state)
{
	struct bench b;

	(void)state;
	bench_init(&b);
	build_sizes(&b);
	/* A size-0 region renders nothing; wrap is clipped at 2^64. */
	expect_mtree(b.m, MV_MTREE_FLAT,
		     "FlatView #0\n"
		     " AS \"I/O\", root: whole\n"
		     " Root memory region: whole\n"
		     "  " Z16 "-ffffffffffffffff (prio 0, i/o): whole\n"
		     "\n"
		     "FlatView #1\n"
		     " AS \"memory\", root: system\n"
		     " Root memory region: system\n"
		     "  " Z16 "-0000000000001fff (prio -1, i/o): all\n"
		     "  0000000000002000-0000000000002000 (prio 0, i/o): one\n"
		     "  0000000000002001-ffffffffffffefff (prio -1, i/o): all"
		     " @0000000000002001\n"
		     "  fffffffffffff000-ffffffffffffffff (prio 0, i/o): wrap\n"
		     "\n");
	bench_free(&b);
}

/* ---- explain ----------------------------------------------------------------- */

/*
 * At 0x1010: B (prio 1, added after A) wins over A (prio 1) and over ram
 * (prio 0) below both.
 */
static struct mv_as *build_explain(struct bench *b)
{
	struct mv_region *sys = container(b, "system", 0x10000);

	add(sys, 0, ram(b, "ram", 0x10000), 0);
	add(sys, 0x1000, io(b, "A", 0x100), 1);
	add(sys, 0x1000, io(b, "B", 0x100), 1);
	return as_new(b, "memory", sys);
}

static char *explain_text(struct mv_as *as, uint64_t addr, bool json)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(mv_explain(as, addr, json, f), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

/* The line of @text that starts with @prefix (caller frees), or fail. */
static char *line_starting(const char *text, const char *prefix)
{
	const char *p = text;

	while (p && *p) {
		const char *end = strchr(p, '\n');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (!strncmp(p, prefix, strlen(prefix)))
			return strndup(p, n);
		p = end ? end + 1 : NULL;
	}
	fail_msg("no line starting with \"%s\" in:\n%s", prefix, text);
	return NULL;
}

static void expect_line(const char *text, const char *prefix, const char *has,
			const char *lacks)
{
	char *line = line_starting(text, prefix);

	if (!strstr(line, has) || (lacks && strstr(line, lacks)))
		fail_msg("line \"%s\": wants \"%s\"%s%s", line, has,
			 lacks ? ", not " : "", lacks ? lacks : "");
	free(line);
}

static void test_explain_text(void **state)
{
	struct bench b;
	struct mv_as *as;
	char *text, *path, *sys_line, *b_line;

	(void)state;
	bench_init(&b);
	as = build_explain(&b);
	text = explain_text(as, 0x1010, false);
	/* The winner and where inside it. */
	expect_line(text, "0x0000000000001010: ", ": B ", NULL);
	expect_line(text, "0x0000000000001010: ", "@0x10", NULL);
	/* Its path from the root: system, then B. */
	path = strstr(text, "path:");
	assert_non_null(path);
	sys_line = strstr(path, " system ");
	b_line = strstr(path, " B ");
	assert_non_null(sys_line);
	assert_non_null(b_line);
	assert_true(sys_line < b_line);
	assert_non_null(strstr(path, "prio 1"));
	/* What it hides, and why. */
	expect_line(text, "  hides A ", "added later", "priority 1 > ");
	expect_line(text, "  hides ram ", "priority 1 > 0", "added later");
	assert_null(strstr(text, "hides B"));
	free(text);

	/* Where only the background answers, nothing is hidden. */
	text = explain_text(as, 0x2000, false);
	expect_line(text, "0x0000000000002000: ", ": ram ", NULL);
	assert_null(strstr(text, "hides"));
	free(text);
	bench_free(&b);
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loadb(text, strlen(text), 0, &err);

	if (!j)
		fail_msg("bad JSON (%s at %d:%d):\n%s", err.text, err.line,
			 err.column, text);
	return j;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (!s)
		fail_msg("no string \"%s\"", key);
	return s;
}

static void test_explain_json(void **state)
{
	struct bench b;
	struct mv_as *as;
	char *text;
	json_t *j, *path, *hides;
	size_t i;
	bool saw_a = false, saw_ram = false;

	(void)state;
	bench_init(&b);
	as = build_explain(&b);
	text = explain_text(as, 0x1010, true);
	j = parse(text);
	assert_string_equal(jstr(j, "region"), "B");
	path = json_object_get(j, "path");
	assert_true(json_is_array(path));
	assert_int_equal(json_array_size(path), 2);
	assert_string_equal(jstr(json_array_get(path, 0), "region"), "system");
	assert_string_equal(jstr(json_array_get(path, 1), "region"), "B");
	hides = json_object_get(j, "hides");
	assert_int_equal(json_array_size(hides), 2);
	for (i = 0; i < json_array_size(hides); i++) {
		json_t *h = json_array_get(hides, i);
		const char *name = jstr(h, "region");
		const char *why = jstr(h, "reason");

		if (!strcmp(name, "A")) {
			saw_a = true;
			assert_non_null(strstr(why, "added later"));
		} else if (!strcmp(name, "ram")) {
			saw_ram = true;
			assert_non_null(strstr(why, "priority 1 > 0"));
		}
	}
	assert_true(saw_a && saw_ram);
	json_decref(j);
	free(text);
	bench_free(&b);
}

/* ---- mtree --json ------------------------------------------------------------ */

static json_t *find_range(json_t *doc, const struct mv_flat_range *r)
{
	json_t *views = json_object_get(doc, "flatviews"), *v, *ranges, *x;
	char first[24], last[24];
	size_t i, k;

	snprintf(first, sizeof(first), "0x%" PRIx64, r->first);
	snprintf(last, sizeof(last), "0x%" PRIx64, r->last);
	assert_true(json_is_array(views));
	json_array_foreach(views, i, v)
	{
		ranges = json_object_get(v, "ranges");
		json_array_foreach(ranges, k, x)
		{
			if (!strcmp(jstr(x, "first"), first) &&
			    !strcmp(jstr(x, "last"), last) &&
			    !strcmp(jstr(x, "region"), mv_region_name(r->mr)))
				return x;
		}
	}
	fail_msg("no JSON range %s-%s %s", first, last, mv_region_name(r->mr));
	return NULL;
}

static void test_mtree_json_paths(void **state)
{
	const char *names[] = { "memory", "I/O" };
	struct bench b;
	char *text;
	json_t *doc;
	size_t i, k, nr, total = 0, listed = 0;
	json_t *v;

	(void)state;
	bench_init(&b);
	build_pc(&b);
	text = capture(b.m, mv_mtree_print_json, 0);
	doc = parse(text);
	for (i = 0; i < 2; i++) {
		struct mv_flatview *fv =
			mv_as_get_flatview(mv_machine_find_as(b.m, names[i]));
		const struct mv_flat_range *r = mv_flatview_ranges(fv, &nr);

		for (k = 0; k < nr; k++) {
			json_t *x = find_range(doc, &r[k]);
			json_t *path = json_object_get(x, "path");
			size_t n = json_array_size(path);

			/* The path ends at the region that answers. */
			if (!json_is_array(path) || !n)
				fail_msg("range %zu of %s has no path", k,
					 names[i]);
			assert_string_equal(jstr(json_array_get(path, n - 1),
						 "region"),
					    mv_region_name(r[k].mr));
			/* The ISA window shows the alias that put it there. */
			if (r[k].first == 0xe0000) {
				assert_int_equal(n, 4);
				assert_string_equal(
					jstr(json_array_get(path, 0), "region"),
					"system");
				assert_string_equal(
					jstr(json_array_get(path, 2), "region"),
					"isa-bios");
			}
		}
		total += nr;
		mv_flatview_unref(fv);
	}
	/* Two distinct views, nothing more, nothing less. */
	json_array_foreach(json_object_get(doc, "flatviews"), k, v)
		listed += json_array_size(json_object_get(v, "ranges"));
	assert_int_equal(json_array_size(json_object_get(doc, "flatviews")), 2);
	assert_int_equal(listed, total);
	json_decref(doc);
	free(text);
	bench_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_pc_like),
		cmocka_unit_test(test_flat_pc_like),
		cmocka_unit_test(test_ramblock_pc_like),
		cmocka_unit_test(test_tree_children_order),
		cmocka_unit_test(test_tree_disabled_regions),
		cmocka_unit_test(test_tree_alias_target_blocks),
		cmocka_unit_test(test_tree_nested_alias_target),
		cmocka_unit_test(test_tree_types),
		cmocka_unit_test(test_flat_types),
		cmocka_unit_test(test_tree_sizes),
		cmocka_unit_test(test_flat_sizes),
		cmocka_unit_test(test_explain_text),
		cmocka_unit_test(test_explain_json),
		cmocka_unit_test(test_mtree_json_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
