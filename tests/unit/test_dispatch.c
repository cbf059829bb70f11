// SPDX-License-Identifier: MIT
/*
 * One test per rule of the access path, shared/reference/qemu-memory.md
 * §3.8 (address_space_rw -> flatview_read/write_continue ->
 * memory_region_dispatch_read/write), plus translation, mappings and the
 * dirty bits writes leave.  Expected calls and values are worked out by
 * hand from QEMU 7.2's code, not from our output.
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

#include "helpers.h"

#define PAGE 0x1000ull
#define MAX_CALLS 16
#define DEV_SIZE 0x40

/*
 * struct dev - a recording device.  Its registers are @regs, bytes as the
 * guest sees them: a read of N bytes at A returns regs[A..A+N) composed in
 * the device's byte order, a write stores the value back the same way, so a
 * correct split and shift of any access reproduces @regs in the buffer.
 */
struct call {
	bool is_write;
	uint64_t addr;
	uint64_t data;
	unsigned size;
};

struct dev {
	struct mv_region_ops ops;
	uint8_t regs[DEV_SIZE + 8];
	struct call calls[MAX_CALLS];
	size_t nr;
	bool refuse;
};

static bool dev_big(const struct dev *d)
{
	return d->ops.endianness == MV_ENDIAN_BIG;
}

static void record(struct dev *d, bool is_write, uint64_t addr, uint64_t data,
		   unsigned size)
{
	assert_true(d->nr < MAX_CALLS);
	d->calls[d->nr++] = (struct call){ is_write, addr, data, size };
}

static unsigned dev_read(void *opaque, uint64_t addr, uint64_t *data,
			 unsigned size)
{
	struct dev *d = opaque;
	uint64_t v = 0;
	unsigned i;

	assert_true(addr + size <= sizeof(d->regs));
	for (i = 0; i < size; i++)
		v |= (uint64_t)d->regs[addr + i]
		     << (dev_big(d) ? (size - 1 - i) * 8 : i * 8);
	*data = v;
	record(d, false, addr, v, size);
	return MV_MEMTX_OK;
}

static unsigned dev_write(void *opaque, uint64_t addr, uint64_t data,
			  unsigned size)
{
	struct dev *d = opaque;
	unsigned i;

	assert_true(addr + size <= sizeof(d->regs));
	for (i = 0; i < size; i++)
		d->regs[addr + i] =
			(uint8_t)(data >>
				  (dev_big(d) ? (size - 1 - i) * 8 : i * 8));
	record(d, true, addr, data, size);
	return MV_MEMTX_OK;
}

static bool dev_accepts(void *opaque, uint64_t addr, unsigned size,
			bool is_write)
{
	struct dev *d = opaque;

	(void)addr;
	(void)size;
	(void)is_write;
	return !d->refuse;
}

/* A device with valid sizes @vmin..@vmax and implemented @imin..@imax. */
static void dev_init(struct dev *d, enum mv_endian e, unsigned vmin,
		     unsigned vmax, unsigned imin, unsigned imax)
{
	unsigned i;

	memset(d, 0, sizeof(*d));
	d->ops.read = dev_read;
	d->ops.write = dev_write;
	d->ops.accepts = dev_accepts;
	d->ops.endianness = e;
	d->ops.valid.min_access_size = vmin;
	d->ops.valid.max_access_size = vmax;
	d->ops.impl.min_access_size = imin;
	d->ops.impl.max_access_size = imax;
	for (i = 0; i < sizeof(d->regs); i++)
		d->regs[i] = (uint8_t)(0x10 + i);
}

static void expect_call(const struct dev *d, size_t i, bool is_write,
			uint64_t addr, unsigned size)
{
	assert_true(i < d->nr);
	assert_int_equal(d->calls[i].is_write, is_write);
	assert_int_equal(d->calls[i].addr, addr);
	assert_int_equal(d->calls[i].size, size);
}

/* The machine, "sys" (2^64) as address space "memory", owned regions. */
struct ctx {
	struct mv_machine *m;
	struct mv_region *sys;
	struct mv_as *as;
	struct mv_test_regions owned;
	struct dev dev;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c || mv_machine_new(&c->m) ||
	    mv_region_new_container(c->m, "sys", UINT64_MAX, &c->sys) ||
	    mv_as_new(c->m, "memory", c->sys, &c->as))
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	mv_test_unref_all(&c->owned);
	mv_region_unref(c->sys);
	mv_machine_free(c->m);
	free(c);
	return 0;
}

/* Take over the reference a constructor returned in *@r with @ret. */
static struct mv_region *track(struct ctx *c, int ret, struct mv_region **r)
{
	return mv_test_track(&c->owned, ret, r);
}

/* Map @r at @addr in sys and check the views. */
static struct mv_region *map(struct ctx *c, uint64_t addr, struct mv_region *r)
{
	assert_int_equal(mv_region_add_subregion(c->sys, addr, r), 0);
	mv_test_check_views(c->m);
	return r;
}

static struct mv_region *ram_at(struct ctx *c, const char *name, uint64_t addr,
				uint64_t size)
{
	struct mv_region *r = NULL;

	track(c, mv_region_new_ram(c->m, name, size, NULL, &r), &r);
	return map(c, addr, r);
}

