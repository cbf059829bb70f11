// SPDX-License-Identifier: MIT
/*
 * The KVM memslot listener against the fake kernel (no /dev/kvm): one test
 * per rule of reference qemu-memory.md §4.1 and kvm-memslots.md §1-2.  The
 * VM talks to a recording wrapper around the fake, which keeps its own copy
 * of the kernel's slot table from the KVM_SET_USER_MEMORY_REGION calls that
 * succeeded; after every step mv_kvm_slots_check() must pass and the
 * listener's table must equal that copy.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <memvirt/kvm.h>

#include "helpers.h"

#define PAGE 0x1000ull
#define KiB 0x400ull
#define MiB 0x100000ull
#define LOG KVM_MEM_LOG_DIRTY_PAGES
#define RO KVM_MEM_READONLY
#define SHADOW_SLOTS 1024

/* ---- a recording kernel: the fake behind a wrapper -------------------- */

struct call {
	struct kvm_userspace_memory_region r;
	long ret;
};

struct shadow_slot {
	bool used;
	uint32_t flags;
	uint64_t gpa, size, hva;
};

/*
 * struct rec_sys - what the VM sees as its kernel: a copy of the fake's
 * struct mv_kvm_sys whose ops record each memslot request and forward
 * everything to the fake's own ops with the fake's pointer.  @shadow is
 * the kernel's slot table as the successful requests built it.
 */
struct rec_sys {
	struct mv_kvm_sys sys; /* first: the ops get &rec->sys */
	struct mv_kvm_sys *fake;
	struct call *calls;
	size_t nr_calls, cap;
	struct shadow_slot shadow[SHADOW_SLOTS];
};

static struct rec_sys *rec_of(struct mv_kvm_sys *s)
{
	return (struct rec_sys *)s;
}

static void shadow_apply(struct rec_sys *r,
			 const struct kvm_userspace_memory_region *m)
{
	struct shadow_slot *s;

	assert_true((uint16_t)m->slot < SHADOW_SLOTS);
	s = &r->shadow[(uint16_t)m->slot];
	if (!m->memory_size) {
		memset(s, 0, sizeof(*s));
		return;
	}
	*s = (struct shadow_slot){ true, m->flags, m->guest_phys_addr,
				   m->memory_size, m->userspace_addr };
}

static void record(struct rec_sys *r,
		   const struct kvm_userspace_memory_region *m, long ret)
{
	if (r->nr_calls == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->calls = realloc(r->calls, r->cap * sizeof(*r->calls));
		assert_non_null(r->calls);
	}
	r->calls[r->nr_calls++] = (struct call){ *m, ret };
	if (!ret)
		shadow_apply(r, m);
}

static int rec_open(struct mv_kvm_sys *s, const char *path)
{
	struct mv_kvm_sys *f = rec_of(s)->fake;

	return f->ops->open(f, path);
}

static int rec_close(struct mv_kvm_sys *s, int fd)
{
	struct mv_kvm_sys *f = rec_of(s)->fake;

	return f->ops->close(f, fd);
}

static long rec_ioctl(struct mv_kvm_sys *s, int fd, unsigned long req,
		      void *arg)
{
	struct mv_kvm_sys *f = rec_of(s)->fake;
	long ret = f->ops->ioctl(f, fd, req, arg);

	if (req == KVM_SET_USER_MEMORY_REGION)
		record(rec_of(s), arg, ret);
	return ret;
}

static int rec_mmap(struct mv_kvm_sys *s, int fd, size_t len, int prot,
		    off_t off, void **out)
{
	struct mv_kvm_sys *f = rec_of(s)->fake;

	return f->ops->mmap(f, fd, len, prot, off, out);
}

static int rec_munmap(struct mv_kvm_sys *s, void *addr, size_t len)
{
	struct mv_kvm_sys *f = rec_of(s)->fake;

	return f->ops->munmap(f, addr, len);
}

static const struct mv_kvm_sys_ops rec_ops = {
	.open = rec_open,
	.close = rec_close,
	.ioctl = rec_ioctl,
	.mmap = rec_mmap,
	.munmap = rec_munmap,
};

/* ---- fixture ------------------------------------------------------------ */

struct ctx {
	struct mv_machine *m;
	struct mv_region *root;
	struct mv_as *as;
	struct mv_kvm_sys *fake;
	struct rec_sys *rec;
	struct mv_kvm *k;
	struct mv_test_regions t;
	unsigned long step; /* for messages of the random test */
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c || mv_machine_new(&c->m) ||
	    mv_region_new_container(c->m, "system", UINT64_MAX, &c->root) ||
	    mv_as_new(c->m, "memory", c->root, &c->as) ||
	    mv_kvm_sys_fake_new(&c->fake))
		return -1;
	c->rec = calloc(1, sizeof(*c->rec));
	if (!c->rec)
		return -1;
	c->rec->sys = *c->fake;
	c->rec->sys.ops = &rec_ops;
	c->rec->fake = c->fake;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	mv_kvm_free(c->k);
	mv_test_unref_all(&c->t);
	mv_region_unref(c->root);
	mv_machine_free(c->m);
	mv_kvm_sys_fake_free(c->fake);
	free(c->rec->calls);
	free(c->rec);
	free(c);
	return 0;
}

/* The listener's table equals the kernel's, as the recorder saw it. */
static void check_shadow(struct ctx *c)
{
	size_t i, n = mv_kvm_slot_count(c->k, 0), used = 0;
	struct mv_kvm_slot_info info;

	for (i = 0; i < SHADOW_SLOTS; i++)
		used += c->rec->shadow[i].used;
	if (used != n)
		fail_msg("step %lu: %zu slots, the kernel has %zu", c->step, n,
			 used);
	for (i = 0; i < n; i++) {
		const struct shadow_slot *s;

		assert_int_equal(mv_kvm_slot_at(c->k, 0, i, &info), 0);
		assert_true(info.id < SHADOW_SLOTS);
		s = &c->rec->shadow[info.id];
		if (!s->used || s->gpa != info.gpa || s->size != info.size ||
		    s->hva != (uintptr_t)info.hva || s->flags != info.flags)
			fail_msg("step %lu: slot %u %" PRIx64 "+%" PRIx64
				 " differs from the kernel's",
				 c->step, info.id, info.gpa, info.size);
	}
}

/* After every step: the checker, the views, the kernel's copy. */
static void check(struct ctx *c)
{
	char why[256] = "";

	if (mv_kvm_slots_check(c->k, why, sizeof(why)))
		fail_msg("step %lu: mv_kvm_slots_check: %s", c->step, why);
	mv_test_check_views(c->m);
	check_shadow(c);
}

