// SPDX-License-Identifier: MIT
/*
 * One test per rule of shared/reference/qemu-memory.md §3.1-3.4 (and the
 * invariants listed at the top of include/memvirt/memory.h).  Each expected
 * view is derived by hand from QEMU 7.2's algorithm as the reference states
 * it (render in subregion-list order, the first region rendered at an
 * address wins, then flatview_simplify's can_merge), not from our output.
 *
 * Not covered here (not implemented yet): MemoryListener callbacks and
 * their order, ioeventfds, coalesced MMIO, dirty logging (set_log), IOMMU
 * and ram_device regions.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* A machine and the region references the test owns. */
struct ctx {
	struct mv_machine *m;
	struct mv_test_regions owned;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c || mv_machine_new(&c->m)) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	mv_test_unref_all(&c->owned);
	mv_machine_free(c->m);
	free(c);
	return 0;
}

/* Take over the reference a constructor returned (in *@r) with @ret. */
static struct mv_region *track(struct ctx *c, int ret, struct mv_region **r)
{
	return mv_test_track(&c->owned, ret, r);
}

/* Forget @r: the test hands its reference over and drops it itself. */
static void untrack(struct ctx *c, struct mv_region *r)
{
	mv_test_untrack(&c->owned, r);
}

static struct mv_region *container(struct ctx *c, const char *name,
				   uint64_t size)
{
	struct mv_region *r = NULL;

	return track(c, mv_region_new_container(c->m, name, size, &r), &r);
}

static struct mv_region *ram(struct ctx *c, const char *name, uint64_t size)
{
	struct mv_region *r = NULL;

	return track(c, mv_region_new_ram(c->m, name, size, NULL, &r), &r);
}

static struct mv_region *rom(struct ctx *c, const char *name, uint64_t size)
{
	struct mv_region *r = NULL;

	return track(c, mv_region_new_rom(c->m, name, size, NULL, &r), &r);
}

static struct mv_region *romdev(struct ctx *c, const char *name, uint64_t size)
{
	struct mv_region *r = NULL;

	return track(c,
		     mv_region_new_rom_device(c->m, name, size, &mv_zero_ops,
					      NULL, NULL, &r),
		     &r);
}

static struct mv_region *io(struct ctx *c, const char *name, uint64_t size)
{
	struct mv_region *r = NULL;

	return track(c,
		     mv_region_new_io(c->m, name, size, &mv_zero_ops, NULL, &r),
		     &r);
}

static struct mv_region *alias(struct ctx *c, const char *name,
			       struct mv_region *target, uint64_t offset,
			       uint64_t size)
{
	struct mv_region *r = NULL;

	return track(c,
		     mv_region_new_alias(c->m, name, target, offset, size, &r),
		     &r);
}

/* A step that must succeed, followed by the invariant check. */
static void ok(struct ctx *c, int ret)
{
	assert_int_equal(ret, 0);
	mv_test_check_views(c->m);
}

static void add(struct ctx *c, struct mv_region *parent, uint64_t offset,
		struct mv_region *child, int priority)
{
	ok(c, mv_region_add_subregion_overlap(parent, offset, child, priority));
}

static struct mv_as *as_new(struct ctx *c, const char *name,
			    struct mv_region *root)
{
	struct mv_as *as = NULL;

	ok(c, mv_as_new(c->m, name, root, &as));
	return as;
}

static void expect_view(struct ctx *c, struct mv_as *as, const char *text)
{
	mv_test_check_views(c->m);
	mv_test_expect_view(as, text);
}

static struct mv_machine_stats stats(struct ctx *c)
{
	struct mv_machine_stats st;

	mv_machine_get_stats(c->m, &st);
	return st;
}

/* Renders and commits since @before are exactly @renders and @commits. */
static void expect_work(struct ctx *c, const struct mv_machine_stats *before,
			uint64_t renders, uint64_t commits)
{
	struct mv_machine_stats now = stats(c);

	assert_int_equal(now.renders - before->renders, renders);
	assert_int_equal(now.commits - before->commits, commits);
}

/* The view object @as uses now (a borrowed pointer, for identity checks). */
static struct mv_flatview *view_of(struct mv_as *as)
{
	struct mv_flatview *fv = mv_as_get_flatview(as);

	mv_flatview_unref(fv);
	return fv;
}

static size_t nr_ranges(struct mv_as *as)
{
	size_t nr;

	mv_flatview_ranges(view_of(as), &nr);
	return nr;
}

static const struct mv_flat_range *lookup(struct mv_as *as, uint64_t addr)
{
	const struct mv_flat_range *r = mv_flatview_lookup(view_of(as), addr);

	assert_non_null(r);
	return r;
}

/* ---- 3.1 region kinds and flags ----------------------------------------- */

/* memory_region_type(): alias -> its target's type, recursively; romd only
 * while romd_mode; rom = ram + readonly; everything else (containers too, in
 * 7.2) is i/o. */
static void rule_3_1_region_kinds_and_types(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram(c, "r", 0x1000);
	struct mv_region *rm = rom(c, "rm", 0x1000);
	struct mv_region *f = romdev(c, "f", 0x1000);
	struct mv_region *d = io(c, "d", 0x1000);
	struct mv_region *k = container(c, "k", 0x1000);
	struct mv_region *ar = alias(c, "ar", r, 0, 0x1000);
	struct mv_region *arm = alias(c, "arm", rm, 0, 0x1000);
	struct mv_region *af = alias(c, "af", f, 0, 0x1000);
	struct mv_region *aaf = alias(c, "aaf", af, 0, 0x1000);
	struct mv_region *ak = alias(c, "ak", k, 0, 0x1000);
	struct mv_region *resv = NULL;

	track(c, mv_region_new_reservation(c->m, "resv", 0x1000, &resv), &resv);
	assert_int_equal(mv_region_kind(r), MV_REGION_RAM);
	assert_int_equal(mv_region_kind(rm), MV_REGION_RAM);
	assert_int_equal(mv_region_kind(f), MV_REGION_ROM_DEVICE);
	assert_int_equal(mv_region_kind(d), MV_REGION_IO);
	assert_int_equal(mv_region_kind(resv), MV_REGION_IO);
	assert_int_equal(mv_region_kind(k), MV_REGION_CONTAINER);
	assert_int_equal(mv_region_kind(ar), MV_REGION_ALIAS);
	assert_ptr_equal(mv_region_alias_target(aaf), af);

	assert_string_equal(mv_region_type(r), "ram");
	assert_string_equal(mv_region_type(rm), "rom");
	assert_string_equal(mv_region_type(f), "romd");
	assert_string_equal(mv_region_type(d), "i/o");
	assert_string_equal(mv_region_type(resv), "i/o");
	assert_string_equal(mv_region_type(k), "i/o");
	assert_string_equal(mv_region_type(ar), "ram");
	assert_string_equal(mv_region_type(arm), "rom");
	assert_string_equal(mv_region_type(aaf), "romd");
	assert_string_equal(mv_region_type(ak), "i/o");

	/* A readonly alias of RAM still reports its target's type. */
	ok(c, mv_region_set_readonly(ar, true));
	assert_string_equal(mv_region_type(ar), "ram");
	/* romd only while in romd mode, through the alias chain too. */
	ok(c, mv_region_rom_device_set_romd(f, false));
	assert_string_equal(mv_region_type(f), "i/o");
	assert_string_equal(mv_region_type(aaf), "i/o");
	ok(c, mv_region_rom_device_set_romd(f, true));
	assert_string_equal(mv_region_type(aaf), "romd");
	/* rom is ram + readonly, whichever way readonly got set. */
	ok(c, mv_region_set_readonly(r, true));
	assert_string_equal(mv_region_type(r), "rom");
	assert_string_equal(mv_region_type(ar), "rom");
	ok(c, mv_region_set_readonly(rm, false));
	assert_string_equal(mv_region_type(rm), "ram");
}

/* Instance defaults: enabled, romd_mode, priority 0, no parent. */
static void rule_3_1_instance_defaults(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *r = ram(c, "r", 0x1000);
	struct mv_region *f = romdev(c, "f", 0x1000);
	struct mv_region *a = alias(c, "a", r, 0, 0x1000);
	struct mv_region *k = container(c, "k", 0x1000);
	struct mv_region *regions[] = { r, f, a, k };
	struct mv_as *as;
	size_t i;

	for (i = 0; i < 4; i++) {
		assert_true(mv_region_enabled(regions[i]));
		assert_int_equal(mv_region_priority(regions[i]), 0);
		assert_int_equal(mv_region_addr(regions[i]), 0);
		assert_null(mv_region_container(regions[i]));
	}
	assert_false(mv_region_readonly(r));
	ok(c, mv_region_add_subregion(root, 0x2000, r));
	ok(c, mv_region_add_subregion(root, 0x4000, f));
	assert_int_equal(mv_region_priority(r), 0);
	assert_int_equal(mv_region_addr(r), 0x2000);
	assert_ptr_equal(mv_region_container(r), root);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "2000-2fff r@0\n"
		    "4000-4fff f@0");
	assert_true(lookup(as, 0x2000)->romd_mode);
	assert_true(lookup(as, 0x4000)->romd_mode);
}

/* A pure container does not terminate: its holes show what is below. */
static void rule_3_1_container_does_not_terminate(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *k = container(c, "k", 0x4000);
	struct mv_region *a = ram(c, "a", 0x1000);
	struct mv_region *b = ram(c, "b", 0x2000);
	struct mv_as *as;

	add(c, root, 0, k, 1);
	add(c, root, 0x1000, a, 0);
	add(c, root, 0x8000, b, 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "1000-1fff a@0\n"
		    "8000-9fff b@0");
}

/* MMIO, reservations, RAM, ROM and ROM devices all terminate: each hides
 * the lower-priority sibling below it. */