static struct mv_region *rom_at(struct ctx *c, const char *name, uint64_t addr,
				uint64_t size)
{
	struct mv_region *r = NULL;

	track(c, mv_region_new_rom(c->m, name, size, NULL, &r), &r);
	return map(c, addr, r);
}

static struct mv_region *dev_at(struct ctx *c, uint64_t addr)
{
	struct mv_region *r = NULL;

	track(c,
	      mv_region_new_io(c->m, "dev", DEV_SIZE, &c->dev.ops, &c->dev, &r),
	      &r);
	return map(c, addr, r);
}

static uint8_t *ram_ptr(struct mv_region *r)
{
	return mv_region_ram_ptr(r);
}

/* Every client's bits of @r cleared. */
static void reset_dirty(struct mv_region *r)
{
	unsigned cl;

	for (cl = 0; cl < MV_DIRTY_NR_CLIENTS; cl++)
		mv_region_reset_dirty(r, 0, mv_region_size(r), cl);
}

static bool dirty_all_clients(struct mv_region *r, uint64_t addr, uint64_t size)
{
	unsigned cl;

	for (cl = 0; cl < MV_DIRTY_NR_CLIENTS; cl++)
		if (!mv_region_get_dirty(r, addr, size, cl))
			return false;
	return true;
}

static bool dirty_any_client(struct mv_region *r, uint64_t addr, uint64_t size)
{
	unsigned cl;

	for (cl = 0; cl < MV_DIRTY_NR_CLIENTS; cl++)
		if (mv_region_get_dirty(r, addr, size, cl))
			return true;
	return false;
}

/* ---- RAM ---------------------------------------------------------------- */

/* RAM pieces end at the range end: one access spans two RAM regions. */
static void test_ram_access_split_at_range_boundary(void **state)
{
	struct ctx *c = *state;
	struct mv_region *a = ram_at(c, "a", 0, 2 * PAGE);
	struct mv_region *b = ram_at(c, "b", 2 * PAGE, 2 * PAGE);
	uint8_t out[0x100], in[0x100];
	size_t i;

	for (i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(mv_as_write(c->as, 2 * PAGE - 0x80, out, sizeof(out)),
			 MV_MEMTX_OK);
	assert_memory_equal(ram_ptr(a) + 2 * PAGE - 0x80, out, 0x80);
	assert_memory_equal(ram_ptr(b), out + 0x80, 0x80);
	memset(in, 0, sizeof(in));
	assert_int_equal(mv_as_read(c->as, 2 * PAGE - 0x80, in, sizeof(in)),
			 MV_MEMTX_OK);
	assert_memory_equal(in, out, sizeof(in));
}

/* A RAM range that is a window of its region reads at offset_in_region. */
static void test_ram_access_uses_offset_in_region(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = NULL, *al = NULL;
	uint8_t v = 0;

	track(c, mv_region_new_ram(c->m, "r", 4 * PAGE, NULL, &r), &r);
	track(c, mv_region_new_alias(c->m, "al", r, 3 * PAGE + 5, 0x10, &al),
	      &al);
	map(c, 0x100000, al);
	ram_ptr(r)[3 * PAGE + 7] = 0x5a;
	assert_int_equal(mv_as_read(c->as, 0x100002, &v, 1), MV_MEMTX_OK);
	assert_int_equal(v, 0x5a);
}

/* ROM = RAM + readonly: reads direct; a write goes to unassigned_mem_ops
 * (QEMU leaves a RAM region's ops unassigned) and is refused. */
static void test_rom_write_refused_read_direct(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = rom_at(c, "rom", 0xf0000, PAGE);
	uint8_t b[4] = { 1, 2, 3, 4 }, in[4];

	memset(ram_ptr(r), 0xc3, PAGE);
	reset_dirty(r);
	assert_int_equal(mv_as_write(c->as, 0xf0010, b, 4),
			 MV_MEMTX_DECODE_ERROR);
	assert_int_equal(ram_ptr(r)[0x10], 0xc3);
	assert_false(dirty_any_client(r, 0, PAGE));
	assert_int_equal(mv_as_store(c->as, 0xf0010, 4, MV_ENDIAN_LITTLE, 1),
			 MV_MEMTX_DECODE_ERROR);
	assert_int_equal(mv_as_read(c->as, 0xf0010, in, 4), MV_MEMTX_OK);
	assert_memory_equal(in, "\xc3\xc3\xc3\xc3", 4);
}

/* memory_access_is_direct() looks at mr->readonly: a readonly alias of
 * RAM only renders readonly ranges (KVM slots), writes reach the RAM. */
static void test_readonly_alias_write_reaches_ram(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = NULL, *al = NULL;
	uint8_t b = 0x77;

	track(c, mv_region_new_ram(c->m, "r", PAGE, NULL, &r), &r);
	track(c, mv_region_new_alias(c->m, "ro", r, 0, PAGE, &al), &al);
	assert_int_equal(mv_region_set_readonly(al, true), 0);
	map(c, 0x200000, al);
	assert_int_equal(mv_as_write(c->as, 0x200010, &b, 1), MV_MEMTX_OK);
	assert_int_equal(ram_ptr(r)[0x10], 0x77);
}

/* ---- ROM devices -------------------------------------------------------- */

static struct mv_region *romdev_at(struct ctx *c, uint64_t addr)
{
	struct mv_region *r = NULL;

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 1, 4);
	track(c,
	      mv_region_new_rom_device(c->m, "flash", PAGE, &c->dev.ops,
				       &c->dev, NULL, &r),
	      &r);
	memset(ram_ptr(r), 0xee, PAGE);
	return map(c, addr, r);
}