/* The checker must find the table and the view disagree (as expected). */
static void check_reports_mismatch(struct ctx *c)
{
	char why[256] = "";

	assert_int_equal(mv_kvm_slots_check(c->k, why, sizeof(why)), -EUCLEAN);
	mv_test_check_views(c->m);
	check_shadow(c);
}

/* Create the VM on the recording kernel and attach "memory" as as_id 0. */
static void start(struct ctx *c, struct mv_kvm_opts *o)
{
	struct mv_kvm_opts def = { 0 };

	if (!o)
		o = &def;
	o->sys = &c->rec->sys;
	assert_int_equal(mv_kvm_new(o, &c->k), 0);
	assert_int_equal(mv_kvm_attach(c->k, c->as, 0), 0);
	check(c);
}

static struct mv_region *add(struct ctx *c, struct mv_region *r, uint64_t addr,
			     int prio)
{
	assert_int_equal(
		mv_region_add_subregion_overlap(c->root, addr, r, prio), 0);
	return r;
}

static struct mv_region *ram(struct ctx *c, const char *name, uint64_t size)
{
	struct mv_region *r;

	return mv_test_track(&c->t,
			     mv_region_new_ram(c->m, name, size, NULL, &r), &r);
}

static struct mv_region *rom(struct ctx *c, const char *name, uint64_t size)
{
	struct mv_region *r;

	return mv_test_track(&c->t,
			     mv_region_new_rom(c->m, name, size, NULL, &r), &r);
}

static unsigned dev_read(void *opaque, uint64_t addr, uint64_t *data,
			 unsigned size)
{
	(void)opaque, (void)addr, (void)size;
	*data = 0;
	return MV_MEMTX_OK;
}

static unsigned dev_write(void *opaque, uint64_t addr, uint64_t data,
			  unsigned size)
{
	(void)opaque, (void)addr, (void)data, (void)size;
	return MV_MEMTX_OK;
}

static const struct mv_region_ops dev_ops = {
	.read = dev_read,
	.write = dev_write,
};

static struct mv_region *romdev(struct ctx *c, const char *name, uint64_t size)
{
	struct mv_region *r;

	return mv_test_track(&c->t,
			     mv_region_new_rom_device(c->m, name, size,
						      &dev_ops, NULL, NULL, &r),
			     &r);
}

static struct mv_region *mmio(struct ctx *c, const char *name, uint64_t size)
{
	struct mv_region *r;

	return mv_test_track(
		&c->t, mv_region_new_io(c->m, name, size, &dev_ops, NULL, &r),
		&r);
}

/* "GPA+SIZE FLAGS NAME@OFFSET" per slot in GPA order, '\n'-separated. */
static void expect_slots(struct ctx *c, const char *want)
{
	static const char *const fl[] = { "rw", "rw,log", "ro", "ro,log" };
	size_t i, n = mv_kvm_slot_count(c->k, 0), len = 0;
	struct mv_kvm_slot_info info;
	char *text = NULL;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	for (i = 0; i < n; i++) {
		assert_int_equal(mv_kvm_slot_at(c->k, 0, i, &info), 0);
		fprintf(f, "%s%" PRIx64 "+%" PRIx64 " %s %s@%" PRIx64,
			i ? "\n" : "", info.gpa, info.size, fl[info.flags & 3],
			mv_region_name(info.mr), info.offset_within_region);
		assert_ptr_equal(info.hva,
				 (uint8_t *)mv_region_ram_ptr(info.mr) +
					 info.offset_within_region);
	}
	fclose(f);
	if (strcmp(text, want)) {
		print_error("slots:\n%s\nexpected:\n%s\n", text, want);
		free(text);
		fail();
	}
	free(text);
}

static struct mv_kvm_slot_info slot_at_gpa(struct ctx *c, mv_gpa_t gpa)
{
	struct mv_kvm_slot_info info;

	assert_int_equal(mv_kvm_slot_lookup(c->k, 0, gpa, &info), 0);
	return info;
}

static void reset_vga(struct mv_region *r)
{
	mv_region_reset_dirty(r, 0, UINT64_MAX, MV_DIRTY_VGA);
}

/* The VGA-dirty pages of @r as '0'/'1', from page 0. */
static void expect_dirty(struct mv_region *r, const char *want)
{
	size_t i, n = strlen(want);
	char got[256];

	assert_true(n < sizeof(got));
	for (i = 0; i < n; i++)
		got[i] = mv_region_get_dirty(r, i * PAGE, PAGE, MV_DIRTY_VGA) ?
				 '1' :
				 '0';
	got[n] = 0;
	assert_string_equal(got, want);
}

static void guest_write(struct ctx *c, mv_gpa_t gpa)
{
	assert_int_equal(mv_kvm_sys_fake_guest_write(c->fake,
						     mv_kvm_vm_fd(c->k), gpa),
			 0);
}

/* ---- what gets a slot ------------------------------------------------- */

/* RAM: a read-write slot whose hva is the block's pointer plus offset. */
static void test_ram_range_gets_rw_slot(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram(c, "ram", 64 * KiB);
	struct mv_kvm_slot_info info;

	start(c, NULL);
	add(c, r, 0x10000, 0);
	check(c);
	expect_slots(c, "10000+10000 rw ram@0");
	info = slot_at_gpa(c, 0x10000);
	assert_ptr_equal(info.hva, mv_region_ram_ptr(r));
	assert_ptr_equal(info.mr, r);
	assert_int_equal(info.as_id, 0);
}

/* ROM (readonly RAM): KVM_MEM_READONLY. */
static void test_rom_gets_readonly_slot(void **state)
{
	struct ctx *c = *state;

	start(c, NULL);
	add(c, rom(c, "rom", 64 * KiB), 0xe0000, 0);
	check(c);
	expect_slots(c, "e0000+10000 ro rom@0");
}

/*
 * Without KVM_CAP_READONLY_MEM QEMU 7.2 still maps ROM, writable (guest
 * writes reach the ROM's memory), whether the kernel lacks the capability
 * or opts.no_readonly pretends it does.
 */
static void test_rom_without_readonly_mem_gets_writable_slot(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_opts o = { .no_readonly = true };

	start(c, &o);
	add(c, rom(c, "rom", 64 * KiB), 0xe0000, 0);
	check(c);
	expect_slots(c, "e0000+10000 rw rom@0");

	mv_kvm_free(c->k);
	c->k = NULL;
	assert_int_equal(
		mv_kvm_sys_fake_set_cap(c->fake, KVM_CAP_READONLY_MEM, 0), 0);
	start(c, NULL);
	expect_slots(c, "e0000+10000 rw rom@0");
}

/*
 * A ROM device in romd mode: a read-only slot; out of romd mode the slot
 * goes (every access must trap to the device), back in it comes back.
 */