static void rule_3_1_non_containers_terminate(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *low = ram(c, "low", 0x10000);
	struct mv_region *rs = NULL;
	struct mv_as *as;

	track(c, mv_region_new_reservation(c->m, "rs", 0x1000, &rs), &rs);
	add(c, root, 0, low, -1);
	add(c, root, 0x1000, io(c, "d", 0x1000), 0);
	add(c, root, 0x3000, rs, 0);
	add(c, root, 0x5000, ram(c, "r", 0x1000), 0);
	add(c, root, 0x7000, rom(c, "rm", 0x1000), 0);
	add(c, root, 0x9000, romdev(c, "f", 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff low@0\n"
		    "1000-1fff d@0\n"
		    "2000-2fff low@2000\n"
		    "3000-3fff rs@0\n"
		    "4000-4fff low@4000\n"
		    "5000-5fff r@0\n"
		    "6000-6fff low@6000\n"
		    "7000-7fff rm@0 ro\n"
		    "8000-8fff low@8000\n"
		    "9000-9fff f@0\n"
		    "a000-ffff low@a000");
}

/* init_rom = RAM + readonly: its ranges are readonly. */
static void rule_3_1_rom_is_readonly_ram(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *bios = rom(c, "bios", 0x2000);
	struct mv_as *as;

	assert_true(mv_region_readonly(bios));
	add(c, root, 0x1000, bios, 0);
	as = as_new(c, "as", root);
	expect_view(c, as, "1000-2fff bios@0 ro");
	ok(c, mv_region_set_readonly(bios, false));
	expect_view(c, as, "1000-2fff bios@0");
	assert_string_equal(mv_region_type(bios), "ram");
}

/* Subregions cannot be added to aliases. */
static void rule_3_1_alias_cannot_have_subregions(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *r = ram(c, "r", 0x1000);
	struct mv_region *a = alias(c, "a", r, 0, 0x1000);
	struct mv_region *x = ram(c, "x", 0x1000);
	struct mv_as *as;

	add(c, root, 0, a, 0);
	as = as_new(c, "as", root);
	assert_int_equal(mv_region_add_subregion(a, 0, x), -EINVAL);
	assert_int_equal(mv_region_add_subregion_overlap(a, 0, x, 1), -EINVAL);
	assert_null(mv_region_container(x));
	expect_view(c, as, "0-fff r@0");
	/* x is still free to go elsewhere. */
	add(c, root, 0x1000, x, 0);
	expect_view(c, as,
		    "0-fff r@0\n"
		    "1000-1fff x@0");
}

/* Alias chains are allowed; each link applies its own offset. */
static void rule_3_1_alias_chain_allowed(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *r = ram(c, "r", 0x4000);
	struct mv_region *a1 = alias(c, "a1", r, 0x1000, 0x2000);
	struct mv_region *a2 = alias(c, "a2", a1, 0x800, 0x1000);
	struct mv_as *as;

	add(c, root, 0x10000, a2, 0);
	add(c, root, 0x20000, a1, 0);
	as = as_new(c, "as", root);
	/* a2 @0x800 -> a1 @0x800 -> r @0x1800 */
	expect_view(c, as,
		    "10000-10fff r@1800\n"
		    "20000-21fff r@1000");
	assert_string_equal(mv_region_type(a2), "ram");
}

/* Alias chains must be acyclic: a child that would make the graph cyclic
 * (through children or alias targets) is refused; the machine still works. */
static void rule_3_1_alias_cycle_refused(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *k = container(c, "k", 0x4000);
	struct mv_region *d = container(c, "d", 0x1000);
	struct mv_region *x = ram(c, "x", 0x1000);
	struct mv_region *a = alias(c, "a", k, 0, 0x4000);
	struct mv_region *b = alias(c, "b", a, 0, 0x4000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0, k, 0);
	add(c, k, 0x1000, d, 0);
	add(c, d, 0, x, 0);
	as = as_new(c, "as", root);
	expect_view(c, as, "1000-1fff x@0");
	s0 = stats(c);

	assert_int_equal(mv_region_add_subregion(k, 0, a), -ELOOP);
	assert_int_equal(mv_region_add_subregion(d, 0, a), -ELOOP);
	assert_int_equal(mv_region_add_subregion_overlap(k, 0x2000, b, 1),
			 -ELOOP);
	assert_int_equal(mv_region_add_subregion(d, 0, root), -ELOOP);
	assert_int_equal(mv_region_add_subregion(root, 0, root), -ELOOP);
	assert_null(mv_region_container(a));
	assert_null(mv_region_container(b));
	assert_null(mv_region_container(root));
	expect_work(c, &s0, 0, 0);
	expect_view(c, as, "1000-1fff x@0");

	/* The same aliases are fine outside the region they show. */
	add(c, root, 0x8000, a, 0);
	expect_view(c, as,
		    "1000-1fff x@0\n"
		    "9000-9fff x@0");
	add(c, root, 0xc000, b, 0);
	expect_view(c, as,
		    "1000-1fff x@0\n"
		    "9000-9fff x@0\n"
		    "d000-dfff x@0");
}

/* In 7.2 any sibling may overlap: no collision check. */
static void rule_3_1_siblings_may_overlap(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_as *as = as_new(c, "as", root);

	ok(c, mv_region_add_subregion(root, 0, ram(c, "a", 0x4000)));
	ok(c, mv_region_add_subregion(root, 0x2000, ram(c, "b", 0x4000)));
	expect_view(c, as,
		    "0-1fff a@0\n"
		    "2000-5fff b@0");
	ok(c, mv_region_add_subregion(root, 0x1000, ram(c, "c", 0x1000)));
	expect_view(c, as,
		    "0-fff a@0\n"
		    "1000-1fff c@0\n"
		    "2000-5fff b@0");
}

/* add_subregion() = the overlap variant with priority 0: above -1, below 1,
 * and newest among the 0s. */
static void rule_3_1_add_subregion_is_overlap_priority_0(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *y = ram(c, "y", 0x4000);
	struct mv_as *as;

	add(c, root, 0, ram(c, "q", 0x3000), 0);
	add(c, root, 0, ram(c, "x", 0x1000), 1);
	ok(c, mv_region_add_subregion(root, 0, y));
	add(c, root, 0, ram(c, "z", 0x8000), -1);
	assert_int_equal(mv_region_priority(y), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff x@0\n"
		    "1000-3fff y@1000\n"
		    "4000-7fff z@4000");
}

/* A size of UINT64_MAX means 2^64: the last byte is ffffffffffffffff. */
static void rule_3_1_size_max_means_2_64(void **state)
{
	struct ctx *c = *state;
	struct mv_region *all = io(c, "all", UINT64_MAX);
	struct mv_region *root = container(c, "root", UINT64_MAX);
	struct mv_region *top = ram(c, "top", 0x1000);
	struct mv_as *as, *as2;

	assert_int_equal(mv_region_size(all), UINT64_MAX);
	as = as_new(c, "as", all);
	expect_view(c, as, "0-ffffffffffffffff all@0");
	add(c, root, 0xfffffffffffff000, top, 0);
	as2 = as_new(c, "as2", root);
	expect_view(c, as2, "fffffffffffff000-ffffffffffffffff top@0");
	assert_ptr_equal(lookup(as2, UINT64_MAX)->mr, top);
}

/* ---- 3.2 subregion list and priority ------------------------------------ */

static void rule_3_2_equal_priority_newest_wins(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *a = ram(c, "a", 0x4000);
	struct mv_as *as;

	add(c, root, 0, a, 2);
	add(c, root, 0x1000, ram(c, "b", 0x2000), 2);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff a@0\n"
		    "1000-2fff b@0\n"
		    "3000-3fff a@3000");
	/* Re-adding makes a the newest: recency, not address or name. */
	ok(c, mv_region_del_subregion(root, a));
	add(c, root, 0, a, 2);
	expect_view(c, as, "0-3fff a@0");
	add(c, root, 0x3000, ram(c, "d", 0x2000), 2);
	expect_view(c, as,
		    "0-2fff a@0\n"
		    "3000-4fff d@0");
}

static void rule_3_2_higher_priority_wins_whatever_the_order(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_as *as = as_new(c, "as", root);

	add(c, root, 0x1000, ram(c, "hi", 0x1000), 1);
	add(c, root, 0, ram(c, "lo", 0x4000), 0);
	expect_view(c, as,
		    "0-fff lo@0\n"
		    "1000-1fff hi@0\n"
		    "2000-3fff lo@2000");
	add(c, root, 0, ram(c, "neg", 0x8000), -1);
	add(c, root, 0x3000, ram(c, "top", 0x1000), 100);
	expect_view(c, as,
		    "0-fff lo@0\n"
		    "1000-1fff hi@0\n"
		    "2000-2fff lo@2000\n"
		    "3000-3fff top@0\n"
		    "4000-7fff neg@4000");
}

/* Priority is compared only between siblings: a child's priority does not
 * lift it above its parent's siblings. */
static void rule_3_2_priority_only_between_siblings(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *a = container(c, "A", 0x4000);
	struct mv_region *b = container(c, "B", 0x4000);
	struct mv_as *as;

	add(c, a, 0x1000, ram(c, "X", 0x1000), -5);
	add(c, b, 0, ram(c, "Y", 0x4000), 10);
	add(c, root, 0, a, 1);
	add(c, root, 0, b, 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff Y@0\n"
		    "1000-1fff X@0\n"
		    "2000-3fff Y@2000");
}