/* romd mode reads the RAM directly; romd off sends reads to the ops. */
static void test_rom_device_romd_reads_ram_else_ops(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = romdev_at(c, 0x300000);
	uint8_t in[2];

	assert_int_equal(mv_as_read(c->as, 0x300004, in, 2), MV_MEMTX_OK);
	assert_memory_equal(in, "\xee\xee", 2);
	assert_int_equal(c->dev.nr, 0);
	assert_int_equal(mv_region_rom_device_set_romd(r, false), 0);
	mv_test_check_views(c->m);
	assert_int_equal(mv_as_read(c->as, 0x300004, in, 2), MV_MEMTX_OK);
	assert_memory_equal(in, "\x14\x15", 2);
	assert_int_equal(c->dev.nr, 1);
	expect_call(&c->dev, 0, false, 4, 2);
}

/* Writes to a ROM device go to its ops in either mode, never to the RAM. */
static void test_rom_device_writes_go_to_ops(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = romdev_at(c, 0x300000);
	uint8_t b[2] = { 0xab, 0xcd };

	reset_dirty(r);
	assert_int_equal(mv_as_write(c->as, 0x300008, b, 2), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 1);
	expect_call(&c->dev, 0, true, 8, 2);
	assert_int_equal(c->dev.calls[0].data, 0xcdab);
	assert_int_equal(ram_ptr(r)[8], 0xee);
	assert_false(dirty_any_client(r, 0, PAGE));
}

/* ---- MMIO sizes ----------------------------------------------------------- */

/* impl 1-1 under valid 1-4: a 4-byte access is four 1-byte calls at
 * addr + i, each shifted by i * 8 (little-endian device). */
static void test_mmio_impl_max_splits_into_calls(void **state)
{
	struct ctx *c = *state;
	uint8_t in[4], out[4] = { 0xa0, 0xa1, 0xa2, 0xa3 };
	size_t i;

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 1, 1);
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000004, in, 4), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 4);
	for (i = 0; i < 4; i++)
		expect_call(&c->dev, i, false, 4 + i, 1);
	assert_memory_equal(in, "\x14\x15\x16\x17", 4);
	c->dev.nr = 0;
	assert_int_equal(mv_as_write(c->as, 0x1000008, out, 4), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 4);
	for (i = 0; i < 4; i++) {
		expect_call(&c->dev, i, true, 8 + i, 1);
		assert_int_equal(c->dev.calls[i].data, out[i]);
	}
}

/* impl.min 4: a 1-byte access becomes one 4-byte call, masked back. */
static void test_mmio_impl_min_widens_and_masks(void **state)
{
	struct ctx *c = *state;
	uint8_t in = 0, out = 0x99;

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 4, 4);
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000009, &in, 1), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 1);
	expect_call(&c->dev, 0, false, 9, 4);
	assert_int_equal(in, 0x19);
	assert_int_equal(mv_as_write(c->as, 0x1000004, &out, 1), MV_MEMTX_OK);
	expect_call(&c->dev, 1, true, 4, 4);
	assert_int_equal(c->dev.calls[1].data, 0x99);
}

/* !valid.unaligned refuses a misaligned access the device would see whole
 * (impl.unaligned, or a typed access, which is never split). */
static void test_mmio_unaligned_refused(void **state)
{
	struct ctx *c = *state;
	uint8_t in[4] = { 1, 1, 1, 1 };
	uint64_t v = 1;

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 1, 4);
	c->dev.ops.impl.unaligned = true;
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000002, in, 4),
			 MV_MEMTX_DECODE_ERROR);
	assert_memory_equal(in, "\0\0\0\0", 4);
	assert_int_equal(mv_as_load(c->as, 0x1000001, 2, MV_ENDIAN_LITTLE, &v),
			 MV_MEMTX_DECODE_ERROR);
	assert_int_equal(v, 0);
	assert_int_equal(c->dev.nr, 0);
	/* valid.unaligned lets the same access through */
	c->dev.ops.valid.unaligned = true;
	assert_int_equal(mv_as_read(c->as, 0x1000002, in, 4), MV_MEMTX_OK);
	expect_call(&c->dev, 0, false, 2, 4);
}

/* Without impl.unaligned, memory_access_size() bounds each piece by the
 * address alignment: 4 bytes at offset 2 are 2 + 2. */
static void test_mmio_access_size_bounded_by_alignment(void **state)
{
	struct ctx *c = *state;
	uint8_t in[4];

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 1, 4);
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000002, in, 4), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 2);
	expect_call(&c->dev, 0, false, 2, 2);
	expect_call(&c->dev, 1, false, 4, 2);
	assert_memory_equal(in, "\x12\x13\x14\x15", 4);
}