static void test_romd_device_gets_readonly_slot_only_in_romd_mode(void **state)
{
	struct ctx *c = *state;
	struct mv_region *d = romdev(c, "flash", 128 * KiB);

	start(c, NULL);
	add(c, d, 0xfffe0000, 0);
	check(c);
	expect_slots(c, "fffe0000+20000 ro flash@0");
	assert_int_equal(mv_region_rom_device_set_romd(d, false), 0);
	check(c);
	expect_slots(c, "");
	assert_int_equal(mv_region_rom_device_set_romd(d, true), 0);
	check(c);
	expect_slots(c, "fffe0000+20000 ro flash@0");
}

/* Without read-only memory a ROM device always traps: no slot. */
static void test_rom_device_without_readonly_mem_gets_no_slot(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_opts o = { .no_readonly = true };
	struct mv_region *d = romdev(c, "flash", 128 * KiB);

	start(c, &o);
	add(c, d, 0xfffe0000, 0);
	check(c);
	expect_slots(c, "");
	assert_int_equal(mv_region_rom_device_set_romd(d, false), 0);
	assert_int_equal(mv_region_rom_device_set_romd(d, true), 0);
	check(c);
	expect_slots(c, "");
}

/* MMIO, port I/O and reservations have no memory behind them. */
static void test_mmio_and_io_get_no_slot(void **state)
{
	struct ctx *c = *state;
	struct mv_region *res;

	start(c, NULL);
	add(c, mmio(c, "mmio", 64 * KiB), 0xfe000000, 0);
	assert_int_equal(
		mv_region_new_reservation(c->m, "hole", 64 * KiB, &res), 0);
	mv_test_track(&c->t, 0, &res);
	add(c, res, 0xfe100000, 0);
	add(c, ram(c, "ram", 64 * KiB), 0, 0);
	check(c);
	expect_slots(c, "0+10000 rw ram@0");
}

/* An alias's slot maps the target's memory at the alias offset. */
static void test_alias_slot_maps_target_hva(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram(c, "ram", 1 * MiB), *a;

	start(c, NULL);
	mv_test_track(&c->t,
		      mv_region_new_alias(c->m, "win", r, 0x30000, 0x20000, &a),
		      &a);
	add(c, a, 0x100000, 0);
	check(c);
	expect_slots(c, "100000+20000 rw ram@30000");
	assert_ptr_equal(slot_at_gpa(c, 0x100000).hva,
			 (uint8_t *)mv_region_ram_ptr(r) + 0x30000);
	/* the target mapped too: two slots on the same memory */
	add(c, r, 0x200000, 0);
	check(c);
	expect_slots(c, "100000+20000 rw ram@30000\n200000+100000 rw ram@0");
	assert_int_equal(mv_region_set_alias_offset(a, 0x40000), 0);
	check(c);
	expect_slots(c, "100000+20000 rw ram@40000\n200000+100000 rw ram@0");
}

/* ---- alignment and size ---------------------------------------------- */

/*
 * kvm_align_section(): the start rounded up and the end down to the host
 * page; a range holding no whole page gets no slot.
 */
static void test_unaligned_edges_trimmed_to_pages(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram(c, "ram", 32 * KiB);
	struct mv_region *lo = mmio(c, "lo", 0x800), *hi = mmio(c, "hi", 0x400);

	start(c, NULL);
	add(c, r, 0x10000, 0);
	add(c, lo, 0x10000, 1); /* RAM range now starts at 0x10800 */
	check(c);
	expect_slots(c, "11000+7000 rw ram@1000");
	add(c, hi, 0x17c00, 1); /* ... and ends at 0x17bff */
	check(c);
	expect_slots(c, "11000+6000 rw ram@1000");
	assert_int_equal(mv_region_set_size(lo, 0x7400), 0);
	check(c); /* RAM range [0x17400, 0x17bff]: no whole page */
	expect_slots(c, "");
	assert_int_equal(mv_region_set_address(hi, 0x18000), 0);
	check(c); /* [0x17400, 0x17fff] */
	expect_slots(c, "");
	assert_int_equal(mv_region_set_size(lo, 0x6800), 0);
	check(c); /* [0x16800, 0x17fff]: one whole page, 0x17000 */
	expect_slots(c, "17000+1000 rw ram@7000");
	assert_int_equal(mv_region_set_size(lo, 0x6801), 0);
	check(c); /* [0x16801, 0x17fff]: still the page at 0x17000 */
	expect_slots(c, "17000+1000 rw ram@7000");
	assert_int_equal(mv_region_set_address(hi, 0x17801), 0);
	check(c); /* [0x16801, 0x17800]: 0x17000-0x17fff is not whole */
	expect_slots(c, "");
	assert_false(mv_kvm_has_memory(c->k, c->as, 0x16801, 0x1000));
}

/* Ranges longer than max_slot_size are cut into chunks, the last shorter. */
static void test_split_at_max_slot_size(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_opts o = { .max_slot_size = 1 * MiB };
	struct mv_region *r = ram(c, "ram", 3 * MiB + 512 * KiB);
	struct mv_kvm_stats st;

	start(c, &o);
	add(c, r, 0x40000000, 0);
	check(c);
	expect_slots(c, "40000000+100000 rw ram@0\n"
			"40100000+100000 rw ram@100000\n"
			"40200000+100000 rw ram@200000\n"
			"40300000+80000 rw ram@300000");
	/* kvm_accel_has_memory() caps the size it looks for */
	assert_true(mv_kvm_has_memory(c->k, c->as, 0x40000000,
				      3 * MiB + 512 * KiB));
	assert_true(mv_kvm_has_memory(c->k, c->as, 0x40000000, 1 * MiB));
	assert_true(mv_kvm_has_memory(c->k, c->as, 0x40300000, 512 * KiB));
	assert_int_equal(mv_region_set_enabled(r, false), 0);
	check(c);
	expect_slots(c, "");
	mv_kvm_get_stats(c->k, &st);
	assert_int_equal(st.slot_creates, 4);
	assert_int_equal(st.slot_deletes, 4);
	/* a max_slot_size that is not a page multiple is refused */
	o.max_slot_size = 1 * MiB + 1;
	{
		struct mv_kvm *k2;

		o.sys = &c->rec->sys;
		assert_int_equal(mv_kvm_new(&o, &k2), -EINVAL);
	}
}

