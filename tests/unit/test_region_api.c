// SPDX-License-Identifier: MIT
/*
 * The contracts of the public region API (include/memvirt/memory.h): the
 * errno of every refused call and that a refused call changes nothing,
 * reference lifetimes across views and machine teardown, allocation-failure
 * injection over a whole scenario, and QEMU's -m size syntax.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/memory.h>

#include "helpers.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct mv_machine *machine(void)
{
	struct mv_machine *m = NULL;

	assert_int_equal(mv_machine_new(&m), 0);
	assert_non_null(m);
	return m;
}

static struct mv_region *container(struct mv_machine *m, const char *name,
				   uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(mv_region_new_container(m, name, size, &r), 0);
	return r;
}

static struct mv_region *ram(struct mv_machine *m, const char *name,
			     uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(mv_region_new_ram(m, name, size, NULL, &r), 0);
	return r;
}

static struct mv_region *io(struct mv_machine *m, const char *name,
			    uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(
		mv_region_new_io(m, name, size, &mv_zero_ops, NULL, &r), 0);
	return r;
}

static struct mv_region *alias(struct mv_machine *m, const char *name,
			       struct mv_region *target, uint64_t offset,
			       uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(mv_region_new_alias(m, name, target, offset, size, &r),
			 0);
	return r;
}

static struct mv_as *as_new(struct mv_machine *m, const char *name,
			    struct mv_region *root)
{
	struct mv_as *as = NULL;

	assert_int_equal(mv_as_new(m, name, root, &as), 0);
	assert_non_null(as);
	return as;
}

/* The whole tree text, so a test can say "nothing changed". */
static char *mtree_text(struct mv_machine *m, unsigned flags)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(mv_mtree_print(m, f, flags), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

/* ---- NULL and invalid arguments ----------------------------------------- */

static void test_constructors_reject_null_arguments(void **state)
{
	struct mv_machine *m = machine(), *other = machine();
	struct mv_region *r = NULL, *t = ram(m, "t", 0x1000);
	struct mv_region *foreign = container(other, "foreign", 0x1000);

	(void)state;
	assert_int_equal(mv_region_new_container(NULL, "c", 1, &r), -EINVAL);
	assert_int_equal(mv_region_new_container(m, NULL, 1, &r), -EINVAL);
	assert_int_equal(mv_region_new_container(m, "c", 1, NULL), -EINVAL);
	assert_int_equal(mv_region_new_io(NULL, "i", 1, NULL, NULL, &r),
			 -EINVAL);
	assert_int_equal(mv_region_new_io(m, NULL, 1, NULL, NULL, &r), -EINVAL);
	assert_int_equal(mv_region_new_reservation(m, NULL, 1, &r), -EINVAL);
	assert_int_equal(mv_region_new_ram(NULL, "r", 0x1000, NULL, &r),
			 -EINVAL);
	assert_int_equal(mv_region_new_ram(m, NULL, 0x1000, NULL, &r), -EINVAL);
	assert_int_equal(mv_region_new_rom(m, NULL, 0x1000, NULL, &r), -EINVAL);
	assert_int_equal(mv_region_new_rom_device(m, NULL, 0x1000, &mv_zero_ops,
						  NULL, NULL, &r),
			 -EINVAL);
	assert_int_equal(mv_region_new_alias(m, "a", NULL, 0, 1, &r), -EINVAL);
	assert_int_equal(mv_region_new_alias(NULL, "a", t, 0, 1, &r), -EINVAL);
	assert_int_equal(mv_region_new_alias(m, NULL, t, 0, 1, &r), -EINVAL);
	assert_int_equal(mv_region_new_alias(m, "a", t, 0, 1, NULL), -EINVAL);
	/* An alias may only name a region of its own machine. */
	assert_int_equal(mv_region_new_alias(m, "a", foreign, 0, 1, &r),
			 -EINVAL);
	assert_null(r);
	/* The refused calls created no RAM block. */
	assert_int_equal(mv_ramblock_count(m), 1);
	mv_region_unref(t);
	mv_region_unref(foreign);
	mv_machine_free(other);
	mv_machine_free(m);
}

/* The RAM constructors must check @out like the others do. */
static void test_ram_constructors_reject_null_out(void **state)
{
	struct mv_machine *m = machine();

	(void)state;
	assert_int_equal(mv_region_new_ram(m, "r", 0x1000, NULL, NULL),
			 -EINVAL);
	assert_int_equal(mv_region_new_rom(m, "r", 0x1000, NULL, NULL),
			 -EINVAL);
	assert_int_equal(mv_region_new_rom_device(m, "r", 0x1000, &mv_zero_ops,
						  NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(mv_ramblock_count(m), 0);
	mv_machine_free(m);
}

static void test_ram_options_are_checked(void **state)
{
	struct mv_machine *m = machine();
	struct mv_ram_opts ptr = { .backend = MV_RAM_PTR, .host = NULL };
	struct mv_ram_opts file = { .backend = MV_RAM_FILE, .path = NULL };
	struct mv_ram_opts bad = { .backend = (enum mv_ram_backend)42 };
	struct mv_region *r = NULL;

	(void)state;
	assert_int_equal(mv_region_new_ram(m, "r", 0x1000, &ptr, &r), -EINVAL);
	assert_int_equal(mv_region_new_ram(m, "r", 0x1000, &file, &r), -EINVAL);
	assert_int_equal(mv_region_new_ram(m, "r", 0x1000, &bad, &r), -EINVAL);
	assert_null(r);
	assert_int_equal(mv_ramblock_count(m), 0);
	mv_machine_free(m);
}

static void test_subregion_calls_reject_null_and_foreign(void **state)
{
	struct mv_machine *m = machine(), *other = machine();
	struct mv_region *p = container(m, "p", 0x10000);
	struct mv_region *c = io(m, "c", 0x100);
	struct mv_region *foreign = io(other, "foreign", 0x100);
	struct mv_as *as = as_new(m, "memory", p);

	(void)state;
	assert_int_equal(mv_region_add_subregion(NULL, 0, c), -EINVAL);
	assert_int_equal(mv_region_add_subregion(p, 0, NULL), -EINVAL);
	assert_int_equal(mv_region_add_subregion_overlap(NULL, 0, c, 1),
			 -EINVAL);
	assert_int_equal(mv_region_add_subregion_overlap(p, 0, NULL, 1),
			 -EINVAL);
	/* Regions of two machines never mix. */
	assert_int_equal(mv_region_add_subregion(p, 0, foreign), -EINVAL);
	assert_null(mv_region_container(foreign));
	assert_int_equal(mv_region_del_subregion(NULL, c), -EINVAL);
	assert_int_equal(mv_region_del_subregion(p, NULL), -EINVAL);
	assert_null(mv_region_container(c));
	mv_test_expect_view(as, "");
	mv_region_unref(c);
	mv_region_unref(foreign);
	mv_region_unref(p);
	mv_machine_free(other);
	mv_machine_free(m);
}

static void test_setters_reject_null(void **state)
{
	(void)state;
	assert_int_equal(mv_region_set_enabled(NULL, false), -EINVAL);
	assert_int_equal(mv_region_set_address(NULL, 0x1000), -EINVAL);
	assert_int_equal(mv_region_set_size(NULL, 0x1000), -EINVAL);
	assert_int_equal(mv_region_set_alias_offset(NULL, 0x1000), -EINVAL);
	assert_int_equal(mv_region_set_readonly(NULL, true), -EINVAL);
	assert_int_equal(mv_region_set_nonvolatile(NULL, true), -EINVAL);
	assert_int_equal(mv_region_rom_device_set_romd(NULL, false), -EINVAL);
	assert_int_equal(mv_region_set_owner(NULL, "dev"), -EINVAL);
	mv_machine_free(NULL); /* documented as allowed */
}

static void test_as_new_rejects_bad_arguments(void **state)
{
	struct mv_machine *m = machine(), *other = machine();
	struct mv_region *root = container(m, "system", UINT64_MAX);
	struct mv_region *foreign = container(other, "foreign", 0x1000);
	struct mv_as *as = NULL;

	(void)state;
	assert_int_equal(mv_as_new(NULL, "memory", root, &as), -EINVAL);
	assert_int_equal(mv_as_new(m, NULL, root, &as), -EINVAL);
	assert_int_equal(mv_as_new(m, "memory", NULL, &as), -EINVAL);
	assert_int_equal(mv_as_new(m, "memory", foreign, &as), -EINVAL);
	assert_null(as);
	assert_null(mv_machine_find_as(m, "memory"));
	as_new(m, "memory", root);
	assert_int_equal(mv_as_new(m, "memory", root, &as), -EEXIST);
	assert_null(as);
	mv_region_unref(foreign);
	mv_region_unref(root);
	mv_machine_free(other);
	mv_machine_free(m);
}

static void test_register_region_rejects_bad_arguments(void **state)
{
	struct mv_machine *m = machine(), *other = machine();
	struct mv_region *r = io(m, "r", 0x10);
	struct mv_region *foreign = io(other, "foreign", 0x10);

	(void)state;
	assert_int_equal(mv_machine_register_region(m, "r", r), 0);
	assert_int_equal(mv_machine_register_region(m, "r", r), -EEXIST);
	/* With a registry that is no longer empty. */
	assert_int_equal(mv_machine_register_region(m, NULL, r), -EINVAL);
	assert_int_equal(mv_machine_register_region(m, "x", NULL), -EINVAL);
	assert_int_equal(mv_machine_register_region(m, "x", foreign), -EINVAL);
	assert_ptr_equal(mv_machine_find_region(m, "r"), r);
	assert_null(mv_machine_find_region(m, "x"));
	mv_region_unref(r);
	mv_region_unref(foreign);
	mv_machine_free(other);
	mv_machine_free(m);
}

/* ---- the subregion graph ------------------------------------------------ */

static void test_child_with_a_parent_is_ebusy(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *p1 = container(m, "p1", 0x10000);
	struct mv_region *p2 = container(m, "p2", 0x10000);
	struct mv_region *c = io(m, "c", 0x100);
	struct mv_as *as1 = as_new(m, "as", p1), *as2 = as_new(m, "as2", p2);

	(void)state;
	assert_int_equal(mv_region_add_subregion(p1, 0x1000, c), 0);
	assert_int_equal(mv_region_add_subregion(p2, 0, c), -EBUSY);
	assert_int_equal(mv_region_add_subregion_overlap(p2, 0, c, 3), -EBUSY);
	/* Not even into the same parent again. */
	assert_int_equal(mv_region_add_subregion(p1, 0x2000, c), -EBUSY);
	assert_ptr_equal(mv_region_container(c), p1);
	assert_int_equal(mv_region_addr(c), 0x1000);
	assert_int_equal(mv_region_priority(c), 0);
	mv_test_expect_view(as1, "1000-10ff c@0");
	mv_test_expect_view(as2, "");
	mv_test_check_views(m);
	mv_region_unref(c);
	mv_region_unref(p1);
	mv_region_unref(p2);
	mv_machine_free(m);
}

static void test_adding_to_an_alias_is_einval(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *sys = container(m, "system", UINT64_MAX);
	struct mv_region *t = container(m, "t", 0x10000);
	struct mv_region *a = alias(m, "a", t, 0, 0x10000);
	struct mv_region *c = io(m, "c", 0x100);
	struct mv_as *as = as_new(m, "memory", sys);

	(void)state;
	assert_int_equal(mv_region_add_subregion(sys, 0, a), 0);
	assert_int_equal(mv_region_add_subregion(a, 0, c), -EINVAL);
	assert_int_equal(mv_region_add_subregion_overlap(a, 0, c, 1), -EINVAL);
	assert_null(mv_region_container(c));
	mv_test_expect_view(as, "");
	/* The child is still free to go elsewhere. */
	assert_int_equal(mv_region_add_subregion(t, 0x10, c), 0);
	mv_test_expect_view(as, "10-10f c@0");
	mv_test_check_views(m);
	mv_region_unref(c);
	mv_region_unref(a);
	mv_region_unref(t);
	mv_region_unref(sys);
	mv_machine_free(m);
}

/*
 * After a refused -ELOOP nothing may have moved: the published view, the
 * tree text and the parents are those of before, and the machine still
 * renders (a cycle would recurse forever).
 */
static void expect_unchanged(struct mv_machine *m, struct mv_as *as,
			     const char *view, const char *tree)
{
	char *now = mtree_text(m, 0);

	mv_test_expect_view(as, view);
	assert_string_equal(now, tree);
	free(now);
	mv_test_check_views(m);
}

static void test_cycle_through_children_is_eloop(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *a = container(m, "a", 0x100000);
	struct mv_region *b = container(m, "b", 0x10000);
	struct mv_region *c = container(m, "c", 0x1000);
	struct mv_region *d = container(m, "d", 0x1000);
	struct mv_region *leaf = io(m, "leaf", 0x10);
	struct mv_as *as = as_new(m, "memory", a);
	const char *view = "20010-2001f leaf@0";
	char *tree;

	(void)state;
	assert_int_equal(mv_region_add_subregion(a, 0x20000, b), 0);
	assert_int_equal(mv_region_add_subregion(b, 0, c), 0);
	assert_int_equal(mv_region_add_subregion(c, 0x10, leaf), 0);
	tree = mtree_text(m, 0);
	mv_test_expect_view(as, view);

	/* Into itself, its child, its grandchild. */
	assert_int_equal(mv_region_add_subregion(a, 0, a), -ELOOP);
	assert_int_equal(mv_region_add_subregion(b, 0, a), -ELOOP);
	assert_int_equal(mv_region_add_subregion_overlap(c, 0, a, 1), -ELOOP);
	/* A detached subtree into its own descendant. */
	assert_int_equal(mv_region_add_subregion(d, 0, d), -ELOOP);
	assert_null(mv_region_container(a));
	assert_null(mv_region_container(d));
	expect_unchanged(m, as, view, tree);

	/* The graph is still usable: a legal change renders. */
	assert_int_equal(mv_region_add_subregion(a, 0x30000, d), 0);
	assert_int_equal(mv_region_set_address(leaf, 0x20), 0);
	mv_test_expect_view(as, "20020-2002f leaf@0");
	free(tree);
	mv_region_unref(leaf);
	mv_region_unref(d);
	mv_region_unref(c);
	mv_region_unref(b);
	mv_region_unref(a);
	mv_machine_free(m);
}

static void test_cycle_through_alias_targets_is_eloop(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *sys = container(m, "system", UINT64_MAX);
	struct mv_region *t = container(m, "t", 0x10000);
	struct mv_region *d = container(m, "d", 0x1000);
	struct mv_region *e = container(m, "e", 0x100);
	struct mv_region *r = ram(m, "r", 0x1000);
	struct mv_region *x = alias(m, "x", t, 0, 0x10000);
	struct mv_region *p = container(m, "p", 0x10000);
	struct mv_region *y = alias(m, "y", p, 0, 0x10000);
	struct mv_region *z = alias(m, "z", d, 0, 0x1000);
	struct mv_region *xx = alias(m, "xx", x, 0, 0x10000);
	struct mv_as *as = as_new(m, "memory", sys);
	const char *view = "0-fff r@0\n100000-100fff r@0";
	char *tree;

	(void)state;
	assert_int_equal(mv_region_add_subregion(t, 0x2000, d), 0);
	assert_int_equal(mv_region_add_subregion(d, 0x100, e), 0);
	assert_int_equal(mv_region_add_subregion(t, 0, r), 0);
	assert_int_equal(mv_region_add_subregion(sys, 0, x), 0);
	assert_int_equal(mv_region_add_subregion(sys, 0x100000, xx), 0);
	tree = mtree_text(m, 0);
	mv_test_expect_view(as, view);

	/* An alias into the region it aliases, and into its descendants. */
	assert_int_equal(mv_region_add_subregion(t, 0x8000, z), 0);
	assert_int_equal(mv_region_del_subregion(t, z), 0);
	assert_int_equal(mv_region_add_subregion(d, 0, z), -ELOOP);
	assert_int_equal(mv_region_add_subregion(e, 0, z), -ELOOP);
	/* An alias into the container it aliases. */
	assert_int_equal(mv_region_add_subregion(p, 0, y), -ELOOP);
	/* Longer chains: p > w -> xx -> x -> t > d > e. */
	{
		struct mv_region *w = alias(m, "w", xx, 0, 0x10000);

		assert_int_equal(mv_region_add_subregion(p, 0, w), 0);
		assert_int_equal(mv_region_add_subregion(e, 0, p), -ELOOP);
		assert_int_equal(mv_region_add_subregion(d, 0, p), -ELOOP);
		assert_null(mv_region_container(p));
		/* y -> p -> w -> xx -> x -> t > d > e */
		assert_int_equal(mv_region_add_subregion(e, 0, y), -ELOOP);
		assert_null(mv_region_container(y));
		mv_region_unref(w);
	}
	assert_null(mv_region_container(z));
	expect_unchanged(m, as, view, tree);

	/* Legal: an alias of a child placed next to it. */
	assert_int_equal(mv_region_add_subregion(t, 0x4000, z), 0);
	mv_test_expect_view(as, "0-fff r@0\n100000-100fff r@0");
	assert_int_equal(mv_region_set_address(r, 0x4000), 0);
	assert_int_equal(mv_region_del_subregion(t, z), 0);
	mv_test_expect_view(as, "4000-4fff r@0\n104000-104fff r@0");
	mv_test_check_views(m);
	free(tree);
	mv_region_unref(xx);
	mv_region_unref(z);
	mv_region_unref(y);
	mv_region_unref(p);
	mv_region_unref(x);
	mv_region_unref(r);
	mv_region_unref(e);
	mv_region_unref(d);
	mv_region_unref(t);
	mv_region_unref(sys);
	mv_machine_free(m);
}

static void test_del_of_a_non_child_is_enoent(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *a = container(m, "a", 0x10000);
	struct mv_region *b = container(m, "b", 0x1000);
	struct mv_region *other = container(m, "other", 0x1000);
	struct mv_region *c = io(m, "c", 0x10);
	struct mv_region *loose = io(m, "loose", 0x10);
	struct mv_as *as = as_new(m, "memory", a);

	(void)state;
	assert_int_equal(mv_region_add_subregion(a, 0, b), 0);
	assert_int_equal(mv_region_add_subregion(b, 0x10, c), 0);
	assert_int_equal(mv_region_del_subregion(a, c),
			 -ENOENT); /* grandchild */
	assert_int_equal(mv_region_del_subregion(other, c), -ENOENT);
	assert_int_equal(mv_region_del_subregion(a, loose), -ENOENT);
	assert_int_equal(mv_region_del_subregion(c, b), -ENOENT); /* reversed */
	assert_int_equal(mv_region_del_subregion(a, a), -ENOENT);
	assert_ptr_equal(mv_region_container(c), b);
	mv_test_expect_view(as, "10-1f c@0");
	assert_int_equal(mv_region_del_subregion(b, c), 0);
	assert_int_equal(mv_region_del_subregion(b, c), -ENOENT); /* twice */
	mv_test_expect_view(as, "");
	mv_test_check_views(m);
	mv_region_unref(loose);
	mv_region_unref(c);
	mv_region_unref(other);
	mv_region_unref(b);
	mv_region_unref(a);
	mv_machine_free(m);
}

static void test_alias_offset_only_on_aliases(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *sys = container(m, "system", UINT64_MAX);
	struct mv_region *r = ram(m, "r", 0x4000);
	struct mv_region *a = alias(m, "a", r, 0, 0x1000);
	struct mv_region *c = container(m, "c", 0x1000);
	struct mv_region *i = io(m, "i", 0x1000);
	struct mv_as *as = as_new(m, "memory", sys);

	(void)state;
	assert_int_equal(mv_region_add_subregion(sys, 0x10000, a), 0);
	assert_int_equal(mv_region_set_alias_offset(r, 0x1000), -EINVAL);
	assert_int_equal(mv_region_set_alias_offset(c, 0x1000), -EINVAL);
	assert_int_equal(mv_region_set_alias_offset(i, 0x1000), -EINVAL);
	assert_int_equal(mv_region_set_alias_offset(sys, 0x1000), -EINVAL);
	mv_test_expect_view(as, "10000-10fff r@0");
	assert_int_equal(mv_region_set_alias_offset(a, 0x2000), 0);
	assert_int_equal(mv_region_alias_offset(a), 0x2000);
	mv_test_expect_view(as, "10000-10fff r@2000");
	mv_test_check_views(m);
	mv_region_unref(i);
	mv_region_unref(c);
	mv_region_unref(a);
	mv_region_unref(r);
	mv_region_unref(sys);
	mv_machine_free(m);
}

static void test_romd_only_on_rom_devices(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *sys = container(m, "system", UINT64_MAX);
	struct mv_region *r = ram(m, "r", 0x1000), *rom = NULL, *dev = NULL;
	struct mv_region *i = io(m, "i", 0x1000);
	struct mv_region *a;
	struct mv_as *as = as_new(m, "memory", sys);
	struct mv_flatview *fv;
	size_t nr;

	(void)state;
	assert_int_equal(mv_region_new_rom(m, "rom", 0x1000, NULL, &rom), 0);
	assert_int_equal(mv_region_new_rom_device(m, "dev", 0x1000,
						  &mv_zero_ops, NULL, NULL,
						  &dev),
			 0);
	a = alias(m, "a", dev, 0, 0x1000);
	assert_int_equal(mv_region_add_subregion(sys, 0, dev), 0);
	assert_int_equal(mv_region_rom_device_set_romd(r, false), -EINVAL);
	assert_int_equal(mv_region_rom_device_set_romd(rom, false), -EINVAL);
	assert_int_equal(mv_region_rom_device_set_romd(i, false), -EINVAL);
	assert_int_equal(mv_region_rom_device_set_romd(sys, false), -EINVAL);
	assert_int_equal(mv_region_rom_device_set_romd(a, false), -EINVAL);
	assert_string_equal(mv_region_type(dev), "romd");
	fv = mv_as_get_flatview(as);
	assert_true(mv_flatview_ranges(fv, &nr)[0].romd_mode);
	assert_int_equal(nr, 1);
	mv_flatview_unref(fv);

	assert_int_equal(mv_region_rom_device_set_romd(dev, false), 0);
	assert_string_equal(mv_region_type(dev), "i/o");
	fv = mv_as_get_flatview(as);
	assert_false(mv_flatview_ranges(fv, &nr)[0].romd_mode);
	assert_int_equal(nr, 1);
	mv_flatview_unref(fv);
	mv_test_check_views(m);
	mv_region_unref(a);
	mv_region_unref(dev);
	mv_region_unref(rom);
	mv_region_unref(i);
	mv_region_unref(r);
	mv_region_unref(sys);
	mv_machine_free(m);
}

static void test_commit_without_begin_is_einval(void **state)
{
	struct mv_machine *m = machine();
	struct mv_machine_stats st;

	(void)state;
	assert_int_equal(mv_txn_commit(m), -EINVAL);
	mv_txn_begin(m);
	mv_txn_begin(m);
	assert_int_equal(mv_txn_commit(m), 0);
	assert_int_equal(mv_txn_commit(m), 0);
	assert_int_equal(mv_txn_commit(m), -EINVAL);
	/* The unmatched commits did not underflow the depth: a begin/commit
	 * pair still reaches the outermost level. */
	mv_txn_begin(m);
	assert_int_equal(mv_txn_commit(m), 0);
	assert_int_equal(mv_txn_commit(m), -EINVAL);
	mv_machine_get_stats(m, &st);
	assert_int_equal(st.commits, 0);
	mv_machine_free(m);
}

static void test_ram_size_zero_or_above_max_is_einval(void **state)
{
	struct mv_machine *m = machine();
	struct mv_ram_opts small_max = { .max_size = 0x1000 };
	struct mv_region *r = NULL;

	(void)state;
	assert_int_equal(mv_region_new_ram(m, "r", 0, NULL, &r), -EINVAL);
	assert_int_equal(mv_region_new_rom(m, "r", 0, NULL, &r), -EINVAL);
	assert_int_equal(mv_region_new_rom_device(m, "r", 0, &mv_zero_ops, NULL,
						  NULL, &r),
			 -EINVAL);
	assert_int_equal(mv_region_new_ram(m, "r", 0x2000, &small_max, &r),
			 -EINVAL);
	assert_int_equal(mv_region_new_ram(m, "r", UINT64_MAX, NULL, &r),
			 -EINVAL);
	assert_null(r);
	assert_int_equal(mv_ramblock_count(m), 0);
	/* max_size == size is fine. */
	small_max.max_size = 0x2000;
	assert_int_equal(mv_region_new_ram(m, "r", 0x2000, &small_max, &r), 0);
	assert_int_equal(mv_ramblock_count(m), 1);
	mv_region_unref(r);
	assert_int_equal(mv_ramblock_count(m), 0);
	mv_machine_free(m);
}

static void test_ram_set_size_beyond_block_is_einval(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *sys = container(m, "system", UINT64_MAX);
	struct mv_ram_opts opts = { .max_size = 0x10000 };
	struct mv_region *fixed = ram(m, "fixed", 0x2000), *grow = NULL;
	struct mv_as *as = as_new(m, "memory", sys);
	struct mv_ramblock_info info;

	(void)state;
	assert_int_equal(mv_region_new_ram(m, "grow", 0x2000, &opts, &grow), 0);
	assert_int_equal(mv_region_add_subregion(sys, 0, fixed), 0);
	assert_int_equal(mv_region_add_subregion(sys, 0x100000, grow), 0);
	assert_int_equal(mv_region_set_size(fixed, 0x3000), -EINVAL);
	assert_int_equal(mv_region_set_size(grow, 0x11000), -EINVAL);
	assert_int_equal(mv_region_set_size(grow, UINT64_MAX), -EINVAL);
	assert_int_equal(mv_region_size(fixed), 0x2000);
	assert_int_equal(mv_region_size(grow), 0x2000);
	mv_test_expect_view(as, "0-1fff fixed@0\n100000-101fff grow@0");

	/* Within the block it grows, and the block's used length follows. */
	assert_int_equal(mv_region_set_size(grow, 0x10000), 0);
	mv_test_expect_view(as, "0-1fff fixed@0\n100000-10ffff grow@0");
	assert_int_equal(mv_region_set_size(fixed, 0x1000), 0);
	mv_test_expect_view(as, "0-fff fixed@0\n100000-10ffff grow@0");
	assert_int_equal(mv_ramblock_get(m, 0, &info), 0);
	assert_string_equal(info.idstr, "grow");
	assert_int_equal(info.used_length, 0x10000);
	assert_int_equal(info.max_length, 0x10000);
	mv_test_check_views(m);
	mv_region_unref(grow);
	mv_region_unref(fixed);
	mv_region_unref(sys);
	mv_machine_free(m);
}

/* ---- references ---------------------------------------------------------- */

/*
 * A view keeps the regions it names alive: removed and unreferenced by
 * everyone else, the region (and its RAM) lives until the view goes.
 * Under ASan a premature free is a use-after-free here.
 */
static void test_view_keeps_a_removed_region_alive(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *sys = container(m, "system", UINT64_MAX);
	struct mv_region *keep = ram(m, "keep", 0x1000);
	struct mv_region *gone = ram(m, "gone", 0x2000);
	struct mv_as *as = as_new(m, "memory", sys);
	const struct mv_flat_range *fr;
	struct mv_flatview *fv;
	uint8_t *host;
	size_t nr;

	(void)state;
	assert_int_equal(mv_region_add_subregion(sys, 0, keep), 0);
	assert_int_equal(mv_region_add_subregion(sys, 0x10000, gone), 0);
	fv = mv_as_get_flatview(as);
	assert_int_equal(mv_region_del_subregion(sys, gone), 0);
	mv_region_unref(gone);
	mv_test_expect_view(as, "0-fff keep@0");

	/* The old view still names it, in full. */
	fr = mv_flatview_ranges(fv, &nr);
	assert_int_equal(nr, 2);
	fr = mv_flatview_lookup(fv, 0x10800);
	assert_non_null(fr);
	assert_int_equal(fr->first, 0x10000);
	assert_int_equal(fr->last, 0x11fff);
	assert_string_equal(mv_region_name(fr->mr), "gone");
	assert_int_equal(mv_region_size(fr->mr), 0x2000);
	assert_null(mv_region_container(fr->mr));
	host = mv_region_ram_ptr(fr->mr);
	assert_non_null(host);
	host[0x1fff] = 0xa5;
	assert_int_equal(host[0x1fff], 0xa5);
	assert_int_equal(mv_ramblock_count(m), 2);

	/* Releasing the view releases the region and its RAM block. */
	mv_flatview_unref(fv);
	assert_int_equal(mv_ramblock_count(m), 1);
	mv_test_check_views(m);
	mv_region_unref(keep);
	mv_region_unref(sys);
	mv_machine_free(m);
}

static void test_region_outlives_machine_free(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *sys = container(m, "system", UINT64_MAX);
	struct mv_region *box = container(m, "box", 0x10000);
	struct mv_region *r = ram(m, "r", 0x4000);
	struct mv_region *a = alias(m, "a", r, 0x1000, 0x1000);
	struct mv_region *child = ram(m, "child", 0x1000);
	struct mv_flatview *fv;
	uint8_t *host;

	(void)state;
	assert_int_equal(mv_region_add_subregion(sys, 0, r), 0);
	assert_int_equal(mv_region_add_subregion(sys, 0x100000, a), 0);
	assert_int_equal(mv_region_add_subregion(box, 0, child), 0);
	assert_int_equal(mv_region_add_subregion(sys, 0x200000, box), 0);
	mv_region_unref(child); /* box holds it now */
	assert_int_equal(mv_machine_register_region(m, "r", r), 0);
	as_new(m, "memory", sys);
	fv = mv_as_get_flatview(as_new(m, "as", sys));
	mv_machine_free(m);

	/* A view the caller owns is still readable, and names r. */
	assert_ptr_equal(mv_flatview_lookup(fv, 0x3000)->mr, r);
	assert_string_equal(
		mv_region_name(mv_flatview_lookup(fv, 0x200000)->mr), "child");
	mv_flatview_unref(fv);

	/* Still valid, readable and writable. */
	assert_string_equal(mv_region_name(r), "r");
	assert_int_equal(mv_region_size(r), 0x4000);
	assert_ptr_equal(mv_region_alias_target(a), r);
	host = mv_region_ram_ptr(r);
	assert_non_null(host);
	host[0x3fff] = 1;
	assert_int_equal(host[0x3fff], 1);
	assert_int_equal(mv_region_set_owner(r, "dev"), 0);
	assert_string_equal(mv_region_owner(r), "dev");
	/* Release in an order where an alias outlives its target's holder. */
	mv_region_unref(r);
	assert_string_equal(mv_region_name(mv_region_alias_target(a)), "r");
	mv_region_unref(a);
	mv_region_unref(sys);
	assert_int_equal(mv_region_size(box), 0x10000);
	mv_region_unref(box);
}

/* ---- allocation-failure injection ---------------------------------------- */

struct scen {
	struct mv_machine *m;
	struct mv_region *sys, *ram, *rom, *io, *lo, *hi, *pci;
	struct mv_as *as;
	const char *shown;  /* what the published view must read */
	unsigned recovered; /* failed commits published by a later commit */
};

#define V_LO "0-9ffff ram@0"
#define V_ROM "e0000-effff rom@0 ro"
#define V_HI "100000-1fffff ram@100000"
#define V_HI2 "100000-1fffff ram@80000"
#define V_IO "fee00000-fee00fff io@0"
#define V_IO2 "fed00000-fed00fff io@0"

/* A step that does not touch the view: 0 or -ENOMEM, nothing else. */
static bool step(int ret)
{
	if (ret != 0 && ret != -ENOMEM)
		fail_msg("step returned %d", ret);
	return ret == 0;
}

static void expect_same_view(struct scen *s, struct mv_flatview *before)
{
	struct mv_flatview *now = mv_as_get_flatview(s->as);

	assert_ptr_equal(now, before);
	mv_flatview_unref(now);
	mv_test_expect_view(s->as, s->shown);
	mv_test_check_views(s->m);
}

typedef int (*change_fn)(struct scen *s);

/*
 * Run a change that commits on its own.  On -ENOMEM the old view must still
 * be published; then, with injection off, a commit publishes the change if
 * it was made, and if it was refused before touching anything, it applies
 * cleanly now.  Returns whether the scenario goes on.
 */
static bool change(struct scen *s, change_fn fn, const char *expect)
{
	struct mv_flatview *before = mv_as_get_flatview(s->as);
	int ret = fn(s);
	char *text;

	assert_true(ret == 0 || ret == -ENOMEM);
	if (!ret) {
		mv_flatview_unref(before);
		mv_test_expect_view(s->as, expect);
		mv_test_check_views(s->m);
		s->shown = expect;
		return true;
	}
	expect_same_view(s, before);
	mv_flatview_unref(before);
	mv_machine_fail_alloc_after(s->m, -1);
	mv_txn_begin(s->m);
	assert_int_equal(mv_txn_commit(s->m), 0);
	text = mv_test_view_text(s->as);
	if (!strcmp(text, expect)) {
		s->recovered++;
	} else {
		assert_string_equal(text, s->shown);
		assert_int_equal(fn(s), 0);
		mv_test_expect_view(s->as, expect);
	}
	free(text);
	mv_test_check_views(s->m);
	return false;
}

static int add_lo(struct scen *s)
{
	return mv_region_add_subregion(s->sys, 0, s->lo);
}

static int move_hi_window(struct scen *s)
{
	return mv_region_set_alias_offset(s->hi, 0x80000);
}

static int disable_rom(struct scen *s)
{
	return mv_region_set_enabled(s->rom, false);
}

static int move_io(struct scen *s)
{
	return mv_region_set_address(s->io, 0xfed00000);
}

static int lo_readonly(struct scen *s)
{
	return mv_region_set_readonly(s->lo, true);
}

static int remove_io(struct scen *s)
{
	return mv_region_del_subregion(s->pci, s->io);
}

/* The operations of the explicit transaction, in order. */
static int build_bus_ops(struct scen *s)
{
	int ret = mv_region_add_subregion(s->sys, 0x100000, s->hi);

	if (!ret)
		ret = mv_region_add_subregion_overlap(s->sys, 0, s->pci, -1);
	if (!ret)
		ret = mv_region_add_subregion(s->pci, 0xfee00000, s->io);
	if (!ret)
		ret = mv_region_add_subregion_overlap(s->sys, 0xe0000, s->rom,
						      1);
	return ret;
}

/*
 * Several changes in one explicit transaction.  An operation failing inside
 * it publishes nothing; the outer commit failing leaves the old view, and a
 * commit with injection off must then publish all of it.
 */
static bool build_bus(struct scen *s, const char *expect)
{
	struct mv_flatview *before = mv_as_get_flatview(s->as);
	int ret;

	mv_txn_begin(s->m);
	ret = build_bus_ops(s);
	if (ret) {
		assert_int_equal(ret, -ENOMEM);
		expect_same_view(s, before);
		(void)step(mv_txn_commit(s->m)); /* closes it; may fail */
		mv_flatview_unref(before);
		return false;
	}
	ret = mv_txn_commit(s->m);
	if (!ret) {
		mv_flatview_unref(before);
		mv_test_expect_view(s->as, expect);
		s->shown = expect;
		return true;
	}
	assert_int_equal(ret, -ENOMEM);
	expect_same_view(s, before);
	mv_flatview_unref(before);
	mv_machine_fail_alloc_after(s->m, -1);
	mv_txn_begin(s->m);
	assert_int_equal(mv_txn_commit(s->m), 0);
	mv_test_expect_view(s->as, expect);
	mv_test_check_views(s->m);
	s->recovered++;
	return false;
}

static bool make_regions(struct scen *s)
{
	struct mv_machine *m = s->m;

	return step(mv_region_new_container(m, "system", UINT64_MAX,
					    &s->sys)) &&
	       step(mv_region_new_ram(m, "ram", 0x200000, NULL, &s->ram)) &&
	       step(mv_region_new_rom(m, "rom", 0x10000, NULL, &s->rom)) &&
	       step(mv_region_new_io(m, "io", 0x1000, &mv_zero_ops, NULL,
				     &s->io)) &&
	       step(mv_region_new_alias(m, "lo", s->ram, 0, 0xa0000, &s->lo)) &&
	       step(mv_region_new_alias(m, "hi", s->ram, 0x100000, 0x100000,
					&s->hi)) &&
	       step(mv_region_new_container(m, "pci", UINT64_MAX, &s->pci));
}

/* Printing may fail for memory but must not disturb anything. */
static bool print_all(struct scen *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	bool ok;

	assert_non_null(f);
	ok = step(mv_mtree_print(s->m, f, 0)) &&
	     step(mv_mtree_print(s->m, f, MV_MTREE_FLAT | MV_MTREE_DISABLED)) &&
	     step(mv_ramblock_print(s->m, f)) &&
	     step(mv_explain(s->as, 0x1000, false, f));
	fclose(f);
	free(text);
	mv_test_expect_view(s->as, s->shown);
	return ok;
}

/* Returns true when every step succeeded. */
static bool scenario(struct scen *s)
{
	if (!make_regions(s) ||
	    !step(mv_machine_register_region(s->m, "ram", s->ram)) ||
	    !step(mv_as_new(s->m, "memory", s->sys, &s->as)))
		return false;
	s->shown = "";
	mv_test_expect_view(s->as, "");
	return change(s, add_lo, V_LO) &&
	       build_bus(s, V_LO "\n" V_ROM "\n" V_HI "\n" V_IO) &&
	       change(s, move_hi_window,
		      V_LO "\n" V_ROM "\n" V_HI2 "\n" V_IO) &&
	       change(s, disable_rom, V_LO "\n" V_HI2 "\n" V_IO) &&
	       change(s, move_io, V_LO "\n" V_HI2 "\n" V_IO2) &&
	       change(s, lo_readonly, V_LO " ro\n" V_HI2 "\n" V_IO2) &&
	       step(mv_region_set_owner(s->ram, "dimm0")) && print_all(s) &&
	       change(s, remove_io, V_LO " ro\n" V_HI2);
}

static void scen_free(struct scen *s)
{
	struct mv_region *all[] = { s->sys, s->ram, s->rom, s->io,
				    s->lo,  s->hi,  s->pci };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		mv_region_unref(all[i]);
	mv_machine_free(s->m);
}

static void test_alloc_failure_injection(void **state)
{
	unsigned recovered = 0;
	long n;

	(void)state;
	for (n = 0;; n++) {
		struct scen s = { 0 };
		bool done;

		if (n > 100000)
			fail_msg("scenario never succeeds under injection");
		assert_int_equal(mv_machine_new(&s.m), 0);
		mv_machine_fail_alloc_after(s.m, n);
		done = scenario(&s);
		recovered += s.recovered;
		scen_free(&s);
		if (done)
			break;
	}
	/* Every allocation up to the last one was made to fail once. */
	assert_true(n > 20);
	/* Each of the 7 view changes failed in its commit at least once. */
	assert_true(recovered >= 7);
}

/* ---- mv_parse_size -------------------------------------------------------- */

static void expect_size(const char *s, uint64_t unit, uint64_t want)
{
	uint64_t v = 0xdeadbeef;
	int ret = mv_parse_size(s, unit, &v);

	if (ret || v != want)
		fail_msg("\"%s\": ret %d value %#llx, want %#llx", s, ret,
			 (unsigned long long)v, (unsigned long long)want);
}

static void expect_size_error(const char *s, uint64_t unit, int err)
{
	uint64_t v = 0x1234;
	int ret = mv_parse_size(s, unit, &v);

	if (ret != err)
		fail_msg("\"%s\": ret %d, want %d", s ? s : "(null)", ret, err);
}

static void test_parse_size_qemu_m_forms(void **state)
{
	(void)state;
	expect_size("512", MiB, 512 * MiB);
	expect_size("512M", MiB, 512 * MiB);
	expect_size("512m", MiB, 512 * MiB);
	expect_size("4G", MiB, 4 * GiB);
	expect_size("4g", MiB, 4 * GiB);
	expect_size("1001k", MiB, 1001 * KiB);
	expect_size("1001K", MiB, 1001 * KiB);
	expect_size("2T", MiB, 2ull << 40);
	expect_size("3P", MiB, 3ull << 50);
	expect_size("15E", MiB, 15ull << 60);
	expect_size("0x1000", 1, 0x1000);
	expect_size("0x1000", MiB, 0x1000 * MiB); /* a bare number: MiB */
	expect_size("0", MiB, 0);
	expect_size("4096", 1, 4096);
	expect_size("18446744073709551615", 1, UINT64_MAX);
	expect_size("17592186044415", MiB, 17592186044415ull * MiB);
}

/* QEMU -m 010 is 10 MiB (decimal), -m 1.5G is 1.5 GiB (QEMU 7.2). */
static void test_parse_size_decimal_like_qemu(void **state)
{
	(void)state;
	expect_size("010", MiB, 10 * MiB);
	expect_size("0100M", MiB, 100 * MiB);
}

static void test_parse_size_fraction_like_qemu(void **state)
{
	(void)state;
	expect_size("1.5G", MiB, 0x60000000);
	expect_size("0.5M", MiB, 512 * KiB);
}

static void test_parse_size_errors(void **state)
{
	(void)state;
	expect_size_error("16E", MiB, -ERANGE);
	expect_size_error("17E", MiB, -ERANGE);
	expect_size_error("18446744073709551616", 1, -ERANGE);
	expect_size_error("17592186044416", MiB, -ERANGE); /* 2^64 bytes */
	expect_size_error("99999999999999999999999", MiB, -ERANGE);
	expect_size_error("garbage", MiB, -EINVAL);
	expect_size_error("G", MiB, -EINVAL);
	expect_size_error("-1", MiB, -EINVAL);
	expect_size_error("-512M", MiB, -EINVAL);
	expect_size_error("", MiB, -EINVAL);
	expect_size_error(NULL, MiB, -EINVAL);
	expect_size_error("4Gx", MiB, -EINVAL);
	expect_size_error("4GG", MiB, -EINVAL);
	expect_size_error("4Q", MiB, -EINVAL);
	expect_size_error("4 G", MiB, -EINVAL);
	expect_size_error("0x", MiB, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constructors_reject_null_arguments),
		cmocka_unit_test(test_ram_constructors_reject_null_out),
		cmocka_unit_test(test_ram_options_are_checked),
		cmocka_unit_test(test_subregion_calls_reject_null_and_foreign),
		cmocka_unit_test(test_setters_reject_null),
		cmocka_unit_test(test_as_new_rejects_bad_arguments),
		cmocka_unit_test(test_register_region_rejects_bad_arguments),
		cmocka_unit_test(test_child_with_a_parent_is_ebusy),
		cmocka_unit_test(test_adding_to_an_alias_is_einval),
		cmocka_unit_test(test_cycle_through_children_is_eloop),
		cmocka_unit_test(test_cycle_through_alias_targets_is_eloop),
		cmocka_unit_test(test_del_of_a_non_child_is_enoent),
		cmocka_unit_test(test_alias_offset_only_on_aliases),
		cmocka_unit_test(test_romd_only_on_rom_devices),
		cmocka_unit_test(test_commit_without_begin_is_einval),
		cmocka_unit_test(test_ram_size_zero_or_above_max_is_einval),
		cmocka_unit_test(test_ram_set_size_beyond_block_is_einval),
		cmocka_unit_test(test_view_keeps_a_removed_region_alive),
		cmocka_unit_test(test_region_outlives_machine_free),
		cmocka_unit_test(test_alloc_failure_injection),
		cmocka_unit_test(test_parse_size_qemu_m_forms),
		cmocka_unit_test(test_parse_size_decimal_like_qemu),
		cmocka_unit_test(test_parse_size_fraction_like_qemu),
		cmocka_unit_test(test_parse_size_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