/* valid.accepts refusing: a decode error, reads 0, no callback. */
static void test_mmio_accepts_refusal(void **state)
{
	struct ctx *c = *state;
	uint8_t in[2] = { 9, 9 };

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 1, 4);
	c->dev.refuse = true;
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000000, in, 2),
			 MV_MEMTX_DECODE_ERROR);
	assert_memory_equal(in, "\0\0", 2);
	assert_int_equal(mv_as_write(c->as, 0x1000000, in, 2),
			 MV_MEMTX_DECODE_ERROR);
	assert_int_equal(c->dev.nr, 0);
}

/* valid.max 4: memory_access_size() cuts 8 bytes into two 4-byte pieces. */
static void test_mmio_8_bytes_split_by_valid_max(void **state)
{
	struct ctx *c = *state;
	uint8_t in[8];

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 1, 4);
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000008, in, 8), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 2);
	expect_call(&c->dev, 0, false, 8, 4);
	expect_call(&c->dev, 1, false, 12, 4);
	assert_memory_equal(in, "\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f", 8);
}

/* pow2floor: 3 bytes are 2 + 1. */
static void test_mmio_3_bytes_are_2_plus_1(void **state)
{
	struct ctx *c = *state;
	uint8_t in[3];

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 8, 1, 8);
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000010, in, 3), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 2);
	expect_call(&c->dev, 0, false, 0x10, 2);
	expect_call(&c->dev, 1, false, 0x12, 1);
	assert_memory_equal(in, "\x20\x21\x22", 3);
}

/* valid.max 0 means 4 (and no size check at all). */
static void test_mmio_valid_max_zero_means_4(void **state)
{
	struct ctx *c = *state;
	uint8_t in[8];

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 0, 0, 0, 0);
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000000, in, 8), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 2);
	expect_call(&c->dev, 0, false, 0, 4);
	expect_call(&c->dev, 1, false, 4, 4);
}

/* A big-endian device: the value is swapped into guest byte order, and
 * its split calls shift by (size - access_size - i) * 8. */
static void test_mmio_big_endian_device_swaps(void **state)
{
	struct ctx *c = *state;
	uint8_t in[4], out[4] = { 0xaa, 0xbb, 0xcc, 0xdd };

	dev_init(&c->dev, MV_ENDIAN_BIG, 1, 4, 1, 4);
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_read(c->as, 0x1000000, in, 4), MV_MEMTX_OK);
	assert_int_equal(c->dev.calls[0].data, 0x10111213);
	assert_memory_equal(in, "\x10\x11\x12\x13", 4);
	assert_int_equal(mv_as_write(c->as, 0x1000004, out, 4), MV_MEMTX_OK);
	expect_call(&c->dev, 1, true, 4, 4);
	assert_int_equal(c->dev.calls[1].data, 0xaabbccdd);
	/* impl 1-1: byte i carries the value's bits (4 - 1 - i) * 8 */
	c->dev.ops.impl.max_access_size = 1;
	c->dev.nr = 0;
	assert_int_equal(mv_as_read(c->as, 0x1000004, in, 4), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 4);
	assert_memory_equal(in, out, 4);
	/* impl.min 4 under a 2-byte access: shift -16, the top half */
	c->dev.ops.impl.min_access_size = 4;
	c->dev.ops.impl.max_access_size = 4;
	assert_int_equal(mv_as_read(c->as, 0x1000008, in, 2), MV_MEMTX_OK);
	expect_call(&c->dev, 4, false, 8, 4);
	assert_memory_equal(in, "\x18\x19", 2);
}

/* A reservation (I/O with no ops) refuses everything. */
static void test_reservation_refuses_everything(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = NULL;
	uint8_t in[8] = { 1 };

	track(c, mv_region_new_reservation(c->m, "resv", PAGE, &r), &r);
	map(c, 0x400000, r);
	assert_int_equal(mv_as_read(c->as, 0x400000, in, 8),
			 MV_MEMTX_DECODE_ERROR);
	assert_memory_equal(in, "\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(mv_as_write(c->as, 0x400000, in, 8),
			 MV_MEMTX_DECODE_ERROR);
}

/* ---- holes, attributes, arguments ---------------------------------------- */

/* A hole is io_mem_unassigned: decode error, reads 0; the pieces around it
 * still work. */
static void test_hole_decode_error_reads_zero(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram_at(c, "r", 0, PAGE);
	uint8_t in[0x20];

	memset(ram_ptr(r), 0x42, PAGE);
	memset(in, 0x99, sizeof(in));
	assert_int_equal(mv_as_read(c->as, PAGE - 0x10, in, sizeof(in)),
			 MV_MEMTX_DECODE_ERROR);
	assert_int_equal(in[0], 0x42);
	assert_int_equal(in[0xf], 0x42);
	assert_int_equal(in[0x10], 0);
	assert_int_equal(in[0x1f], 0);
	assert_int_equal(mv_as_write(c->as, 0x5000, in, 4),
			 MV_MEMTX_DECODE_ERROR);
}