/* kvm_get_free_slot(): the lowest free id, so freed ids are reused. */
static void test_slot_ids_reused_lowest_first(void **state)
{
	struct ctx *c = *state;
	struct mv_region *a = ram(c, "a", PAGE), *b = ram(c, "b", PAGE),
			 *d = ram(c, "d", PAGE), *e = ram(c, "e", PAGE),
			 *x = ram(c, "x", PAGE);

	start(c, NULL);
	add(c, a, 0x1000, 0);
	add(c, b, 0x2000, 0);
	add(c, d, 0x3000, 0);
	check(c);
	assert_int_equal(slot_at_gpa(c, 0x1000).id, 0);
	assert_int_equal(slot_at_gpa(c, 0x2000).id, 1);
	assert_int_equal(slot_at_gpa(c, 0x3000).id, 2);
	assert_int_equal(mv_region_del_subregion(c->root, b), 0);
	assert_int_equal(mv_region_del_subregion(c->root, a), 0);
	check(c);
	add(c, e, 0x5000, 0);
	check(c);
	assert_int_equal(slot_at_gpa(c, 0x5000).id, 0);
	/* deletions run first within a commit, so their ids are free */
	mv_txn_begin(c->m);
	assert_int_equal(mv_region_del_subregion(c->root, d), 0);
	add(c, x, 0x6000, 0);
	assert_int_equal(mv_txn_commit(c->m), 0);
	check(c);
	assert_int_equal(slot_at_gpa(c, 0x6000).id, 1);
	add(c, a, 0x1000, 0);
	check(c);
	assert_int_equal(slot_at_gpa(c, 0x1000).id, 2);
}

/*
 * A deleted slot's memory is kept for the next creation (poisoned under
 * ASan meanwhile): toggles, a delete and a create in one commit, and
 * deletions of several slots at once keep the table equal to the
 * kernel's and the ids lowest first.
 */
static void test_deleted_slot_reused(void **state)
{
	struct ctx *c = *state;
	struct mv_region *a = ram(c, "a", PAGE), *b = ram(c, "b", PAGE),
			 *d = ram(c, "d", PAGE);
	int i;

	start(c, NULL);
	add(c, a, 0x1000, 0);
	add(c, b, 0x2000, 0);
	add(c, d, 0x3000, 0);
	check(c);
	for (i = 0; i < 20; i++) {
		assert_int_equal(mv_region_set_enabled(b, i % 2 == 1), 0);
		check(c);
	}
	assert_int_equal(mv_region_set_enabled(b, true), 0);
	check(c);
	assert_int_equal(slot_at_gpa(c, 0x2000).id, 1);
	mv_txn_begin(c->m); /* a delete and a create in one commit */
	assert_int_equal(mv_region_set_enabled(a, false), 0);
	assert_int_equal(mv_region_set_address(b, 0x8000), 0);
	assert_int_equal(mv_txn_commit(c->m), 0);
	check(c);
	assert_int_equal(slot_at_gpa(c, 0x8000).id, 0);
	mv_txn_begin(c->m); /* two deletions, then two creations */
	assert_int_equal(mv_region_set_enabled(b, false), 0);
	assert_int_equal(mv_region_set_enabled(d, false), 0);
	assert_int_equal(mv_txn_commit(c->m), 0);
	check(c);
	assert_int_equal(mv_kvm_slot_count(c->k, 0), 0);
	mv_txn_begin(c->m);
	assert_int_equal(mv_region_set_enabled(a, true), 0);
	assert_int_equal(mv_region_set_enabled(d, true), 0);
	assert_int_equal(mv_txn_commit(c->m), 0);
	check(c);
	assert_int_equal(mv_kvm_slot_count(c->k, 0), 2);
}

/* ---- dirty logging ----------------------------------------------------- */

/*
 * KVM_MEM_LOG_DIRTY_PAGES follows the range's dirty-log mask, changed in
 * place (a flags-only update of the same slot, no delete/create).
 */
static void test_log_flag_follows_dirty_mask(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram(c, "vram", 64 * KiB),
			 *o = rom(c, "rom", PAGE);
	struct mv_kvm_stats st;
	size_t calls;
	unsigned id;

	start(c, NULL);
	add(c, r, 0xa0000, 0);
	add(c, o, 0xf0000, 0);
	check(c);
	id = slot_at_gpa(c, 0xa0000).id;
	calls = c->rec->nr_calls;
	assert_int_equal(mv_region_set_log(r, true, MV_DIRTY_VGA), 0);
	check(c);
	expect_slots(c, "a0000+10000 rw,log vram@0\nf0000+1000 ro rom@0");
	assert_int_equal(c->rec->nr_calls, calls + 1);
	assert_int_equal(c->rec->calls[calls].r.slot, id);
	assert_int_equal(c->rec->calls[calls].r.memory_size, 64 * KiB);
	assert_int_equal(c->rec->calls[calls].r.flags, LOG);
	mv_kvm_get_stats(c->k, &st);
	assert_int_equal(st.slot_flag_changes, 1);
	assert_int_equal(st.slot_creates, 2);
	assert_int_equal(st.slot_deletes, 0);

	assert_int_equal(mv_region_set_log(r, false, MV_DIRTY_VGA), 0);
	check(c);
	expect_slots(c, "a0000+10000 rw vram@0\nf0000+1000 ro rom@0");
	assert_int_equal(slot_at_gpa(c, 0xa0000).id, id);

	/* global logging (migration): every RAM range, ROM included */
	assert_int_equal(mv_machine_dirty_log_start(c->m), 0);
	check(c);
	expect_slots(c, "a0000+10000 rw,log vram@0\nf0000+1000 ro,log rom@0");
	assert_int_equal(mv_region_set_log(r, true, MV_DIRTY_VGA), 0);
	check(c);
	assert_int_equal(mv_machine_dirty_log_stop(c->m), 0);
	check(c); /* VGA still logs vram */
	expect_slots(c, "a0000+10000 rw,log vram@0\nf0000+1000 ro rom@0");
	assert_int_equal(mv_region_set_log(r, false, MV_DIRTY_VGA), 0);
	check(c);
	expect_slots(c, "a0000+10000 rw vram@0\nf0000+1000 ro rom@0");
	mv_kvm_get_stats(c->k, &st);
	assert_int_equal(st.slot_creates, 2);
	assert_int_equal(st.slot_deletes, 0);
}

/* A logging slot with page 3 dirtied by the guest since the last reset. */
static struct mv_region *logging_ram(struct ctx *c, mv_gpa_t gpa)
{
	struct mv_kvm_opts o = { .dirty_mode = MV_KVM_DIRTY_BITMAP };
	struct mv_region *r = ram(c, "vram", 16 * PAGE);

	start(c, &o);
	add(c, r, gpa, 0);
	assert_int_equal(mv_region_set_log(r, true, MV_DIRTY_VGA), 0);
	check(c);
	reset_vga(r);
	guest_write(c, gpa + 3 * PAGE);
	expect_dirty(r, "0000000000000000");
	return r;
}