/* An alias competes with its own priority, not its target's. */
static void rule_3_2_alias_priority_is_its_own(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *k = container(c, "k", 0x10000);
	struct mv_region *t = ram(c, "t", 0x2000);
	struct mv_as *as;

	add(c, k, 0, t, 5);
	add(c, root, 0, alias(c, "a", t, 0, 0x2000), -1);
	add(c, root, 0x1000, ram(c, "x", 0x2000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff t@0\n"
		    "1000-2fff x@0");
}

/* docs/devel/memory.rst: B (container, prio 2) over C (MMIO, prio 1) only
 * hides C where B's children D and E are: [CCCC][DDDD][CCCC][EEEE][CCCC]. */
static void rule_3_2_higher_priority_container_leaves_holes(void **state)
{
	struct ctx *c = *state;
	struct mv_region *a = container(c, "A", 0x8000);
	struct mv_region *b = container(c, "B", 0x4000);
	struct mv_as *as;

	add(c, a, 0, io(c, "C", 0x6000), 1);
	add(c, a, 0x2000, b, 2);
	add(c, b, 0, io(c, "D", 0x1000), 0);
	add(c, b, 0x2000, io(c, "E", 0x1000), 0);
	as = as_new(c, "as", a);
	expect_view(c, as,
		    "0-1fff C@0\n"
		    "2000-2fff D@0\n"
		    "3000-3fff C@3000\n"
		    "4000-4fff E@0\n"
		    "5000-5fff C@5000");
}

/* set_address = del + re-add: the region becomes the newest of its
 * priority class (and stays in that class). */
static void rule_3_2_set_address_moves_to_front_of_class(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *a = ram(c, "a", 0x4000);
	struct mv_region *b = ram(c, "b", 0x4000);
	struct mv_as *as;

	add(c, root, 0, a, 0);
	add(c, root, 0x4000, b, 0);
	add(c, root, 0x5000, ram(c, "c", 0x1000), 1);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-3fff a@0\n"
		    "4000-4fff b@0\n"
		    "5000-5fff c@0\n"
		    "6000-7fff b@2000");
	ok(c, mv_region_set_address(a, 0x2000));
	assert_int_equal(mv_region_addr(a), 0x2000);
	assert_int_equal(mv_region_priority(a), 0);
	expect_view(c, as,
		    "2000-4fff a@0\n"
		    "5000-5fff c@0\n"
		    "6000-7fff b@2000");
	ok(c, mv_region_set_address(b, 0x3000));
	expect_view(c, as,
		    "2000-2fff a@0\n"
		    "3000-4fff b@0\n"
		    "5000-5fff c@0\n"
		    "6000-6fff b@3000");
}

/* Each setter runs in its own transaction (rendered at once), nested in
 * the caller's transaction if there is one. */
static void rule_3_2_setters_each_run_own_transaction(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *r = ram(c, "r", 0x4000);
	struct mv_region *a = alias(c, "a", r, 0, 0x1000);
	struct mv_region *d = io(c, "d", 0x1000);
	struct mv_region *f = romdev(c, "f", 0x1000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0, r, 0);
	add(c, root, 0x10000, a, 0);
	add(c, root, 0x20000, d, 0);
	add(c, root, 0x30000, f, 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-3fff r@0\n"
		    "10000-10fff r@0\n"
		    "20000-20fff d@0\n"
		    "30000-30fff f@0");

	s0 = stats(c);
	ok(c, mv_region_set_alias_offset(a, 0x2000));
	expect_work(c, &s0, 1, 1);
	ok(c, mv_region_set_readonly(a, true));
	expect_work(c, &s0, 2, 2);
	ok(c, mv_region_set_nonvolatile(r, true));
	expect_work(c, &s0, 3, 3);
	expect_view(c, as,
		    "0-3fff r@0 nv\n"
		    "10000-10fff r@2000 ro nv\n"
		    "20000-20fff d@0\n"
		    "30000-30fff f@0");
	ok(c, mv_region_set_size(d, 0x2000));
	expect_work(c, &s0, 4, 4);
	ok(c, mv_region_set_address(d, 0x40000));
	expect_work(c, &s0, 5, 5);
	ok(c, mv_region_rom_device_set_romd(f, false));
	expect_work(c, &s0, 6, 6);
	assert_false(lookup(as, 0x30000)->romd_mode);
	expect_view(c, as,
		    "0-3fff r@0 nv\n"
		    "10000-10fff r@2000 ro nv\n"
		    "30000-30fff f@0\n"
		    "40000-41fff d@0");
	ok(c, mv_region_set_enabled(f, false));
	expect_work(c, &s0, 7, 7);
	expect_view(c, as,
		    "0-3fff r@0 nv\n"
		    "10000-10fff r@2000 ro nv\n"
		    "40000-41fff d@0");

	/* Inside a caller's transaction nothing is rendered until its end. */
	s0 = stats(c);
	mv_txn_begin(c->m);
	ok(c, mv_region_set_enabled(f, true));
	ok(c, mv_region_set_address(d, 0x20000));
	ok(c, mv_region_set_readonly(a, false));
	expect_work(c, &s0, 0, 0);
	expect_view(c, as,
		    "0-3fff r@0 nv\n"
		    "10000-10fff r@2000 ro nv\n"
		    "40000-41fff d@0");
	ok(c, mv_txn_commit(c->m));
	expect_work(c, &s0, 1, 1);
	expect_view(c, as,
		    "0-3fff r@0 nv\n"
		    "10000-10fff r@2000 nv\n"
		    "20000-21fff d@0\n"
		    "30000-30fff f@0");
}

/* update_pending is set by add only if parent and child are both enabled:
 * adding to a disabled parent renders nothing. */
static void rule_3_2_update_pending_add_to_disabled_parent(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *p = container(c, "p", 0x4000);
	struct mv_region *x = ram(c, "x", 0x1000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0, ram(c, "base", 0x1000), 0);
	add(c, root, 0x4000, p, 0);
	ok(c, mv_region_set_enabled(p, false));
	as = as_new(c, "as", root);
	expect_view(c, as, "0-fff base@0");
	s0 = stats(c);
	add(c, p, 0, x, 0);
	expect_work(c, &s0, 0, 0);
	ok(c, mv_region_del_subregion(p, x));
	expect_work(c, &s0, 0, 0);
	add(c, p, 0, x, 0);
	expect_work(c, &s0, 0, 0);
	expect_view(c, as, "0-fff base@0");
	ok(c, mv_region_set_enabled(p, true));
	expect_work(c, &s0, 1, 1);
	expect_view(c, as,
		    "0-fff base@0\n"
		    "4000-4fff x@0");
}

/* ... nor adding a disabled child to an enabled parent. */
static void rule_3_2_update_pending_add_disabled_child(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *x = ram(c, "x", 0x1000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0, ram(c, "base", 0x1000), 0);
	ok(c, mv_region_set_enabled(x, false));
	as = as_new(c, "as", root);
	s0 = stats(c);
	add(c, root, 0x4000, x, 0);
	expect_work(c, &s0, 0, 0);
	expect_view(c, as, "0-fff base@0");
	ok(c, mv_region_set_enabled(x, true));
	expect_work(c, &s0, 1, 1);
	expect_view(c, as,
		    "0-fff base@0\n"
		    "4000-4fff x@0");
}

/* del_subregion follows the same rule as add. */
static void rule_3_2_update_pending_del_needs_both_enabled(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *p = container(c, "p", 0x1000);
	struct mv_region *x = ram(c, "x", 0x1000);
	struct mv_region *y = ram(c, "y", 0x1000);
	struct mv_region *z = ram(c, "z", 0x1000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0, ram(c, "base", 0x1000), 0);
	add(c, root, 0x4000, x, 0);
	add(c, root, 0x8000, y, 0);
	add(c, root, 0xc000, p, 0);
	add(c, p, 0, z, 0);
	ok(c, mv_region_set_enabled(y, false));
	ok(c, mv_region_set_enabled(p, false));
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff base@0\n"
		    "4000-4fff x@0");
	s0 = stats(c);
	ok(c, mv_region_del_subregion(root, y)); /* disabled child */
	expect_work(c, &s0, 0, 0);
	ok(c, mv_region_del_subregion(p, z)); /* disabled parent */
	expect_work(c, &s0, 0, 0);
	ok(c, mv_region_del_subregion(root, x)); /* both enabled */
	expect_work(c, &s0, 1, 1);
	expect_view(c, as, "0-fff base@0");
}

/* set_enabled always sets update_pending, wherever the region is. */
static void rule_3_2_update_pending_set_enabled_always(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *p = container(c, "p", 0x1000);
	struct mv_region *q = ram(c, "q", 0x1000);
	struct mv_region *w = ram(c, "w", 0x1000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0, ram(c, "base", 0x1000), 0);
	add(c, root, 0x4000, p, 0);
	add(c, p, 0, q, 0);
	ok(c, mv_region_set_enabled(p, false));
	as = as_new(c, "as", root);
	s0 = stats(c);
	ok(c, mv_region_set_enabled(w, false)); /* in no tree at all */
	expect_work(c, &s0, 1, 1);
	ok(c, mv_region_set_enabled(q, false)); /* under a disabled parent */
	expect_work(c, &s0, 2, 2);
	expect_view(c, as, "0-fff base@0");
}

/* ---- 3.3 rendering ------------------------------------------------------ */

/* A disabled region renders nothing (nor do its children, nor an alias of
 * it), and hides nothing. */
static void rule_3_3_disabled_not_rendered(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *y = ram(c, "y", 0x1000);
	struct mv_region *k = container(c, "k", 0x1000);
	struct mv_region *w = ram(c, "w", 0x1000);
	struct mv_region *r = ram(c, "r", 0x1000);
	struct mv_region *ar = alias(c, "ar", r, 0, 0x1000);
	struct mv_as *as;

	add(c, root, 0, ram(c, "z", 0x4000), -1);
	add(c, root, 0x1000, y, 1);
	add(c, root, 0x2000, k, 1);
	add(c, k, 0, ram(c, "x", 0x1000), 0);
	add(c, root, 0x10000, alias(c, "aw", w, 0, 0x1000), 0);
	add(c, root, 0x20000, ar, 0);
	ok(c, mv_region_set_enabled(y, false));
	ok(c, mv_region_set_enabled(k, false));
	ok(c, mv_region_set_enabled(w, false));
	ok(c, mv_region_set_enabled(ar, false));
	as = as_new(c, "as", root);
	expect_view(c, as, "0-3fff z@0");

	ok(c, mv_region_set_enabled(k, true));
	expect_view(c, as,
		    "0-1fff z@0\n"
		    "2000-2fff x@0\n"
		    "3000-3fff z@3000");
	ok(c, mv_region_set_enabled(w, true));
	ok(c, mv_region_set_enabled(ar, true));
	ok(c, mv_region_set_enabled(y, true));
	expect_view(c, as,
		    "0-fff z@0\n"
		    "1000-1fff y@0\n"
		    "2000-2fff x@0\n"
		    "3000-3fff z@3000\n"
		    "10000-10fff w@0\n"
		    "20000-20fff r@0");
}