static unsigned port60_read(void *opaque, uint64_t addr, uint64_t *data,
			    unsigned size)
{
	(void)opaque;
	(void)addr;
	(void)size;
	*data = 0x5a;
	return MV_MEMTX_OK;
}

/* The x86 `io` root is unassigned_io_ops: it renders as the background
 * range, so an unmapped port reads all-ones through the normal path. */
static void test_io_root_unmapped_port_reads_ones(void **state)
{
	static const struct mv_region_ops port60 = {
		.read = port60_read,
		.valid = { .min_access_size = 1, .max_access_size = 1 },
	};
	struct ctx *c = *state;
	struct mv_region *root = NULL, *kbd = NULL;
	struct mv_as *io = NULL;
	uint8_t b[2] = { 0, 0 };
	uint64_t v = 0;

	track(c,
	      mv_region_new_io(c->m, "io", 0x10000, &mv_unassigned_io_ops, NULL,
			       &root),
	      &root);
	track(c, mv_region_new_io(c->m, "kbd", 1, &port60, NULL, &kbd), &kbd);
	assert_int_equal(mv_region_add_subregion(root, 0x60, kbd), 0);
	assert_int_equal(mv_as_new(c->m, "I/O", root, &io), 0);
	mv_test_check_views(c->m);
	assert_int_equal(mv_as_read(io, 0x70, b, 2), MV_MEMTX_OK);
	assert_memory_equal(b, "\xff\xff", 2);
	assert_int_equal(mv_as_load(io, 0xcf8, 4, MV_ENDIAN_LITTLE, &v),
			 MV_MEMTX_OK);
	assert_int_equal(v, 0xffffffff);
	assert_int_equal(mv_as_write(io, 0x80, b, 1), MV_MEMTX_OK);
	assert_int_equal(mv_as_read(io, 0x60, b, 1), MV_MEMTX_OK);
	assert_int_equal(b[0], 0x5a);
	/* past the 64 KiB root: a real hole */
	assert_int_equal(mv_as_read(io, 0x10000, b, 1), MV_MEMTX_DECODE_ERROR);
	assert_int_equal(b[0], 0);
}

/* MV_ATTR_MEMORY (attrs.memory): any non-RAM piece is an access error;
 * on the first piece the whole access is refused at once. */
static void test_attr_memory_refuses_non_ram(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram_at(c, "r", 0, PAGE), *after;
	uint8_t in[8];

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 1, 4);
	dev_at(c, PAGE);
	memset(ram_ptr(r), 0x42, PAGE);
	memset(in, 0x99, sizeof(in));
	assert_int_equal(mv_as_rw(c->as, PAGE, in, 4, false, MV_ATTR_MEMORY),
			 MV_MEMTX_ACCESS_ERROR);
	assert_int_equal(c->dev.nr, 0);
	/* RAM first, then the device: the RAM part is read */
	assert_int_equal(mv_as_rw(c->as, PAGE - 4, in, 8, false,
				  MV_ATTR_MEMORY),
			 MV_MEMTX_ACCESS_ERROR);
	assert_memory_equal(in, "\x42\x42\x42\x42\0\0\0\0", 8);
	assert_int_equal(c->dev.nr, 0);
	assert_int_equal(mv_as_rw(c->as, 0, in, 8, false, MV_ATTR_MEMORY),
			 MV_MEMTX_OK);
	/* the device first: nothing at all, not even the RAM after it */
	after = ram_at(c, "after", PAGE + DEV_SIZE, PAGE);
	memset(in, 0x99, sizeof(in));
	assert_int_equal(mv_as_rw(c->as, PAGE + DEV_SIZE - 4, in, 8, true,
				  MV_ATTR_MEMORY),
			 MV_MEMTX_ACCESS_ERROR);
	assert_int_equal(ram_ptr(after)[0], 0);
	assert_int_equal(mv_as_rw(c->as, PAGE + DEV_SIZE - 4, in, 8, false,
				  MV_ATTR_MEMORY),
			 MV_MEMTX_ACCESS_ERROR);
	assert_memory_equal(in, "\0\0\0\0\0\0\0\0", 8);
	assert_int_equal(c->dev.nr, 0);
	/* a hole is not RAM either */
	assert_int_equal(mv_as_rw(c->as, 0x10000, in, 1, true, MV_ATTR_MEMORY),
			 MV_MEMTX_ACCESS_ERROR);
	assert_int_equal(mv_as_rw(c->as, 0, in, 1, false, 1u << 5), -EINVAL);
}

/* len 0 does nothing; a range past 2^64 is refused; one ending exactly at
 * 2^64 is fine. */