/*
 * A logging slot's log is fetched before the slot is deleted, so the
 * guest's writes are not lost when the region goes away or moves.
 */
static void test_dirty_log_fetched_before_logging_slot_deleted(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = logging_ram(c, 0x100000);

	assert_int_equal(mv_region_set_enabled(r, false), 0);
	check(c);
	expect_dirty(r, "0001000000000000");
}

static void test_dirty_log_fetched_before_logging_slot_moved(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = logging_ram(c, 0x100000);

	assert_int_equal(mv_region_set_address(r, 0x200000), 0);
	check(c);
	expect_slots(c, "200000+10000 rw,log vram@0");
	expect_dirty(r, "0001000000000000");
	/* the new slot logs too */
	reset_vga(r);
	guest_write(c, 0x200000 + 5 * PAGE);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	expect_dirty(r, "0000010000000000");
}

static void test_dirty_log_fetched_before_log_turned_off(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = logging_ram(c, 0x100000);

	assert_int_equal(mv_region_set_log(r, false, MV_DIRTY_VGA), 0);
	check(c);
	expect_slots(c, "100000+10000 rw vram@0");
	expect_dirty(r, "0001000000000000");
}

/* Classic KVM_GET_DIRTY_LOG: each harvest reports what was written since. */
static void test_dirty_harvest_delivers_guest_writes_bitmap(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = logging_ram(c, 0x100000);

	assert_int_equal(mv_kvm_dirty_mode(c->k), MV_KVM_DIRTY_BITMAP);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	expect_dirty(r, "0001000000000000");
	reset_vga(r);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	expect_dirty(r, "0000000000000000"); /* GET cleared the kernel's */
	guest_write(c, 0x100000 + 15 * PAGE);
	guest_write(c, 0x100000);
	assert_int_equal(mv_region_sync_dirty_bitmap(c->m, r), 0);
	expect_dirty(r, "1000000000000001");
	check(c);
}

/*
 * Manual protect with KVM_DIRTY_LOG_INITIALLY_SET (what the automatic mode
 * picks when the kernel offers it, as QEMU does): when logging starts the
 * kernel's bitmap is all ones, so the first harvest reports *every* page
 * of the slot dirty -- harmless, the core's bitmaps start all dirty too --
 * and CLEAR then re-protects them; later harvests report only new writes.
 */
static void
test_dirty_harvest_manual_initially_set_reports_all_first(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram(c, "vram", 16 * PAGE), *big;
	char all[101];

	start(c, NULL);
	assert_int_equal(mv_kvm_dirty_mode(c->k), MV_KVM_DIRTY_MANUAL);
	add(c, r, 0x100000, 0);
	assert_int_equal(mv_region_set_log(r, true, MV_DIRTY_VGA), 0);
	check(c);
	reset_vga(r);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	expect_dirty(r, "1111111111111111");
	reset_vga(r);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	expect_dirty(r, "0000000000000000");
	guest_write(c, 0x100000 + 7 * PAGE);
	assert_int_equal(mv_region_sync_dirty_bitmap(c->m, r), 0);
	expect_dirty(r, "0000000100000000");
	reset_vga(r);
	assert_int_equal(mv_region_sync_dirty_bitmap(c->m, NULL), 0);
	expect_dirty(r, "0000000000000000");
	check(c);

	/* a slot created with LOG set (100 pages: two bitmap words) too */
	big = ram(c, "big", 100 * PAGE);
	assert_int_equal(mv_region_set_log(big, true, MV_DIRTY_VGA), 0);
	add(c, big, 0x200000, 0);
	check(c);
	expect_slots(c, "100000+10000 rw,log vram@0\n"
			"200000+64000 rw,log big@0");
	reset_vga(big);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	memset(all, '1', 100);
	all[100] = 0;
	expect_dirty(big, all);
	reset_vga(big);
	guest_write(c, 0x200000 + 99 * PAGE);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	memset(all, '0', 99);
	expect_dirty(big, all);
}

/* Manual protect without INITIALLY_SET: only the guest's writes. */
static void test_dirty_harvest_manual_reports_guest_writes(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_opts o = { .dirty_mode = MV_KVM_DIRTY_MANUAL };
	struct mv_region *r = ram(c, "vram", 16 * PAGE);

	assert_int_equal(mv_kvm_sys_fake_set_cap(
				 c->fake, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
				 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE),
			 0);
	start(c, &o);
	assert_int_equal(mv_kvm_dirty_mode(c->k), MV_KVM_DIRTY_MANUAL);
	add(c, r, 0x100000, 0);
	assert_int_equal(mv_region_set_log(r, true, MV_DIRTY_VGA), 0);
	reset_vga(r);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	expect_dirty(r, "0000000000000000");
	guest_write(c, 0x100000 + 2 * PAGE);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	expect_dirty(r, "0010000000000000");
	reset_vga(r);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	expect_dirty(r, "0000000000000000"); /* CLEAR re-protected it */
	check(c);
}

/* Detaching removes every slot, a logging one after fetching its log. */
static void test_detach_removes_every_slot(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = logging_ram(c, 0x100000);

	add(c, ram(c, "other", PAGE), 0x0, 0);
	check(c);
	mv_kvm_detach(c->k, c->as);
	assert_int_equal(mv_kvm_slot_count(c->k, 0), 0);
	check_shadow(c);
	expect_dirty(r, "0001000000000000");
	/* and it can be attached again */
	assert_int_equal(mv_kvm_attach(c->k, c->as, 0), 0);
	check(c);
	expect_slots(c, "0+1000 rw other@0\n100000+10000 rw,log vram@0");
}

/* ---- ordering ---------------------------------------------------------- */

/*
 * Within one commit every deletion reaches the kernel before any creation,
 * so a region moving onto another's old place never overlaps (EEXIST).
 */
static void test_deletions_before_creations_within_one_commit(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_opts o = { .max_slot_size = 256 * KiB };
	struct mv_region *a = ram(c, "a", 1 * MiB), *b = ram(c, "b", 1 * MiB);
	size_t first, i, dels = 0, creates = 0;

	start(c, &o);
	add(c, a, 0x100000, 0);
	add(c, b, 0x300000, 0);
	check(c);
	first = c->rec->nr_calls;
	mv_txn_begin(c->m);
	assert_int_equal(mv_region_set_address(a, 0x500000), 0);
	assert_int_equal(mv_region_set_address(b, 0x100000), 0);
	assert_int_equal(mv_txn_commit(c->m), 0);
	check(c);
	for (i = first; i < c->rec->nr_calls; i++) {
		const struct call *k = &c->rec->calls[i];

		assert_int_equal(k->ret, 0);
		if (k->r.memory_size) {
			creates++;
		} else {
			assert_int_equal(creates, 0); /* a deletion after one */
			dels++;
		}
	}
	assert_int_equal(dels, 8);
	assert_int_equal(creates, 8);
	expect_slots(c, "100000+40000 rw b@0\n140000+40000 rw b@40000\n"
			"180000+40000 rw b@80000\n1c0000+40000 rw b@c0000\n"
			"500000+40000 rw a@0\n540000+40000 rw a@40000\n"
			"580000+40000 rw a@80000\n5c0000+40000 rw a@c0000");
}