/* base += mr->addr at every level. */
static void rule_3_3_base_accumulates_addresses(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", UINT64_MAX);
	struct mv_region *c1 = container(c, "c1", 0x10000);
	struct mv_region *c2 = container(c, "c2", 0x4000);
	struct mv_as *as;

	add(c, root, 0x10000, c1, 0);
	add(c, c1, 0x2000, c2, 0);
	add(c, c2, 0x300, ram(c, "r", 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as, "12300-132ff r@0");
}

/* readonly |= mr->readonly down the render, through containers and
 * aliases; the regions themselves are not changed. */
static void rule_3_3_readonly_inherited(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *k = container(c, "k", 0x2000);
	struct mv_region *k2 = container(c, "k2", 0x1000);
	struct mv_region *x = ram(c, "x", 0x1000);
	struct mv_region *r = ram(c, "r", 0x1000);
	struct mv_region *a = alias(c, "a", r, 0, 0x1000);
	struct mv_region *rm = rom(c, "rm", 0x1000);
	struct mv_as *as;

	add(c, root, 0, k, 0);
	add(c, k, 0, x, 0);
	add(c, k, 0x1000, k2, 0);
	add(c, k2, 0, ram(c, "y", 0x1000), 0);
	add(c, root, 0x10000, r, 0);
	add(c, root, 0x20000, a, 0);
	add(c, root, 0x30000, alias(c, "arm", rm, 0, 0x1000), 0);
	ok(c, mv_region_set_readonly(k, true));
	ok(c, mv_region_set_readonly(a, true));
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff x@0 ro\n"
		    "1000-1fff y@0 ro\n"
		    "10000-10fff r@0\n"
		    "20000-20fff r@0 ro\n"
		    "30000-30fff rm@0 ro");
	assert_false(mv_region_readonly(x));
	assert_false(mv_region_readonly(r));
	ok(c, mv_region_set_readonly(k, false));
	expect_view(c, as,
		    "0-fff x@0\n"
		    "1000-1fff y@0\n"
		    "10000-10fff r@0\n"
		    "20000-20fff r@0 ro\n"
		    "30000-30fff rm@0 ro");
}

/* nonvolatile |= mr->nonvolatile the same way. */
static void rule_3_3_nonvolatile_inherited(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *k = container(c, "k", 0x2000);
	struct mv_region *r = ram(c, "r", 0x1000);
	struct mv_region *a = alias(c, "a", r, 0, 0x1000);
	struct mv_region *n = ram(c, "n", 0x1000);
	struct mv_region *b = alias(c, "b", n, 0, 0x1000);
	struct mv_as *as;

	add(c, root, 0, k, 0);
	add(c, k, 0x1000, ram(c, "x", 0x1000), 0);
	add(c, root, 0x10000, r, 0);
	add(c, root, 0x20000, a, 0);
	add(c, root, 0x30000, n, 0);
	add(c, root, 0x40000, b, 0);
	ok(c, mv_region_set_nonvolatile(k, true));
	ok(c, mv_region_set_nonvolatile(a, true));
	ok(c, mv_region_set_nonvolatile(n, true));
	ok(c, mv_region_set_readonly(b, true));
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "1000-1fff x@0 nv\n"
		    "10000-10fff r@0\n"
		    "20000-20fff r@0 nv\n"
		    "30000-30fff n@0 nv\n"
		    "40000-40fff n@0 ro nv");
	ok(c, mv_region_set_nonvolatile(k, false));
	expect_view(c, as,
		    "1000-1fff x@0\n"
		    "10000-10fff r@0\n"
		    "20000-20fff r@0 nv\n"
		    "30000-30fff n@0 nv\n"
		    "40000-40fff n@0 ro nv");
}

/* clip = [base, base+size) ∩ clip at every level: children are cut to
 * their ancestors, and one wholly outside is not rendered. */