static void test_access_bounds_and_arguments(void **state)
{
	struct ctx *c = *state;
	struct mv_region *top = ram_at(c, "top", 0ull - PAGE, PAGE);
	uint8_t b[4] = { 1, 2, 3, 4 }, in[4];
	uint64_t v;

	assert_int_equal(mv_as_read(c->as, 0, NULL, 0), 0);
	assert_int_equal(mv_as_read(c->as, 0, NULL, 1), -EINVAL);
	assert_int_equal(mv_as_read(NULL, 0, in, 1), -EINVAL);
	assert_int_equal(mv_as_read(c->as, UINT64_MAX - 2, in, 4), -EINVAL);
	assert_int_equal(mv_as_read(c->as, 2, in, UINT64_MAX), -EINVAL);
	assert_int_equal(mv_as_write(c->as, UINT64_MAX - 3, b, 4), MV_MEMTX_OK);
	assert_memory_equal(ram_ptr(top) + PAGE - 4, b, 4);
	assert_int_equal(mv_as_read(c->as, UINT64_MAX - 3, in, 4), MV_MEMTX_OK);
	assert_memory_equal(in, b, 4);
	assert_int_equal(mv_as_load(c->as, UINT64_MAX, 2, MV_ENDIAN_LITTLE, &v),
			 -EINVAL);
	assert_int_equal(mv_as_load(c->as, 0, 3, MV_ENDIAN_LITTLE, &v),
			 -EINVAL);
	assert_int_equal(mv_as_load(c->as, UINT64_MAX - 3, 4, MV_ENDIAN_BIG,
				    &v),
			 MV_MEMTX_OK);
	assert_int_equal(v, 0x01020304);
}

/* ---- typed accesses ------------------------------------------------------- */

/* The value is in @e byte order in guest memory. */
static void test_typed_load_store_byte_order(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram_at(c, "r", 0, PAGE);
	uint64_t v = 0;

	assert_int_equal(mv_as_store(c->as, 0x10, 4, MV_ENDIAN_LITTLE,
				     0x11223344),
			 MV_MEMTX_OK);
	assert_memory_equal(ram_ptr(r) + 0x10, "\x44\x33\x22\x11", 4);
	assert_int_equal(mv_as_load(c->as, 0x10, 4, MV_ENDIAN_BIG, &v),
			 MV_MEMTX_OK);
	assert_int_equal(v, 0x44332211);
	assert_int_equal(mv_as_store(c->as, 0x20, 8, MV_ENDIAN_BIG,
				     0x0102030405060708ull),
			 MV_MEMTX_OK);
	assert_memory_equal(ram_ptr(r) + 0x20, "\1\2\3\4\5\6\7\x8", 8);
	assert_int_equal(mv_as_load(c->as, 0x20, 2, MV_ENDIAN_NATIVE, &v),
			 MV_MEMTX_OK);
	assert_int_equal(v, 0x0201);
	/* store truncates the value to its size */
	assert_int_equal(mv_as_store(c->as, 0x30, 1, MV_ENDIAN_LITTLE, 0x1ff),
			 MV_MEMTX_OK);
	assert_int_equal(ram_ptr(r)[0x30], 0xff);
	assert_int_equal(ram_ptr(r)[0x31], 0);
}

/* The QEMU-named wrappers: address_space_ldl_le() and friends. */
static void test_typed_wrappers_like_qemu(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram_at(c, "r", 0, PAGE);
	uint64_t q = 0;
	uint32_t l = 0;
	uint16_t w = 0;
	uint8_t b = 0;

	assert_int_equal(mv_as_stl_le(c->as, 0x40, 0xa1b2c3d4), MV_MEMTX_OK);
	assert_memory_equal(ram_ptr(r) + 0x40, "\xd4\xc3\xb2\xa1", 4);
	assert_int_equal(mv_as_ldl_be(c->as, 0x40, &l), MV_MEMTX_OK);
	assert_int_equal(l, 0xd4c3b2a1);
	assert_int_equal(mv_as_stw_be(c->as, 0x48, 0x1234), MV_MEMTX_OK);
	assert_int_equal(mv_as_lduw_le(c->as, 0x48, &w), MV_MEMTX_OK);
	assert_int_equal(w, 0x3412);
	assert_int_equal(mv_as_stq_le(c->as, 0x50, 0x1122334455667788ull),
			 MV_MEMTX_OK);
	assert_int_equal(mv_as_ldq_be(c->as, 0x50, &q), MV_MEMTX_OK);
	assert_int_equal(q, 0x8877665544332211ull);
	assert_int_equal(mv_as_stb(c->as, 0x58, 0x7f), MV_MEMTX_OK);
	assert_int_equal(mv_as_ldub(c->as, 0x58, &b), MV_MEMTX_OK);
	assert_int_equal(b, 0x7f);
	/* a hole: decode error and 0 */
	l = 1;
	assert_int_equal(mv_as_ldl_le(c->as, 0x100000, &l),
			 MV_MEMTX_DECODE_ERROR);
	assert_int_equal(l, 0);
}

/* A typed device access is one dispatch (MO_32 | devend): a device that
 * refuses 8 bytes refuses an 8-byte load, where the buffer path splits;
 * the device sees the value swapped iff its order differs from @e. */