/* ---- failures ------------------------------------------------------------ */

static void inject(struct ctx *c, unsigned long req, int err)
{
	c->rec->sys.fail_req = req;
	c->rec->sys.fail_errno = err;
	c->rec->sys.fail_at = 1;
}

/*
 * A creation the kernel refuses at commit: the commit returns its error,
 * the range stays without a slot (served by MMIO exits), the checker
 * reports it, and the next change works.
 */
static void test_failed_creation_leaves_range_without_slot(void **state)
{
	static const int errs[] = { ENOMEM, EEXIST, EINVAL };
	struct ctx *c = *state;
	struct mv_region *keep = ram(c, "keep", PAGE);
	struct mv_kvm_stats st;
	size_t i;

	start(c, NULL);
	add(c, keep, 0, 0);
	for (i = 0; i < 3; i++) {
		struct mv_region *r = ram(c, "r", 64 * KiB);
		struct mv_region *n = ram(c, "next", PAGE);
		struct mv_kvm_slot_info info;

		inject(c, KVM_SET_USER_MEMORY_REGION, errs[i]);
		assert_int_equal(mv_region_add_subregion(c->root, 0x100000, r),
				 -errs[i]);
		assert_int_equal(c->rec->sys.fail_at, 0);
		assert_ptr_equal(mv_region_container(r), c->root); /* in view */
		assert_int_equal(mv_kvm_slot_lookup(c->k, 0, 0x100000, &info),
				 -ENOENT);
		mv_kvm_get_stats(c->k, &st);
		assert_int_equal(st.commit_errors, i + 1);
		check_reports_mismatch(c);
		/* the next change still works */
		add(c, n, 0x200000, 0);
		expect_slots(c, "0+1000 rw keep@0\n200000+1000 rw next@0");
		check_reports_mismatch(c);
		/* removing the slotless range is fine */
		assert_int_equal(mv_region_del_subregion(c->root, r), 0);
		assert_int_equal(mv_region_del_subregion(c->root, n), 0);
		check(c);
		expect_slots(c, "0+1000 rw keep@0");
	}
}

/*
 * A deletion the kernel refuses: the kernel still has the slot, so the
 * table keeps it (and the checker reports a slot the view lacks).
 */
static void test_failed_deletion_keeps_slot(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram(c, "r", 64 * KiB);
	struct mv_kvm_stats st;

	start(c, NULL);
	add(c, r, 0x100000, 0);
	check(c);
	inject(c, KVM_SET_USER_MEMORY_REGION, EINVAL);
	assert_int_equal(mv_region_set_enabled(r, false), -EINVAL);
	expect_slots(c, "100000+10000 rw r@0");
	mv_kvm_get_stats(c->k, &st);
	assert_int_equal(st.commit_errors, 1);
	assert_int_equal(st.slot_deletes, 0);
	check_reports_mismatch(c);
	/*
	 * Today the stale slot is never retried or reused: re-enabling the
	 * range asks the kernel for a second slot over it, which it refuses
	 * (EEXIST); the stale one happens to match the view again.
	 */
	assert_int_equal(mv_region_set_enabled(r, true), -EEXIST);
	expect_slots(c, "100000+10000 rw r@0");
	check(c);
}

/* A logging slot whose log cannot be fetched is not deleted either. */
static void test_failed_log_fetch_keeps_slot(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = logging_ram(c, 0x100000);

	inject(c, KVM_GET_DIRTY_LOG, EFAULT);
	assert_int_equal(mv_region_set_enabled(r, false), -EFAULT);
	expect_slots(c, "100000+10000 rw,log vram@0");
	check_reports_mismatch(c);
}

/*
 * More slots than the kernel offers: region_add fails with -ENOSPC, the
 * transaction rolls back (the view is unchanged) and so do the slots,
 * without a single ioctl.
 */
static void test_enospc_rolls_back_transaction(void **state)
{
	struct ctx *c = *state;
	struct mv_region *a = ram(c, "a", PAGE), *b = ram(c, "b", PAGE),
			 *d = ram(c, "d", PAGE), *e = ram(c, "e", PAGE),
			 *f = ram(c, "f", PAGE), *g = ram(c, "g", 2 * PAGE);
	struct mv_kvm_opts o = { .max_slot_size = PAGE };
	const char *slots = "1000+1000 rw a@0\n2000+1000 rw b@0\n"
			    "3000+1000 rw d@0";
	char *view;
	size_t calls;

	assert_int_equal(
		mv_kvm_sys_fake_set_cap(c->fake, KVM_CAP_NR_MEMSLOTS, 3), 0);
	start(c, &o);
	assert_int_equal(mv_kvm_nr_slots(c->k), 3);
	add(c, a, 0x1000, 0);
	add(c, b, 0x2000, 0);
	add(c, d, 0x3000, 0);
	check(c);
	view = mv_test_view_text(c->as);
	calls = c->rec->nr_calls;

	assert_int_equal(mv_region_add_subregion(c->root, 0x4000, e), -ENOSPC);
	assert_null(mv_region_container(e));
	mv_test_expect_view(c->as, view);
	check(c);
	expect_slots(c, slots);

	/* delete one, add two: the deletion is taken back as well */
	mv_txn_begin(c->m);
	assert_int_equal(mv_region_del_subregion(c->root, b), 0);
	add(c, e, 0x4000, 0);
	add(c, f, 0x5000, 0);
	assert_int_equal(mv_txn_commit(c->m), -ENOSPC);
	mv_test_expect_view(c->as, view);
	check(c);
	expect_slots(c, slots);
	assert_int_equal(c->rec->nr_calls, calls);

	/*
	 * A log change delivered between an addition and the failing one:
	 * the rollback's log_stop must win over the forward log_start.
	 */
	mv_txn_begin(c->m);
	assert_int_equal(mv_region_del_subregion(c->root, d), 0);
	assert_int_equal(mv_txn_commit(c->m), 0);
	check(c);
	mv_txn_begin(c->m);
	add(c, e, 0x0, 0); /* low: queued */
	assert_int_equal(mv_region_set_log(b, true, MV_DIRTY_VGA), 0); /* mid */
	add(c, f, 0x5000, 0); /* high: no room */
	assert_int_equal(mv_txn_commit(c->m), -ENOSPC);
	check(c);
	expect_slots(c, "1000+1000 rw a@0\n2000+1000 rw b@0");

	/*
	 * A range needing two slots (max_slot_size is one page) with one
	 * free: the chunk its region_add queued before failing goes too.
	 */
	assert_int_equal(mv_region_add_subregion(c->root, 0x8000, g), -ENOSPC);
	check(c);
	expect_slots(c, "1000+1000 rw a@0\n2000+1000 rw b@0");
	free(view);
}