static void rule_3_3_clip_to_parent(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *k = container(c, "k", 0x2000);
	struct mv_region *d = container(c, "d", 0x1000);
	struct mv_region *e = container(c, "e", 0x4000);
	struct mv_region *f = container(c, "f", 0x800);
	struct mv_region *r = ram(c, "r", 0x4000);
	struct mv_as *as;

	add(c, root, 0, io(c, "L", 0x8000), -1);
	add(c, root, 0x1000, k, 0);
	add(c, k, 0x1000, ram(c, "x", 0x4000), 0);
	add(c, k, 0x3000, ram(c, "y", 0x1000), 0);
	add(c, root, 0x10000, d, 0);
	add(c, d, 0, e, 0);
	add(c, e, 0, ram(c, "z", 0x4000), 0);
	add(c, root, 0x20000, alias(c, "a", r, 0x1000, 0x1000), 0);
	add(c, root, 0x30000, f, 0);
	add(c, f, 0, alias(c, "b", r, 0x2000, 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-1fff L@0\n"
		    "2000-2fff x@0\n"
		    "3000-7fff L@3000\n"
		    "10000-10fff z@0\n"
		    "20000-20fff r@1000\n"
		    "30000-307ff r@2000");
}

/* Rendering is in Int128: a region reaching past 2^64 is cut there and
 * nothing wraps around to address 0. */
static void rule_3_3_clip_at_2_64_no_wrap(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", UINT64_MAX);
	struct mv_region *k = container(c, "k", 0x20000);
	struct mv_as *as;

	add(c, root, 0xffffffffffff0000, k, 0);
	add(c, k, 0x8000, ram(c, "x", 0x10000), 0);
	add(c, k, 0x18000, ram(c, "y", 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as, "ffffffffffff8000-ffffffffffffffff x@0");
}

/* base -= target->addr + alias_offset: offset O of the target appears at
 * the alias' address, whatever the target's own address. */
static void rule_3_3_alias_base_shift(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x1000000);
	struct mv_region *r = ram(c, "r", 0x10000);
	struct mv_region *t = container(c, "T", 0x10000);
	struct mv_as *as;

	add(c, root, 0x100000, r, 0);
	add(c, root, 0x8000, alias(c, "a", r, 0x4000, 0x2000), 0);
	add(c, root, 0x200000, t, 0);
	add(c, t, 0x1000, ram(c, "p", 0x1000), 0);
	add(c, t, 0x3000, ram(c, "q", 0x1000), 0);
	add(c, root, 0x50000, alias(c, "b", t, 0x800, 0x3000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "8000-9fff r@4000\n"
		    "50800-517ff p@0\n"
		    "52800-52fff q@0\n"
		    "100000-10ffff r@0\n"
		    "201000-201fff p@0\n"
		    "203000-203fff q@0");
}

/* Alias arithmetic can put the target's base below 0 (Int128): the part
 * inside the clip must still render with the right offsets. */
static void rule_3_3_negative_alias_offset(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x1000000);
	struct mv_region *r = ram(c, "r", 0x8000);
	struct mv_region *t = container(c, "T", 0x10000);
	struct mv_as *as;

	/* r's base: 0x1000 - 0x4000 = -0x3000. */
	add(c, root, 0x1000, alias(c, "a", r, 0x4000, 0x1000), 0);
	/* T's base: 0x3000 - (0x100000 + 0x4000) + 0x100000 = -0x1000. */
	add(c, root, 0x100000, t, 0);
	add(c, t, 0, ram(c, "q", 0x1000), 0);
	add(c, t, 0x4000, ram(c, "p", 0x2000), 0);
	add(c, root, 0x3000, alias(c, "b", t, 0x4000, 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "1000-1fff r@4000\n"
		    "3000-3fff p@0\n"
		    "100000-100fff q@0\n"
		    "104000-105fff p@0");
}

/* A terminating region is inserted only into the gaps left by what was
 * rendered before it. */
static void rule_3_3_terminating_fills_only_gaps(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_as *as;

	add(c, root, 0, ram(c, "lo", 0x8000), 0);
	add(c, root, 0x1000, ram(c, "hi1", 0x1000), 1);
	add(c, root, 0x3000, ram(c, "hi2", 0x1000), 1);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff lo@0\n"
		    "1000-1fff hi1@0\n"
		    "2000-2fff lo@2000\n"
		    "3000-3fff hi2@0\n"
		    "4000-7fff lo@4000");
	add(c, root, 0x3800, ram(c, "hi3", 0x1000), 1);
	expect_view(c, as,
		    "0-fff lo@0\n"
		    "1000-1fff hi1@0\n"
		    "2000-2fff lo@2000\n"
		    "3000-37ff hi2@0\n"
		    "3800-47ff hi3@0\n"
		    "4800-7fff lo@4800");
}

/* A non-container with subregions is the background where its children
 * (whatever their priority) leave gaps; children are clipped to it. */
static void rule_3_3_background_of_non_container(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *b = io(c, "B", 0x4000);
	struct mv_region *big = ram(c, "R", 0x4000);
	struct mv_as *as;

	add(c, root, 0, ram(c, "S", 0x8000), -1);
	add(c, root, 0, b, 0);
	add(c, b, 0x1000, ram(c, "x", 0x1000), -10);
	add(c, b, 0x3800, ram(c, "y", 0x1000), 0);
	add(c, root, 0x8000, big, 0);
	add(c, big, 0x2000, io(c, "k", 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff B@0\n"
		    "1000-1fff x@0\n"
		    "2000-37ff B@2000\n"
		    "3800-3fff y@0\n"
		    "4000-7fff S@4000\n"
		    "8000-9fff R@0\n"
		    "a000-afff k@0\n"
		    "b000-bfff R@3000");
}

/* A ROM device starts in romd mode; the range records romd_mode and
 * rom_device_set_romd() re-renders with the new mode. */
static void rule_3_3_romd(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *f = romdev(c, "flash", 0x2000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0x1000, f, 0);
	add(c, root, 0x8000, ram(c, "r", 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "1000-2fff flash@0\n"
		    "8000-8fff r@0");
	assert_true(lookup(as, 0x1000)->romd_mode);
	assert_string_equal(mv_region_type(f), "romd");
	s0 = stats(c);
	ok(c, mv_region_rom_device_set_romd(f, false));
	expect_work(c, &s0, 1, 1);
	assert_false(lookup(as, 0x2fff)->romd_mode);
	assert_string_equal(mv_region_type(f), "i/o");
	expect_view(c, as,
		    "1000-2fff flash@0\n"
		    "8000-8fff r@0");
	ok(c, mv_region_rom_device_set_romd(f, true));
	assert_true(lookup(as, 0x1000)->romd_mode);
}

/* can_merge ignores which alias produced a range: contiguous pieces of
 * one region with contiguous offsets merge (the PAM + ram-below-4g case). */
static void rule_3_3_can_merge_across_aliases(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *r = ram(c, "r", 0x4000);
	struct mv_region *m = ram(c, "m", 0x10000);
	struct mv_as *as;

	add(c, root, 0, alias(c, "a1", r, 0, 0x2000), 0);
	add(c, root, 0x2000, alias(c, "a2", r, 0x2000, 0x2000), 0);
	add(c, root, 0x10000, m, 0);
	add(c, root, 0x14000, alias(c, "pam", m, 0x4000, 0x1000), 1);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-3fff r@0\n"
		    "10000-1ffff m@0");
	assert_int_equal(nr_ranges(as), 2);
}

/* can_merge needs offset_in_region contiguous too. */
static void rule_3_3_no_merge_when_offsets_not_contiguous(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *r = ram(c, "r", 0x4000);
	struct mv_as *as;

	add(c, root, 0, alias(c, "a1", r, 0, 0x1000), 0);
	add(c, root, 0x1000, alias(c, "a2", r, 0x2000, 0x1000), 0);
	add(c, root, 0x2000, alias(c, "a3", r, 0, 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff r@0\n"
		    "1000-1fff r@2000\n"
		    "2000-2fff r@0");
}

/* can_merge needs the same region. */
static void rule_3_3_no_merge_across_regions(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_as *as;

	add(c, root, 0, ram(c, "u", 0x1000), 0);
	add(c, root, 0x1000, ram(c, "v", 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff u@0\n"
		    "1000-1fff v@0");
}

static void rule_3_3_no_merge_when_readonly_differs(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *r = ram(c, "r", 0x4000);
	struct mv_region *a1 = alias(c, "a1", r, 0, 0x2000);
	struct mv_as *as;

	add(c, root, 0, a1, 0);
	add(c, root, 0x2000, alias(c, "a2", r, 0x2000, 0x2000), 0);
	ok(c, mv_region_set_readonly(a1, true));
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-1fff r@0 ro\n"
		    "2000-3fff r@2000");
	ok(c, mv_region_set_readonly(a1, false));
	expect_view(c, as, "0-3fff r@0");
}

static void rule_3_3_no_merge_when_nonvolatile_differs(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x100000);
	struct mv_region *r = ram(c, "r", 0x4000);
	struct mv_region *a2 = alias(c, "a2", r, 0x2000, 0x2000);
	struct mv_as *as;

	add(c, root, 0, alias(c, "a1", r, 0, 0x2000), 0);
	add(c, root, 0x2000, a2, 0);
	ok(c, mv_region_set_nonvolatile(a2, true));
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-1fff r@0\n"
		    "2000-3fff r@2000 nv");
	ok(c, mv_region_set_nonvolatile(a2, false));
	expect_view(c, as, "0-3fff r@0");
}

/* Root render is render(root, base 0, [0, 2^64)), and step 1 adds the
 * root's own addr: a root that is also mapped somewhere renders shifted. */
static void rule_3_3_root_rendered_from_its_own_addr(void **state)
{
	struct ctx *c = *state;
	struct mv_region *outer = container(c, "outer", 0x100000);
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_as *as;

	add(c, outer, 0x5000, root, 0);
	add(c, root, 0, ram(c, "a", 0x1000), 0);
	add(c, root, 0x2000, ram(c, "b", 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "5000-5fff a@0\n"
		    "7000-7fff b@0");
}

/*
 * Moving a root region has no transaction in QEMU (it has no container),
 * so the view moves at the next commit that renders, even after a commit
 * with nothing pending in between.
 */
static void rule_3_3_moved_root_rendered_at_next_render(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *a = ram(c, "a", 0x2000);
	struct mv_as *as;

	add(c, root, 0x1000, a, 0);
	as = as_new(c, "as", root);
	expect_view(c, as, "1000-2fff a@0");
	assert_int_equal(mv_region_set_address(root, 0x10000), 0);
	expect_view(c, as, "1000-2fff a@0"); /* not rendered yet */
	mv_txn_begin(c->m);
	assert_int_equal(mv_txn_commit(c->m), 0);
	expect_view(c, as, "1000-2fff a@0");
	assert_int_equal(mv_region_set_size(a, 0x1000), 0);
	expect_view(c, as, "11000-11fff a@0");
}

/* A view root added to a container renders at its new address. */
static void rule_3_3_root_added_to_container_moves_view(void **state)
{
	struct ctx *c = *state;
	struct mv_region *outer = container(c, "outer", 0x10000);
	struct mv_region *a = ram(c, "a", 0x1000);
	struct mv_as *as;

	as = as_new(c, "as", a);
	expect_view(c, as, "0-fff a@0");
	add(c, outer, 0x3000, a, 0);
	expect_view(c, as, "3000-3fff a@0");
}

/* ---- 3.4 flat-view sharing and transactions ----------------------------- */

/* Address spaces with the same root share one view object; creating the
 * second renders nothing. */
static void rule_3_4_flatview_shared_by_same_root(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_machine_stats s0;
	struct mv_as *as, *as2;

	add(c, root, 0, ram(c, "a", 0x1000), 0);
	add(c, root, 0x2000, ram(c, "b", 0x1000), 0);
	s0 = stats(c);
	as = as_new(c, "as", root);
	expect_work(c, &s0, 1, 0);
	as2 = as_new(c, "as2", root);
	expect_work(c, &s0, 1, 0);
	assert_ptr_equal(view_of(as), view_of(as2));
	assert_ptr_equal(mv_flatview_root(view_of(as)), root);

	add(c, root, 0x4000, ram(c, "c", 0x1000), 0);
	expect_work(c, &s0, 2, 1);
	assert_ptr_equal(view_of(as), view_of(as2));
	expect_view(c, as2,
		    "0-fff a@0\n"
		    "2000-2fff b@0\n"
		    "4000-4fff c@0");
}

/* An alias with offset 0 and size >= its target's is followed to the
 * target: its address space shares the target's view. */
static void rule_3_4_alias_root_shares_target_view(void **state)
{
	struct ctx *c = *state;
	struct mv_region *t = container(c, "T", 0x10000);
	struct mv_region *a = alias(c, "A", t, 0, 0x10000);
	struct mv_region *a2 = alias(c, "A2", t, 0, 0x20000);
	struct mv_region *small = alias(c, "B", t, 0, 0x8000);
	struct mv_region *off = alias(c, "O", t, 0x1000, 0xf000);
	struct mv_machine_stats s0;
	struct mv_as *as, *as2, *as_io, *as_mem, *as_off;

	add(c, t, 0, ram(c, "p", 0x1000), 0);
	add(c, t, 0x9000, ram(c, "q", 0x1000), 0);
	as = as_new(c, "as", t);
	s0 = stats(c);
	as2 = as_new(c, "as2", a);
	as_io = as_new(c, "io", a2);
	expect_work(c, &s0, 0, 0);
	assert_ptr_equal(view_of(as2), view_of(as));
	assert_ptr_equal(view_of(as_io), view_of(as));
	assert_ptr_equal(mv_flatview_root(view_of(as2)), t);
	expect_view(c, as2,
		    "0-fff p@0\n"
		    "9000-9fff q@0");

	/* Smaller or offset aliases are their own flat-view roots. */
	as_mem = as_new(c, "memory", small);
	as_off = as_new(c, "I/O", off);
	expect_work(c, &s0, 2, 0);
	assert_ptr_equal(mv_flatview_root(view_of(as_mem)), small);
	assert_ptr_equal(mv_flatview_root(view_of(as_off)), off);
	expect_view(c, as_mem, "0-fff p@0");
	expect_view(c, as_off, "8000-8fff q@0");
}

/* Following the alias drops the alias' own flags: QEMU renders the target
 * from scratch (readonly = false), so a readonly whole-target alias root
 * gives the target's writable view. */
static void rule_3_4_alias_root_loses_alias_readonly(void **state)
{
	struct ctx *c = *state;
	struct mv_region *t = container(c, "T", 0x10000);
	struct mv_region *a = alias(c, "A", t, 0, 0x10000);
	struct mv_as *as, *as2;

	add(c, t, 0, ram(c, "p", 0x1000), 0);
	add(c, t, 0x9000, ram(c, "q", 0x1000), 0);
	ok(c, mv_region_set_readonly(a, true));
	as = as_new(c, "as", a);
	as2 = as_new(c, "as2", t);
	assert_ptr_equal(view_of(as), view_of(as2));
	expect_view(c, as,
		    "0-fff p@0\n"
		    "9000-9fff q@0");
}

/* A pure container whose only enabled child sits at 0 inside it is
 * descended into, down to the region that is rendered. */
static void rule_3_4_sole_child_container_descends(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = container(c, "R", 0x10000);
	struct mv_region *k = container(c, "C", 0x10000);
	struct mv_region *d = ram(c, "D", 0x1000);
	struct mv_region *s = container(c, "S", 0x10000);
	struct mv_region *x = ram(c, "x", 0x1000);
	struct mv_as *as, *as2, *as_mem, *as_io;

	add(c, r, 0, k, 0);
	add(c, r, 0x8000, d, 0);
	ok(c, mv_region_set_enabled(d, false));
	add(c, k, 0, ram(c, "p", 0x1000), 0);
	add(c, k, 0x2000, ram(c, "q", 0x1000), 0);
	add(c, s, 0, x, 0);
	as = as_new(c, "as", r);
	as2 = as_new(c, "as2", k);
	as_mem = as_new(c, "memory", s);
	as_io = as_new(c, "io", x);
	assert_ptr_equal(mv_flatview_root(view_of(as)), k);
	assert_ptr_equal(view_of(as), view_of(as2));
	assert_ptr_equal(mv_flatview_root(view_of(as_mem)), x);
	assert_ptr_equal(view_of(as_mem), view_of(as_io));
	expect_view(c, as,
		    "0-fff p@0\n"
		    "2000-2fff q@0");
	expect_view(c, as_mem, "0-fff x@0");

	/* A second enabled child stops the descent. */
	ok(c, mv_region_set_enabled(d, true));
	assert_ptr_equal(mv_flatview_root(view_of(as)), r);
	assert_ptr_not_equal(view_of(as), view_of(as2));
	expect_view(c, as,
		    "0-fff p@0\n"
		    "2000-2fff q@0\n"
		    "8000-8fff D@0");
	expect_view(c, as2,
		    "0-fff p@0\n"
		    "2000-2fff q@0");
}

/* No descent into a child that is not at 0 or is larger than the
 * container: the container still clips it. */
static void rule_3_4_no_descent_unless_child_inside_at_0(void **state)
{
	struct ctx *c = *state;
	struct mv_region *l = container(c, "L", 0x1000);
	struct mv_region *n = container(c, "N", 0x10000);
	struct mv_as *as, *as2;

	add(c, l, 0, ram(c, "y", 0x2000), 0);
	add(c, n, 0x1000, ram(c, "z", 0x1000), 0);
	as = as_new(c, "as", l);
	as2 = as_new(c, "as2", n);
	assert_ptr_equal(mv_flatview_root(view_of(as)), l);
	assert_ptr_equal(mv_flatview_root(view_of(as2)), n);
	expect_view(c, as, "0-fff y@0");
	expect_view(c, as2, "1000-1fff z@0");
}

/* A root with no enabled child gives the shared empty view: root (none),
 * one object for every such address space, kept across commits. */
static void rule_3_4_empty_container_gives_shared_empty_view(void **state)
{
	struct ctx *c = *state;
	struct mv_region *e1 = container(c, "E1", 0x10000);
	struct mv_region *e2 = container(c, "E2", 0x1000);
	struct mv_region *w = ram(c, "w", 0x1000);
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_flatview *empty;
	struct mv_machine_stats s0;
	struct mv_as *as, *as2, *as_mem;

	add(c, e2, 0, w, 0);
	ok(c, mv_region_set_enabled(w, false));
	as = as_new(c, "as", e1);
	as2 = as_new(c, "as2", e2);
	empty = mv_as_get_flatview(as);
	assert_null(mv_flatview_root(empty));
	assert_ptr_equal(view_of(as2), empty);
	assert_int_equal(nr_ranges(as), 0);
	expect_view(c, as, "");

	add(c, root, 0, ram(c, "a", 0x1000), 0);
	add(c, root, 0x2000, ram(c, "b", 0x1000), 0);
	as_mem = as_new(c, "memory", root);
	s0 = stats(c);
	add(c, root, 0x4000, ram(c, "c", 0x1000), 0);
	/* Only the non-empty root is rendered again. */
	expect_work(c, &s0, 1, 1);
	assert_ptr_equal(view_of(as), empty);
	assert_ptr_equal(view_of(as2), empty);
	expect_view(c, as_mem,
		    "0-fff a@0\n"
		    "2000-2fff b@0\n"
		    "4000-4fff c@0");
	mv_flatview_unref(empty);
}

/* A disabled root is the empty view too; enabling it renders it. */
static void rule_3_4_disabled_root_gives_empty_view(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r = ram(c, "R", 0x1000);
	struct mv_region *e = container(c, "E", 0x1000);
	struct mv_as *as, *as2;

	ok(c, mv_region_set_enabled(r, false));
	as = as_new(c, "as", r);
	as2 = as_new(c, "as2", e);
	assert_null(mv_flatview_root(view_of(as)));
	assert_ptr_equal(view_of(as), view_of(as2));
	expect_view(c, as, "");
	ok(c, mv_region_set_enabled(r, true));
	assert_ptr_equal(mv_flatview_root(view_of(as)), r);
	expect_view(c, as, "0-fff R@0");
	ok(c, mv_region_set_enabled(r, false));
	assert_ptr_equal(view_of(as), view_of(as2));
}

/* Transactions nest (a counter); only the outermost commit renders, once. */
static void rule_3_4_transaction_nested_renders_once(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *a = ram(c, "a", 0x1000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0, ram(c, "base", 0x1000), 0);
	as = as_new(c, "as", root);
	s0 = stats(c);
	mv_txn_begin(c->m);
	mv_txn_begin(c->m);
	add(c, root, 0x2000, a, 0);
	add(c, root, 0x4000, ram(c, "b", 0x1000), 0);
	ok(c, mv_region_set_address(a, 0x3000));
	ok(c, mv_txn_commit(c->m));
	expect_work(c, &s0, 0, 0);
	expect_view(c, as, "0-fff base@0");
	ok(c, mv_region_set_readonly(a, true));
	ok(c, mv_txn_commit(c->m));
	expect_work(c, &s0, 1, 1);
	expect_view(c, as,
		    "0-fff base@0\n"
		    "3000-3fff a@0 ro\n"
		    "4000-4fff b@0");
}

/* A commit with update_pending clear renders nothing; setters that change
 * nothing leave it clear. */
static void rule_3_4_nothing_rendered_when_nothing_changed(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *r = ram(c, "r", 0x4000);
	struct mv_region *a = alias(c, "a", r, 0x1000, 0x1000);
	struct mv_region *f = romdev(c, "f", 0x1000);
	struct mv_machine_stats s0;
	struct mv_as *as;

	add(c, root, 0x1000, r, 0);
	add(c, root, 0x8000, a, 0);
	add(c, root, 0xa000, f, 0);
	as = as_new(c, "as", root);
	s0 = stats(c);
	mv_txn_begin(c->m);
	ok(c, mv_txn_commit(c->m));
	mv_txn_begin(c->m);
	mv_txn_begin(c->m);
	ok(c, mv_txn_commit(c->m));
	ok(c, mv_txn_commit(c->m));
	ok(c, mv_region_set_enabled(r, true));
	ok(c, mv_region_set_address(r, 0x1000));
	ok(c, mv_region_set_size(r, 0x4000));
	ok(c, mv_region_set_readonly(r, false));
	ok(c, mv_region_set_nonvolatile(r, false));
	ok(c, mv_region_set_alias_offset(a, 0x1000));
	ok(c, mv_region_rom_device_set_romd(f, true));
	expect_work(c, &s0, 0, 0);
	expect_view(c, as,
		    "1000-4fff r@0\n"
		    "8000-8fff r@1000\n"
		    "a000-afff f@0");
}

/* Each commit renders every distinct flat-view root once, however many
 * address spaces share it. */
static void rule_3_4_one_render_per_distinct_root(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r1 = container(c, "R1", 0x10000);
	struct mv_region *r2 = container(c, "R2", 0x10000);
	struct mv_machine_stats s0;
	struct mv_as *as, *as2, *as_mem, *as_io;

	add(c, r1, 0, ram(c, "a", 0x1000), 0);
	add(c, r1, 0x2000, ram(c, "b", 0x1000), 0);
	add(c, r2, 0, ram(c, "c", 0x1000), 0);
	add(c, r2, 0x2000, ram(c, "d", 0x1000), 0);
	as = as_new(c, "as", r1);
	as2 = as_new(c, "as2", r1);
	as_mem = as_new(c, "memory", r2);
	as_io = as_new(c, "io", alias(c, "whole", r1, 0, 0x10000));
	s0 = stats(c);
	add(c, r2, 0x4000, ram(c, "e", 0x1000), 0);
	expect_work(c, &s0, 2, 1);
	mv_txn_begin(c->m);
	add(c, r1, 0x4000, ram(c, "f", 0x1000), 0);
	add(c, r2, 0x6000, ram(c, "g", 0x1000), 0);
	ok(c, mv_txn_commit(c->m));
	expect_work(c, &s0, 4, 2);
	assert_ptr_equal(view_of(as), view_of(as2));
	assert_ptr_equal(view_of(as), view_of(as_io));
	expect_view(c, as_io,
		    "0-fff a@0\n"
		    "2000-2fff b@0\n"
		    "4000-4fff f@0");
	expect_view(c, as_mem,
		    "0-fff c@0\n"
		    "2000-2fff d@0\n"
		    "4000-4fff e@0\n"
		    "6000-6fff g@0");
}

/* flatviews_reset() re-renders every unique root on every commit, even
 * when the change is in a tree no address space uses. */
static void rule_3_4_every_root_rerendered_on_any_change(void **state)
{
	struct ctx *c = *state;
	struct mv_region *r1 = container(c, "R1", 0x10000);
	struct mv_region *r2 = container(c, "R2", 0x10000);
	struct mv_region *x = container(c, "X", 0x10000);
	struct mv_machine_stats s0;
	struct mv_as *as, *as2;

	add(c, r1, 0, ram(c, "a", 0x1000), 0);
	add(c, r1, 0x2000, ram(c, "b", 0x1000), 0);
	add(c, r2, 0x1000, ram(c, "c", 0x1000), 0);
	as = as_new(c, "as", r1);
	as2 = as_new(c, "as2", r2);
	s0 = stats(c);
	add(c, x, 0, ram(c, "y", 0x1000), 0);
	expect_work(c, &s0, 2, 1);
	add(c, r2, 0x4000, ram(c, "d", 0x1000), 0);
	expect_work(c, &s0, 4, 2);
	expect_view(c, as,
		    "0-fff a@0\n"
		    "2000-2fff b@0");
	expect_view(c, as2,
		    "1000-1fff c@0\n"
		    "4000-4fff d@0");
}

/* ---- invariants of include/memvirt/memory.h ----------------------------- */

/* Everything hangs off a machine: two machines share nothing, not even
 * the empty view or the render counters. */
static void invariant_no_global_state(void **state)
{
	struct ctx *c = *state;
	struct mv_machine *m2 = NULL;
	struct mv_region *e2 = NULL, *root2 = NULL, *x2 = NULL;
	struct mv_machine_stats s0, t0, t1;
	struct mv_as *as, *as_b = NULL, *as_c = NULL;

	as = as_new(c, "as", container(c, "E", 0x1000));
	assert_int_equal(mv_machine_new(&m2), 0);
	assert_int_equal(mv_region_new_container(m2, "E", 0x1000, &e2), 0);
	assert_int_equal(mv_region_new_container(m2, "root", 0x1000, &root2),
			 0);
	assert_int_equal(mv_region_new_ram(m2, "x", 0x1000, NULL, &x2), 0);
	assert_int_equal(mv_as_new(m2, "as", e2, &as_b), 0);
	assert_int_equal(mv_as_new(m2, "as2", root2, &as_c), 0);
	assert_ptr_not_equal(view_of(as), view_of(as_b));
	assert_null(mv_flatview_root(view_of(as_b)));

	s0 = stats(c);
	mv_machine_get_stats(m2, &t0);
	assert_int_equal(mv_region_add_subregion(root2, 0, x2), 0);
	mv_machine_get_stats(m2, &t1);
	assert_int_equal(t1.commits - t0.commits, 1);
	expect_work(c, &s0, 0, 0);
	mv_test_expect_view(as_c, "0-fff x@0");
	mv_test_check_views(m2);

	mv_region_unref(x2);
	mv_region_unref(root2);
	mv_region_unref(e2);
	mv_machine_free(m2);
}

/* A published view never changes and keeps the regions it names alive
 * until it is released. */
static void invariant_published_view_immutable_and_holds_regions(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *x = ram(c, "x", 0x1000);
	const struct mv_flat_range *r;
	struct mv_flatview *old;
	struct mv_as *as;
	size_t nr;

	add(c, root, 0, x, 0);
	add(c, root, 0x4000, ram(c, "y", 0x1000), 0);
	as = as_new(c, "as", root);
	old = mv_as_get_flatview(as);
	ok(c, mv_region_del_subregion(root, x));
	untrack(c, x);
	mv_region_unref(x); /* now only the old view holds x */
	add(c, root, 0x8000, ram(c, "z", 0x1000), 0);
	expect_view(c, as,
		    "4000-4fff y@0\n"
		    "8000-8fff z@0");

	r = mv_flatview_ranges(old, &nr);
	assert_int_equal(nr, 2);
	assert_string_equal(mv_region_name(r[0].mr), "x");
	assert_int_equal(r[0].first, 0);
	assert_int_equal(r[0].last, 0xfff);
	assert_string_equal(mv_region_name(r[1].mr), "y");
	assert_int_equal(mv_flatview_check(old, NULL, 0), 0);
	mv_flatview_unref(old);
}

/* A view held across a region's shrinking still checks clean (it shows
 * the old size, as QEMU's old FlatView would); the current view is
 * checked against the new size. */
static void invariant_held_view_checks_after_resize(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *x = io(c, "x", 0x2000);
	struct mv_flatview *old, *now;
	struct mv_as *as;
	char why[128];

	add(c, root, 0x1000, x, 0);
	as = as_new(c, "as", root);
	old = mv_as_get_flatview(as);
	ok(c, mv_region_set_size(x, 0x800));
	expect_view(c, as, "1000-17ff x@0");
	now = mv_as_get_flatview(as);
	assert_int_equal(mv_flatview_check(old, why, sizeof(why)), 0);
	assert_int_equal(mv_flatview_check(now, why, sizeof(why)), 0);
	mv_flatview_unref(now);
	mv_flatview_unref(old);
}

/* set_size re-renders in list order: a region that grows into a newer
 * sibling is hidden there, wherever the two sit. */
static void rule_3_2_set_size_keeps_list_order(void **state)
{
	struct ctx *c = *state;
	struct mv_region *root = container(c, "root", 0x10000);
	struct mv_region *x = io(c, "x", 0x1000);
	struct mv_as *as;

	add(c, root, 0, x, 0);
	add(c, root, 0x1000, io(c, "y", 0x1000), 0);
	as = as_new(c, "as", root);
	expect_view(c, as,
		    "0-fff x@0\n"
		    "1000-1fff y@0");
	ok(c, mv_region_set_size(x, 0x3000));
	expect_view(c, as,
		    "0-fff x@0\n"
		    "1000-1fff y@0\n"
		    "2000-2fff x@2000");
}

/* ---- randomised trees against a model of QEMU's algorithm --------------- */

/*
 * A direct transcription of QEMU 7.2's memory_region_get_flatview_root(),
 * render_memory_region() (gap insertion into a sorted array) and
 * flatview_simplify(), over a mirror of the region tree, in Int128.  It
 * shares no code with the library.
 */
__extension__ typedef __int128 s128;

#define MODEL_NODES 64 /* at most; most runs use 24 */
#define MODEL_SPACE 0x10000

enum model_kind {
	MK_CONTAINER,
	MK_IO,
	MK_ALIAS
};

struct model_node {
	struct mv_region *r;
	enum model_kind kind;
	s128 size;
	uint64_t addr, alias_offset;
	int prio, parent, target;
	unsigned long seq;
	bool enabled, ro, nv;
};

struct model_range {
	s128 start, end;
	int mr;
	uint64_t off;
	bool ro, nv;
};

struct model {
	struct mv_machine *m;
	struct model_node n[MODEL_NODES];
	int nr;
	unsigned long seq;
	struct model_range *ranges;
	size_t nr_ranges, cap;
	uint64_t rng;
};

static uint64_t model_rand(struct model *md, uint64_t n)
{
	md->rng ^= md->rng << 13;
	md->rng ^= md->rng >> 7;
	md->rng ^= md->rng << 17;
	return md->rng % n;
}

/* Children of @p in QEMU's list order: priority desc, newest first. */
static int model_children(const struct model *md, int p, int *out)
{
	int i, j, nr = 0;

	for (i = 0; i < md->nr; i++) {
		if (md->n[i].parent != p)
			continue;
		for (j = nr; j > 0; j--) {
			const struct model_node *a = &md->n[out[j - 1]];
			const struct model_node *b = &md->n[i];

			if (a->prio > b->prio ||
			    (a->prio == b->prio && a->seq > b->seq))
				break;
			out[j] = out[j - 1];
		}
		out[j] = i;
		nr++;
	}
	return nr;
}

static void model_insert(struct model *md, const struct model_range *r)
{
	if (md->nr_ranges == md->cap) {
		md->cap = md->cap ? md->cap * 2 : 64;
		md->ranges = realloc(md->ranges, md->cap * sizeof(*r));
		assert_non_null(md->ranges);
	}
	md->ranges[md->nr_ranges++] = *r;
}

static int model_cmp(const void *a, const void *b)
{
	const struct model_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Insert [s, e) of node @i only into the gaps of the sorted view. */
static void model_fill(struct model *md, int i, s128 s, s128 e, s128 base,
		       bool ro, bool nv)
{
	size_t k, nr = md->nr_ranges;
	s128 cur = s;

	for (k = 0; k < nr && cur < e; k++) {
		struct model_range piece = { cur, md->ranges[k].start,
					     i,	  (uint64_t)(cur - base),
					     ro,  nv };

		if (md->ranges[k].end <= cur)
			continue;
		if (md->ranges[k].start >= e)
			break;
		if (md->ranges[k].start > cur)
			model_insert(md, &piece);
		cur = md->ranges[k].end;
	}
	if (cur < e) {
		struct model_range piece = { cur, e, i, (uint64_t)(cur - base),
					     ro,  nv };

		model_insert(md, &piece);
	}
	qsort(md->ranges, md->nr_ranges, sizeof(*md->ranges), model_cmp);
}

static void model_render(struct model *md, int i, s128 base, s128 cs, s128 ce,
			 bool ro, bool nv)
{
	const struct model_node *n = &md->n[i];
	int kids[MODEL_NODES], nr, k;
	s128 s, e;

	if (!n->enabled)
		return;
	base += n->addr;
	ro |= n->ro;
	nv |= n->nv;
	s = base > cs ? base : cs;
	e = base + n->size < ce ? base + n->size : ce;
	if (s >= e)
		return;
	if (n->kind == MK_ALIAS) {
		base -= (s128)md->n[n->target].addr + n->alias_offset;
		model_render(md, n->target, base, s, e, ro, nv);
		return;
	}
	nr = model_children(md, i, kids);
	for (k = 0; k < nr; k++)
		model_render(md, kids[k], base, s, e, ro, nv);
	if (n->kind == MK_IO)
		model_fill(md, i, s, e, base, ro, nv);
}

static int model_flat_root(const struct model *md, int i)
{
	while (md->n[i].enabled) {
		const struct model_node *n = &md->n[i];
		int kids[MODEL_NODES], nr, k, found = 0, next = -1;

		if (n->kind == MK_ALIAS) {
			if (!n->alias_offset &&
			    n->size >= md->n[n->target].size) {
				i = n->target;
				continue;
			}
			return i;
		}
		if (n->kind != MK_CONTAINER)
			return i;
		nr = model_children(md, i, kids);
		for (k = 0; k < nr; k++) {
			const struct model_node *ch = &md->n[kids[k]];

			if (!ch->enabled)
				continue;
			if (++found > 1) {
				next = -1;
				break;
			}
			if (!ch->addr && n->size >= ch->size)
				next = kids[k];
		}
		if (!found)
			return -1;
		if (next < 0)
			return i;
		i = next;
	}
	return -1;
}

/* The expected view text of an address space over node 0. */
static char *model_view_text(struct model *md, int *root)
{
	char *text = NULL;
	size_t len = 0, i, out = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	md->nr_ranges = 0;
	*root = model_flat_root(md, 0);
	if (*root >= 0)
		model_render(md, *root, 0, 0, (s128)1 << 64, false, false);
	for (i = 0; i < md->nr_ranges; i++) {
		struct model_range *r = &md->ranges[i];

		if (out) { /* flatview_simplify's can_merge */
			struct model_range *p = &md->ranges[out - 1];

			if (p->end == r->start && p->mr == r->mr &&
			    p->off + (uint64_t)(p->end - p->start) == r->off &&
			    p->ro == r->ro && p->nv == r->nv) {
				p->end = r->end;
				continue;
			}
		}
		md->ranges[out++] = *r;
	}
	for (i = 0; i < out; i++) {
		const struct model_range *r = &md->ranges[i];

		fprintf(f, "%s%" PRIx64 "-%" PRIx64 " %s@%" PRIx64 "%s%s",
			i ? "\n" : "", (uint64_t)r->start,
			(uint64_t)(r->end - 1), mv_region_name(md->n[r->mr].r),
			r->off, r->ro ? " ro" : "", r->nv ? " nv" : "");
	}
	fclose(f);
	return text;
}

/* Whether @to is reachable from @from through children and alias targets. */
static bool model_reaches(const struct model *md, int from, int to)
{
	int i;

	if (from == to)
		return true;
	if (md->n[from].kind == MK_ALIAS &&
	    model_reaches(md, md->n[from].target, to))
		return true;
	for (i = 0; i < md->nr; i++)
		if (md->n[i].parent == from && model_reaches(md, i, to))
			return true;
	return false;
}

static uint64_t model_pick_size(struct model *md, uint64_t max)
{
	return (1 + model_rand(md, max / 0x100)) * 0x100;
}

static void model_new_node(struct model *md)
{
	struct model_node *n = &md->n[md->nr];
	char name[16];
	static const enum model_kind kinds[] = { MK_CONTAINER, MK_CONTAINER,
						 MK_IO,	       MK_IO,
						 MK_IO,	       MK_ALIAS,
						 MK_ALIAS };
	enum model_kind kind = md->nr ? kinds[model_rand(md, 7)] : MK_CONTAINER;
	uint64_t size;
	int ret;

	snprintf(name, sizeof(name), "n%d", md->nr);
	n->kind = kind;
	n->parent = -1;
	n->target = -1;
	n->enabled = true;
	if (kind == MK_CONTAINER) {
		size = md->nr ? model_pick_size(md, MODEL_SPACE) : MODEL_SPACE;
		ret = mv_region_new_container(md->m, name, size, &n->r);
	} else if (kind == MK_IO) {
		size = model_pick_size(md, 0x4000);
		ret = mv_region_new_reservation(md->m, name, size, &n->r);
	} else {
		n->target = (int)model_rand(md, md->nr);
		n->alias_offset = model_rand(md, 0x40) * 0x100;
		size = model_pick_size(md, 0x8000);
		ret = mv_region_new_alias(md->m, name, md->n[n->target].r,
					  n->alias_offset, size, &n->r);
	}
	assert_int_equal(ret, 0);
	n->size = size;
	md->nr++;
}

/* Add node @i under a random parent; the library must agree on refusals. */
static void model_add(struct model *md, int i)
{
	int p = model_rand(md, 2) ? 0 : (int)model_rand(md, md->nr);
	uint64_t addr = model_rand(md, MODEL_SPACE / 0x100) * 0x100;
	int prio = (int)model_rand(md, 5) - 2;
	int want = 0, ret;

	if (md->n[p].kind == MK_ALIAS)
		want = -EINVAL;
	else if (model_reaches(md, i, p))
		want = -ELOOP;
	ret = mv_region_add_subregion_overlap(md->n[p].r, addr, md->n[i].r,
					      prio);
	assert_int_equal(ret, want);
	if (ret)
		return;
	md->n[i].parent = p;
	md->n[i].addr = addr;
	md->n[i].prio = prio;
	md->n[i].seq = ++md->seq;
}

static void model_step(struct model *md)
{
	int i = 1 + (int)model_rand(md, md->nr - 1);
	struct model_node *n = &md->n[i];
	uint64_t v;

	switch (model_rand(md, 8)) {
	case 0:
		n->enabled = !n->enabled;
		assert_int_equal(mv_region_set_enabled(n->r, n->enabled), 0);
		break;
	case 1:
		v = model_rand(md, MODEL_SPACE / 0x100) * 0x100;
		assert_int_equal(mv_region_set_address(n->r, v), 0);
		if (n->parent >= 0 && v != n->addr)
			n->seq = ++md->seq; /* del + re-add */
		n->addr = v;
		break;
	case 2:
		if (n->kind == MK_ALIAS) {
			v = model_rand(md, 0x40) * 0x100;
			assert_int_equal(mv_region_set_alias_offset(n->r, v),
					 0);
			n->alias_offset = v;
		} else {
			v = model_pick_size(md, 0x8000);
			assert_int_equal(mv_region_set_size(n->r, v), 0);
			n->size = v;
		}
		break;
	case 3:
		n->ro = !n->ro;
		assert_int_equal(mv_region_set_readonly(n->r, n->ro), 0);
		break;
	case 4:
		n->nv = !n->nv;
		assert_int_equal(mv_region_set_nonvolatile(n->r, n->nv), 0);
		break;
	default:
		if (n->parent < 0) {
			model_add(md, i);
			break;
		}
		assert_int_equal(
			mv_region_del_subregion(md->n[n->parent].r, n->r), 0);
		n->parent = -1;
		break;
	}
}

static void model_compare(struct model *md, struct mv_as *as, uint64_t seed,
			  int step)
{
	struct mv_flatview *fv = mv_as_get_flatview(as);
	char *want, *got;
	int root;

	want = model_view_text(md, &root);
	got = mv_test_view_text(as);
	if (strcmp(want, got))
		fail_msg("seed %" PRIu64 " step %d:\n%s\nexpected:\n%s", seed,
			 step, got, want);
	assert_ptr_equal(mv_flatview_root(fv), root < 0 ? NULL : md->n[root].r);
	mv_flatview_unref(fv);
	free(want);
	free(got);
	mv_test_check_views(md->m);
}

/*
 * @full: render every view in full (QEMU's way) rather than only the
 * windows that changed; both must give QEMU's views.
 */
static void model_run(uint64_t seed, bool full, int nodes)
{
	struct model md = { .rng = seed * 0x9e3779b97f4a7c15ull + 1 };
	struct mv_as *as = NULL;
	int i, step;

	assert_int_equal(mv_machine_new(&md.m), 0);
	mv_machine_set_full_render(md.m, full);
	while (md.nr < nodes)
		model_new_node(&md);
	for (i = 1; i < md.nr; i++)
		if (model_rand(&md, 8))
			model_add(&md, i);
	assert_int_equal(mv_as_new(md.m, "as", md.n[0].r, &as), 0);
	model_compare(&md, as, seed, -1);
	for (step = 0; step < 60; step++) {
		bool txn = !model_rand(&md, 4);

		if (txn)
			mv_txn_begin(md.m);
		model_step(&md);
		if (txn) {
			int more = 1 + (int)model_rand(&md, 4);

			while (more--)
				model_step(&md);
			assert_int_equal(mv_txn_commit(md.m), 0);
		}
		model_compare(&md, as, seed, step);
	}
	for (i = 0; i < md.nr; i++)
		mv_region_unref(md.n[i].r);
	mv_machine_free(md.m);
	free(md.ranges);
}

/* Rendering, priority, clipping, aliases, background and merging together:
 * random trees must render exactly as QEMU's algorithm renders them. */
static void rule_3_3_random_trees_match_qemu_algorithm(void **state)
{
	uint64_t seed;

	(void)state;
	for (seed = 1; seed <= 300; seed++) {
		model_run(seed, false, 24);
		model_run(seed, true, 24);
	}
	/* Containers with many overlapping children (the candidate search). */
	for (seed = 1; seed <= 60; seed++)
		model_run(seed, false, MODEL_NODES);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(rule_3_1_region_kinds_and_types),
		T(rule_3_1_instance_defaults),
		T(rule_3_1_container_does_not_terminate),
		T(rule_3_1_non_containers_terminate),
		T(rule_3_1_rom_is_readonly_ram),
		T(rule_3_1_alias_cannot_have_subregions),
		T(rule_3_1_alias_chain_allowed),
		T(rule_3_1_alias_cycle_refused),
		T(rule_3_1_siblings_may_overlap),
		T(rule_3_1_add_subregion_is_overlap_priority_0),
		T(rule_3_1_size_max_means_2_64),
		T(rule_3_2_equal_priority_newest_wins),
		T(rule_3_2_higher_priority_wins_whatever_the_order),
		T(rule_3_2_priority_only_between_siblings),
		T(rule_3_2_alias_priority_is_its_own),
		T(rule_3_2_higher_priority_container_leaves_holes),
		T(rule_3_2_set_address_moves_to_front_of_class),
		T(rule_3_2_setters_each_run_own_transaction),
		T(rule_3_2_set_size_keeps_list_order),
		T(rule_3_2_update_pending_add_to_disabled_parent),
		T(rule_3_2_update_pending_add_disabled_child),
		T(rule_3_2_update_pending_del_needs_both_enabled),
		T(rule_3_2_update_pending_set_enabled_always),
		T(rule_3_3_disabled_not_rendered),
		T(rule_3_3_base_accumulates_addresses),
		T(rule_3_3_readonly_inherited),
		T(rule_3_3_nonvolatile_inherited),
		T(rule_3_3_clip_to_parent),
		T(rule_3_3_clip_at_2_64_no_wrap),
		T(rule_3_3_alias_base_shift),
		T(rule_3_3_negative_alias_offset),
		T(rule_3_3_terminating_fills_only_gaps),
		T(rule_3_3_background_of_non_container),
		T(rule_3_3_romd),
		T(rule_3_3_can_merge_across_aliases),
		T(rule_3_3_no_merge_when_offsets_not_contiguous),
		T(rule_3_3_no_merge_across_regions),
		T(rule_3_3_no_merge_when_readonly_differs),
		T(rule_3_3_no_merge_when_nonvolatile_differs),
		T(rule_3_3_root_rendered_from_its_own_addr),
		T(rule_3_3_random_trees_match_qemu_algorithm),
		T(rule_3_3_moved_root_rendered_at_next_render),
		T(rule_3_3_root_added_to_container_moves_view),
		T(rule_3_4_flatview_shared_by_same_root),
		T(rule_3_4_alias_root_shares_target_view),
		T(rule_3_4_alias_root_loses_alias_readonly),
		T(rule_3_4_sole_child_container_descends),
		T(rule_3_4_no_descent_unless_child_inside_at_0),
		T(rule_3_4_empty_container_gives_shared_empty_view),
		T(rule_3_4_disabled_root_gives_empty_view),
		T(rule_3_4_transaction_nested_renders_once),
		T(rule_3_4_nothing_rendered_when_nothing_changed),
		T(rule_3_4_one_render_per_distinct_root),
		T(rule_3_4_every_root_rerendered_on_any_change),
		T(invariant_no_global_state),
		T(invariant_published_view_immutable_and_holds_regions),
		T(invariant_held_view_checks_after_resize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