static void test_typed_device_access_is_one_dispatch(void **state)
{
	struct ctx *c = *state;
	uint8_t in[8];
	uint64_t v = 1;

	dev_init(&c->dev, MV_ENDIAN_BIG, 1, 4, 1, 4);
	dev_at(c, 0x1000000);
	assert_int_equal(mv_as_load(c->as, 0x1000000, 8, MV_ENDIAN_LITTLE, &v),
			 MV_MEMTX_DECODE_ERROR);
	assert_int_equal(v, 0);
	assert_int_equal(c->dev.nr, 0);
	assert_int_equal(mv_as_read(c->as, 0x1000000, in, 8), MV_MEMTX_OK);
	assert_int_equal(c->dev.nr, 2);
	assert_int_equal(mv_as_load(c->as, 0x1000000, 4, MV_ENDIAN_BIG, &v),
			 MV_MEMTX_OK);
	assert_int_equal(v, 0x10111213);
	assert_int_equal(mv_as_load(c->as, 0x1000000, 4, MV_ENDIAN_LITTLE, &v),
			 MV_MEMTX_OK);
	assert_int_equal(v, 0x13121110);
	assert_int_equal(mv_as_store(c->as, 0x1000004, 2, MV_ENDIAN_BIG,
				     0xbeef),
			 MV_MEMTX_OK);
	assert_int_equal(c->dev.calls[c->dev.nr - 1].data, 0xbeef);
	assert_memory_equal(c->dev.regs + 4, "\xbe\xef", 2);
}

/* A typed access straddling two ranges takes the buffer path. */
static void test_typed_access_straddling_ranges(void **state)
{
	struct ctx *c = *state;
	struct mv_region *a = ram_at(c, "a", 0, PAGE);
	struct mv_region *b = ram_at(c, "b", PAGE, PAGE);
	uint64_t v = 0;

	assert_int_equal(mv_as_store(c->as, PAGE - 2, 4, MV_ENDIAN_LITTLE,
				     0xa1b2c3d4),
			 MV_MEMTX_OK);
	assert_memory_equal(ram_ptr(a) + PAGE - 2, "\xd4\xc3", 2);
	assert_memory_equal(ram_ptr(b), "\xb2\xa1", 2);
	assert_int_equal(mv_as_load(c->as, PAGE - 2, 4, MV_ENDIAN_LITTLE, &v),
			 MV_MEMTX_OK);
	assert_int_equal(v, 0xa1b2c3d4);
}

/* ---- translation, mappings, dirty bits ------------------------------------ */

/* Direct reads of RAM/ROM/romd, direct writes only of writable RAM; the
 * length runs to the end of the range. */
static void test_translate_direct_only(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram_at(c, "r", 0x10000, 2 * PAGE);
	struct mv_region *ro = rom_at(c, "rom", 0x20000, PAGE);
	uint64_t len = 0;
	void *hva = NULL;

	dev_init(&c->dev, MV_ENDIAN_LITTLE, 1, 4, 1, 4);
	dev_at(c, 0x30000);
	assert_int_equal(mv_as_translate(c->as, 0x10010, true, &hva, &len), 0);
	assert_ptr_equal(hva, ram_ptr(r) + 0x10);
	assert_int_equal(len, 2 * PAGE - 0x10);
	assert_int_equal(mv_as_translate(c->as, 0x20000, false, &hva, &len), 0);
	assert_ptr_equal(hva, ram_ptr(ro));
	assert_int_equal(len, PAGE);
	assert_int_equal(mv_as_translate(c->as, 0x20000, true, &hva, &len),
			 -EACCES);
	assert_int_equal(mv_as_translate(c->as, 0x30000, false, &hva, &len),
			 -ENOENT);
	assert_int_equal(mv_as_translate(c->as, 0x40000, false, &hva, &len),
			 -ENOENT);
}

/* A write mapping dirties the pages of @access_len bytes at unmap, not
 * before; the length runs to the end of the range. */
static void test_map_write_unmap_dirties(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram_at(c, "r", 0x10000, 4 * PAGE);
	struct mv_mapping mp;

	reset_dirty(r);
	assert_int_equal(mv_region_set_log(r, true, MV_DIRTY_VGA), 0);
	assert_int_equal(
		mv_as_map(c->as, 0x10000 + PAGE - 8, 0x100000, true, &mp), 0);
	assert_int_equal(mp.len, 3 * PAGE + 8);
	assert_ptr_equal(mp.hva, ram_ptr(r) + PAGE - 8);
	memset(mp.hva, 0x6b, 16);
	assert_false(dirty_any_client(r, 0, 4 * PAGE));
	mv_as_unmap(&mp, 16);
	assert_null(mp.fv);
	/* the clients that log the range: VGA here */
	assert_true(mv_region_get_dirty(r, 0, PAGE, MV_DIRTY_VGA));
	assert_true(mv_region_get_dirty(r, PAGE, PAGE, MV_DIRTY_VGA));
	assert_false(mv_region_get_dirty(r, 0, 2 * PAGE, MV_DIRTY_MIGRATION));
	assert_false(dirty_any_client(r, 2 * PAGE, 2 * PAGE));
	mv_as_unmap(&mp, 16); /* a second unmap is harmless */
	assert_int_equal(mv_as_map(c->as, 0x10000, 0, false, &mp), -EINVAL);
	assert_int_equal(mv_as_map(c->as, 0x50000, PAGE, false, &mp), -ENOENT);
	assert_null(mp.fv);
}

/* The mapping's view reference keeps the RAM mapped after the region left
 * the tree and lost its last other reference (ASan sees any use after
 * free). */