/* ---- lookups --------------------------------------------------------------- */

/* The slot holding an address, edges included; a hole is -ENOENT. */
static void test_lookup_finds_holder_never_neighbour(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_slot_info info;

	start(c, NULL);
	add(c, ram(c, "lo", 64 * KiB), 0x10000, 0);
	add(c, ram(c, "hi", 64 * KiB), 0x30000, 0);
	add(c, ram(c, "next", PAGE), 0x40000, 0); /* adjacent to hi */
	check(c);
	assert_int_equal(slot_at_gpa(c, 0x10000).gpa, 0x10000);
	assert_int_equal(slot_at_gpa(c, 0x18765).gpa, 0x10000);
	assert_int_equal(slot_at_gpa(c, 0x1ffff).gpa, 0x10000);
	assert_int_equal(slot_at_gpa(c, 0x30000).gpa, 0x30000);
	assert_int_equal(slot_at_gpa(c, 0x3ffff).gpa, 0x30000);
	assert_int_equal(slot_at_gpa(c, 0x40000).gpa, 0x40000);
	assert_int_equal(mv_kvm_slot_lookup(c->k, 0, 0x0, &info), -ENOENT);
	assert_int_equal(mv_kvm_slot_lookup(c->k, 0, 0xffff, &info), -ENOENT);
	assert_int_equal(mv_kvm_slot_lookup(c->k, 0, 0x20000, &info), -ENOENT);
	assert_int_equal(mv_kvm_slot_lookup(c->k, 0, 0x2ffff, &info), -ENOENT);
	assert_int_equal(mv_kvm_slot_lookup(c->k, 0, 0x41000, &info), -ENOENT);
	assert_int_equal(mv_kvm_slot_lookup(c->k, 0, UINT64_MAX, &info),
			 -ENOENT);
	assert_int_equal(mv_kvm_slot_lookup(c->k, 1, 0x10000, &info), -ENOENT);
	assert_int_equal(mv_kvm_slot_at(c->k, 0, 3, &info), -ENOENT);
}

/* kvm_accel_has_memory(): a slot with exactly this start and size. */
static void test_has_memory_exact_match_only(void **state)
{
	struct ctx *c = *state;
	struct mv_as *other;

	start(c, NULL);
	add(c, ram(c, "ram", 64 * KiB), 0x10000, 0);
	check(c);
	assert_true(mv_kvm_has_memory(c->k, c->as, 0x10000, 0x10000));
	assert_false(mv_kvm_has_memory(c->k, c->as, 0x10000, 0x1000));
	assert_false(mv_kvm_has_memory(c->k, c->as, 0x10000, 0x11000));
	assert_false(mv_kvm_has_memory(c->k, c->as, 0x11000, 0xf000));
	assert_false(mv_kvm_has_memory(c->k, c->as, 0xf000, 0x10000));
	assert_false(mv_kvm_has_memory(c->k, c->as, 0x20000, 0x10000));
	/* only the attached address space has slots */
	assert_int_equal(mv_as_new(c->m, "other", c->root, &other), 0);
	assert_false(mv_kvm_has_memory(c->k, other, 0x10000, 0x10000));
}

/* ---- random transactions ------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define NR_POOL 12
#define SPAN (64 * MiB)

struct pool {
	struct mv_region *r[NR_POOL];
	uint64_t max_size[NR_POOL]; /* resize bound, 0: not resizable */
};

/*
 * RAM, ROM, a ROM device, aliases (all page-aligned in address and
 * offset, so every slot's hva is page aligned) and MMIO at unaligned
 * addresses on top, which cut RAM ranges at unaligned edges.
 */
static void pool_init(struct ctx *c, struct pool *p)
{
	struct mv_ram_opts big = { .max_size = 4 * MiB };
	size_t i = 0;

	memset(p, 0, sizeof(*p));
	p->r[i++] = ram(c, "ram0", 64 * KiB);
	p->r[i++] = ram(c, "ram1", 1 * MiB + 12 * KiB);
	p->r[i++] = ram(c, "ram2", 256 * KiB);
	assert_int_equal(
		mv_region_new_ram(c->m, "ram3", 2 * MiB, &big, &p->r[i]), 0);
	mv_test_track(&c->t, 0, &p->r[i]);
	p->max_size[i++] = 4 * MiB;
	p->r[i++] = rom(c, "rom0", 64 * KiB);
	p->r[i++] = rom(c, "rom1", 128 * KiB);
	p->r[i++] = romdev(c, "flash", 128 * KiB);
	mv_test_track(&c->t,
		      mv_region_new_alias(c->m, "alias0", p->r[1], 0x4000,
					  512 * KiB, &p->r[i]),
		      &p->r[i]);
	p->max_size[i++] = 1 * MiB - PAGE;
	mv_test_track(&c->t,
		      mv_region_new_alias(c->m, "alias1", p->r[3], 1 * MiB,
					  1 * MiB, &p->r[i]),
		      &p->r[i]);
	p->max_size[i++] = 1 * MiB;
	mv_test_track(&c->t,
		      mv_region_new_alias(c->m, "alias2", p->r[4], 0, 32 * KiB,
					  &p->r[i]),
		      &p->r[i]);
	p->max_size[i++] = 64 * KiB;
	p->r[i++] = mmio(c, "mmio0", 0x1800);
	p->r[i++] = mmio(c, "mmio1", 0x800);
	assert_int_equal(i, NR_POOL);
}

static bool is_mmio(size_t i)
{
	return i >= 10;
}

static uint64_t rnd_addr(uint64_t *s, size_t i)
{
	uint64_t a = rnd(s) % (SPAN / PAGE) * PAGE;

	return is_mmio(i) ? a + (rnd(s) % 4) * 0x400 : a;
}

static void random_op(struct ctx *c, struct pool *p, uint64_t *s)
{
	size_t i = rnd(s) % NR_POOL;
	struct mv_region *r = p->r[i];

	switch (rnd(s) % 8) {
	case 0: /* add */
	case 1:
		if (mv_region_container(r))
			break;
		assert_int_equal(mv_region_add_subregion_overlap(
					 c->root, rnd_addr(s, i), r,
					 (int)(rnd(s) % 3 + is_mmio(i))),
				 0);
		break;
	case 2: /* remove */
		if (!mv_region_container(r))
			break;
		assert_int_equal(mv_region_del_subregion(c->root, r), 0);
		break;
	case 3: /* move */
		assert_int_equal(mv_region_set_address(r, rnd_addr(s, i)), 0);
		break;
	case 4: /* resize */
		if (is_mmio(i))
			assert_int_equal(mv_region_set_size(
						 r, 0x400 * (1 + rnd(s) % 16)),
					 0);
		else if (p->max_size[i])
			assert_int_equal(
				mv_region_set_size(
					r,
					PAGE * (1 + rnd(s) % (p->max_size[i] /
							      PAGE))),
				0);
		break;
	case 5: /* enable / disable */
		assert_int_equal(
			mv_region_set_enabled(r, !mv_region_enabled(r)), 0);
		break;
	case 6: /* log on / off */
		if (mv_region_kind(r) == MV_REGION_RAM)
			assert_int_equal(mv_region_set_log(r, rnd(s) & 1,
							   MV_DIRTY_VGA),
					 0);
		break;
	default: /* romd on / off */
		assert_int_equal(
			mv_region_rom_device_set_romd(p->r[6], rnd(s) & 1), 0);
		break;
	}
}

/* A guest write to a random page of a random logging slot must arrive. */
static void random_guest_write(struct ctx *c, uint64_t *s)
{
	size_t n = mv_kvm_slot_count(c->k, 0);
	struct mv_kvm_slot_info info;
	uint64_t off;

	if (!n)
		return;
	assert_int_equal(mv_kvm_slot_at(c->k, 0, rnd(s) % n, &info), 0);
	if (!(info.flags & LOG) || info.flags & RO)
		return;
	off = rnd(s) % (info.size / PAGE) * PAGE;
	mv_region_reset_dirty(info.mr, info.offset_within_region + off, PAGE,
			      MV_DIRTY_VGA);
	guest_write(c, info.gpa + off);
	assert_int_equal(mv_kvm_dirty_harvest(c->k), 0);
	assert_true(mv_region_get_dirty(
		info.mr, info.offset_within_region + off, PAGE, MV_DIRTY_VGA));
}

/*
 * @nr transactions from @seed.  With @nr_slots the kernel offers that few
 * slots, so some commits fail with -ENOSPC: they must leave the view and
 * the slots as they were.  Return: how many commits failed so.
 */
static unsigned random_run(struct ctx *c, struct mv_kvm_opts *o, uint64_t seed,
			   unsigned nr, long nr_slots)
{
	unsigned t, j, ops, nospc = 0;
	struct pool p;
	char *before;
	int ret;

	pool_init(c, &p);
	if (nr_slots)
		assert_int_equal(mv_kvm_sys_fake_set_cap(c->fake,
							 KVM_CAP_NR_MEMSLOTS,
							 nr_slots),
				 0);
	start(c, o);
	for (t = 0; t < nr; t++) {
		c->step = t;
		ops = 1 + (unsigned)(rnd(&seed) % 4);
		before = mv_test_view_text(c->as);
		mv_txn_begin(c->m);
		for (j = 0; j < ops; j++)
			random_op(c, &p, &seed);
		ret = mv_txn_commit(c->m);
		if (ret == -ENOSPC && nr_slots) {
			mv_test_expect_view(c->as, before);
			nospc++;
		} else if (ret) {
			fail_msg("step %u: commit: %s", t, strerror(-ret));
		}
		free(before);
		check(c);
		if (rnd(&seed) % 50 == 0) {
			if (rnd(&seed) & 1)
				assert_int_equal(
					mv_machine_dirty_log_start(c->m), 0);
			else
				assert_int_equal(
					mv_machine_dirty_log_stop(c->m), 0);
			check(c);
		}
		if (rnd(&seed) % 4 == 0)
			random_guest_write(c, &seed);
	}
	return nospc;
}

/* 1000 seeded random transactions, checked after each. */
static void test_random_transactions_keep_slots_consistent(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_opts o = { .max_slot_size = 256 * KiB,
				 .dirty_mode = MV_KVM_DIRTY_BITMAP };

	assert_int_equal(random_run(c, &o, 0x9e3779b97f4a7c15ull, 1000, 0), 0);
}

/* The same without read-only memory, in manual-protect mode. */
static void test_random_transactions_no_readonly_mem(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_opts o = { .no_readonly = true };

	assert_int_equal(random_run(c, &o, 0x2545f4914f6cdd1dull, 1000, 0), 0);
}

/* With 6 slots: many commits roll back on -ENOSPC, each leaving no trace. */
static void test_random_transactions_rolled_back_on_enospc(void **state)
{
	struct ctx *c = *state;
	struct mv_kvm_opts o = { .max_slot_size = 256 * KiB };
	unsigned nospc = random_run(c, &o, 0xd1b54a32d192ed03ull, 1000, 6);

	assert_true(nospc >= 20); /* 27 with this seed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_ram_range_gets_rw_slot),
		T(test_rom_gets_readonly_slot),
		T(test_rom_without_readonly_mem_gets_writable_slot),
		T(test_romd_device_gets_readonly_slot_only_in_romd_mode),
		T(test_rom_device_without_readonly_mem_gets_no_slot),
		T(test_mmio_and_io_get_no_slot),
		T(test_alias_slot_maps_target_hva),
		T(test_unaligned_edges_trimmed_to_pages),
		T(test_split_at_max_slot_size),
		T(test_slot_ids_reused_lowest_first),
		T(test_deleted_slot_reused),
		T(test_log_flag_follows_dirty_mask),
		T(test_dirty_log_fetched_before_logging_slot_deleted),
		T(test_dirty_log_fetched_before_logging_slot_moved),
		T(test_dirty_log_fetched_before_log_turned_off),
		T(test_dirty_harvest_delivers_guest_writes_bitmap),
		T(test_dirty_harvest_manual_initially_set_reports_all_first),
		T(test_dirty_harvest_manual_reports_guest_writes),
		T(test_detach_removes_every_slot),
		T(test_deletions_before_creations_within_one_commit),
		T(test_failed_creation_leaves_range_without_slot),
		T(test_failed_deletion_keeps_slot),
		T(test_failed_log_fetch_keeps_slot),
		T(test_enospc_rolls_back_transaction),
		T(test_lookup_finds_holder_never_neighbour),
		T(test_has_memory_exact_match_only),
		T(test_random_transactions_keep_slots_consistent),
		T(test_random_transactions_no_readonly_mem),
		T(test_random_transactions_rolled_back_on_enospc),
#undef T
	};

	if (sysconf(_SC_PAGESIZE) != (long)PAGE) {
		printf("SKIP: the tests assume 4 KiB host pages\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