static void test_map_holds_view_after_region_removed(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = NULL;
	struct mv_mapping mp;

	assert_int_equal(mv_region_new_ram(c->m, "gone", PAGE, NULL, &r), 0);
	map(c, 0x10000, r);
	memset(ram_ptr(r), 0x3c, PAGE);
	assert_int_equal(mv_as_map(c->as, 0x10000, PAGE, true, &mp), 0);
	assert_int_equal(mv_region_del_subregion(c->sys, r), 0);
	mv_region_unref(r);
	mv_machine_reclaim(c->m);
	assert_int_equal(((uint8_t *)mp.hva)[PAGE - 1], 0x3c);
	memset(mp.hva, 0x4d, PAGE);
	mv_as_unmap(&mp, PAGE);
	mv_machine_reclaim(c->m);
	mv_test_check_views(c->m);
}

/* A read mapping dirties nothing. */
static void test_map_read_does_not_dirty(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram_at(c, "r", 0, PAGE);
	struct mv_mapping mp;

	reset_dirty(r);
	assert_int_equal(mv_as_map(c->as, 0, PAGE, false, &mp), 0);
	mv_as_unmap(&mp, PAGE);
	assert_false(dirty_any_client(r, 0, PAGE));
}

/*
 * invalidate_and_set_dirty(): RAM writes dirty exactly the pages they
 * touch, for the clients in the range's dirty-log mask (none while nothing
 * logs; VGA with mv_region_set_log; MIGRATION under global logging);
 * reads dirty nothing.
 */
static void test_ram_writes_set_dirty_bits(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram_at(c, "r", 0, 8 * PAGE);
	uint8_t b[16] = { 0 };

	assert_true(dirty_all_clients(r, 0, 8 * PAGE)); /* new block */
	reset_dirty(r);
	assert_int_equal(mv_as_write(c->as, 2 * PAGE - 8, b, 16), MV_MEMTX_OK);
	assert_false(dirty_any_client(r, 0, 8 * PAGE)); /* nobody logs */
	assert_int_equal(mv_region_set_log(r, true, MV_DIRTY_VGA), 0);
	assert_int_equal(mv_as_write(c->as, 2 * PAGE - 8, b, 16), MV_MEMTX_OK);
	assert_true(mv_region_get_dirty(r, PAGE, 1, MV_DIRTY_VGA));
	assert_true(mv_region_get_dirty(r, 2 * PAGE, 1, MV_DIRTY_VGA));
	assert_false(mv_region_get_dirty(r, PAGE, 2 * PAGE, MV_DIRTY_CODE));
	assert_false(
		mv_region_get_dirty(r, PAGE, 2 * PAGE, MV_DIRTY_MIGRATION));
	assert_false(dirty_any_client(r, 0, PAGE));
	assert_false(dirty_any_client(r, 3 * PAGE, 5 * PAGE));
	assert_int_equal(mv_as_read(c->as, 5 * PAGE, b, 16), MV_MEMTX_OK);
	assert_false(dirty_any_client(r, 5 * PAGE, PAGE));
	assert_int_equal(mv_machine_dirty_log_start(c->m), 0);
	assert_int_equal(mv_as_store(c->as, 6 * PAGE + 4, 4, MV_ENDIAN_LITTLE,
				     1),
			 MV_MEMTX_OK);
	assert_true(mv_region_get_dirty(r, 6 * PAGE, PAGE, MV_DIRTY_VGA));
	assert_true(mv_region_get_dirty(r, 6 * PAGE, PAGE, MV_DIRTY_MIGRATION));
	assert_false(mv_region_get_dirty(r, 6 * PAGE, PAGE, MV_DIRTY_CODE));
	assert_false(dirty_any_client(r, 7 * PAGE, PAGE));
	assert_int_equal(mv_machine_dirty_log_stop(c->m), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_ram_access_split_at_range_boundary),
		T(test_ram_access_uses_offset_in_region),
		T(test_rom_write_refused_read_direct),
		T(test_readonly_alias_write_reaches_ram),
		T(test_rom_device_romd_reads_ram_else_ops),
		T(test_rom_device_writes_go_to_ops),
		T(test_mmio_impl_max_splits_into_calls),
		T(test_mmio_impl_min_widens_and_masks),
		T(test_mmio_unaligned_refused),
		T(test_mmio_access_size_bounded_by_alignment),
		T(test_mmio_accepts_refusal),
		T(test_mmio_8_bytes_split_by_valid_max),
		T(test_mmio_3_bytes_are_2_plus_1),
		T(test_mmio_valid_max_zero_means_4),
		T(test_mmio_big_endian_device_swaps),
		T(test_reservation_refuses_everything),
		T(test_hole_decode_error_reads_zero),
		T(test_io_root_unmapped_port_reads_ones),
		T(test_attr_memory_refuses_non_ram),
		T(test_access_bounds_and_arguments),
		T(test_typed_load_store_byte_order),
		T(test_typed_wrappers_like_qemu),
		T(test_typed_device_access_is_one_dispatch),
		T(test_typed_access_straddling_ranges),
		T(test_translate_direct_only),
		T(test_map_write_unmap_dirties),
		T(test_map_holds_view_after_region_removed),
		T(test_map_read_does_not_dirty),
		T(test_ram_writes_set_dirty_bits),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
