// SPDX-License-Identifier: MIT
/*
 * Listeners: one test per rule of reference §3.4-3.5 (delivery order,
 * diff rules, replay on register/unregister, dirty-log events), plus the
 * rollback of a transaction whose region_add fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* The shared log all recorders of a test write to. */
struct logbuf {
	char *text;
	size_t len;
	FILE *f;
};

/* A listener that appends one line per callback to a shared log. */
struct rec {
	struct mv_listener l;
	struct logbuf *buf;
	int fail_add_at; /* the n-th region_add fails (1-based), 0: never */
	int adds;
};

static void line(struct mv_listener *l, const char *ev,
		 const struct mv_section *s, int om, int nm)
{
	FILE *f = ((struct rec *)l)->buf->f;

	fprintf(f, "%s %s", l->name, ev);
	if (s)
		fprintf(f, " %" PRIx64 "-%" PRIx64 " %s@%" PRIx64 "%s",
			s->first, s->last, mv_region_name(s->mr),
			s->offset_within_region, s->readonly ? " ro" : "");
	if (om >= 0)
		fprintf(f, " %d->%d", om, nm);
	fputc('\n', f);
}

static int begin(struct mv_listener *l)
{
	line(l, "begin", NULL, -1, 0);
	return 0;
}

static int commit(struct mv_listener *l)
{
	line(l, "commit", NULL, -1, 0);
	return 0;
}

static int add(struct mv_listener *l, const struct mv_section *s)
{
	struct rec *r = (struct rec *)l;

	if (r->fail_add_at && ++r->adds == r->fail_add_at)
		return -ENOSPC;
	line(l, "add", s, -1, 0);
	return 0;
}

static int del(struct mv_listener *l, const struct mv_section *s)
{
	line(l, "del", s, -1, 0);
	return 0;
}

static int nop(struct mv_listener *l, const struct mv_section *s)
{
	line(l, "nop", s, -1, 0);
	return 0;
}

static int log_start(struct mv_listener *l, const struct mv_section *s,
		     unsigned om, unsigned nm)
{
	line(l, "log_start", s, (int)om, (int)nm);
	return 0;
}

static int log_stop(struct mv_listener *l, const struct mv_section *s,
		    unsigned om, unsigned nm)
{
	line(l, "log_stop", s, (int)om, (int)nm);
	return 0;
}

static int log_sync(struct mv_listener *l, const struct mv_section *s)
{
	line(l, "log_sync", s, -1, 0);
	return 0;
}

static int global_start(struct mv_listener *l)
{
	line(l, "global_start", NULL, -1, 0);
	return 0;
}

static int global_stop(struct mv_listener *l)
{
	line(l, "global_stop", NULL, -1, 0);
	return 0;
}

static const struct mv_listener_ops rec_ops = {
	.begin = begin,
	.commit = commit,
	.region_add = add,
	.region_del = del,
	.region_nop = nop,
	.log_start = log_start,
	.log_stop = log_stop,
	.log_sync = log_sync,
	.log_global_start = global_start,
	.log_global_stop = global_stop,
};

static void log_open(struct logbuf *b)
{
	b->text = NULL;
	b->f = open_memstream(&b->text, &b->len);
	assert_non_null(b->f);
}

/* Compare and reset the log. */
static void log_expect(struct logbuf *b, const char *expect)
{
	fflush(b->f);
	if (strcmp(b->text, expect)) {
		print_error("events:\n%s\nexpected:\n%s\n", b->text, expect);
		fail();
	}
	fclose(b->f);
	free(b->text);
	log_open(b);
}

static void log_close(struct logbuf *b)
{
	fclose(b->f);
	free(b->text);
}

static void rec_init(struct rec *r, struct logbuf *b, const char *name,
		     int prio)
{
	memset(r, 0, sizeof(*r));
	r->l.ops = &rec_ops;
	r->l.name = name;
	r->l.priority = prio;
	r->buf = b;
}

/* A small machine: system container with RAM at 0 and MMIO above. */
struct fix {
	struct mv_machine *m;
	struct mv_region *sys, *ram, *dev;
	struct mv_as *as;
	struct logbuf log;
};

static void fix_init(struct fix *x)
{
	assert_int_equal(mv_machine_new(&x->m), 0);
	assert_int_equal(
		mv_region_new_container(x->m, "sys", UINT64_MAX, &x->sys), 0);
	assert_int_equal(mv_region_new_ram(x->m, "ram", 0x10000, NULL, &x->ram),
			 0);
	assert_int_equal(mv_region_new_io(x->m, "dev", 0x1000, &mv_zero_ops,
					  NULL, &x->dev),
			 0);
	assert_int_equal(mv_region_add_subregion(x->sys, 0, x->ram), 0);
	assert_int_equal(mv_region_add_subregion(x->sys, 0x100000, x->dev), 0);
	assert_int_equal(mv_as_new(x->m, "memory", x->sys, &x->as), 0);
	log_open(&x->log);
}

static void fix_fini(struct fix *x)
{
	mv_test_check_views(x->m);
	mv_region_unref(x->ram);
	mv_region_unref(x->dev);
	mv_region_unref(x->sys);
	mv_machine_free(x->m);
	log_close(&x->log);
}

/* Register @r on the fixture and check the replay of its two ranges. */
static void register_fresh(struct fix *x, struct rec *r)
{
	char want[256];
	const char *n = r->l.name;

	assert_int_equal(mv_listener_register(x->as, &r->l), 0);
	snprintf(want, sizeof(want),
		 "%s begin\n%s add 0-ffff ram@0\n%s add 100000-100fff dev@0\n"
		 "%s commit\n",
		 n, n, n, n);
	log_expect(&x->log, want);
}

/* memory_listener_register() replays the view: begin, add, commit. */
static void rule_3_5_register_replays_view(void **state)
{
	struct fix x;
	struct rec a;

	(void)state;
	fix_init(&x);
	rec_init(&a, &x.log, "a", 0);
	assert_int_equal(mv_listener_register(x.as, &a.l), 0);
	log_expect(&x.log, "a begin\n"
			   "a add 0-ffff ram@0\n"
			   "a add 100000-100fff dev@0\n"
			   "a commit\n");
	assert_int_equal(mv_listener_register(x.as, &a.l), -EBUSY);
	mv_listener_unregister(&a.l);
	log_expect(&x.log, "a begin\n"
			   "a del 0-ffff ram@0\n"
			   "a del 100000-100fff dev@0\n"
			   "a commit\n");
	fix_fini(&x);
}

/*
 * Deletions first in reverse priority order; nops and additions in
 * forward order; begin/commit forward; ties in registration order.
 */
static void rule_3_4_delivery_order(void **state)
{
	struct rec lo, hi, tie;
	struct fix x;

	(void)state;
	fix_init(&x);
	rec_init(&hi, &x.log, "hi", 10);
	rec_init(&lo, &x.log, "lo", 0);
	rec_init(&tie, &x.log, "tie", 10);
	assert_int_equal(mv_listener_register(x.as, &hi.l), 0);
	assert_int_equal(mv_listener_register(x.as, &lo.l), 0);
	assert_int_equal(mv_listener_register(x.as, &tie.l), 0);
	log_expect(&x.log, "hi begin\nhi add 0-ffff ram@0\n"
			   "hi add 100000-100fff dev@0\nhi commit\n"
			   "lo begin\nlo add 0-ffff ram@0\n"
			   "lo add 100000-100fff dev@0\nlo commit\n"
			   "tie begin\ntie add 0-ffff ram@0\n"
			   "tie add 100000-100fff dev@0\ntie commit\n");
	/* Move dev: the old range goes (reverse), the new one comes. */
	assert_int_equal(mv_region_set_address(x.dev, 0x200000), 0);
	log_expect(&x.log, "lo begin\nhi begin\ntie begin\n"
			   "tie del 100000-100fff dev@0\n"
			   "hi del 100000-100fff dev@0\n"
			   "lo del 100000-100fff dev@0\n"
			   "lo nop 0-ffff ram@0\nhi nop 0-ffff ram@0\n"
			   "tie nop 0-ffff ram@0\n"
			   "lo add 200000-200fff dev@0\n"
			   "hi add 200000-200fff dev@0\n"
			   "tie add 200000-200fff dev@0\n"
			   "lo commit\nhi commit\ntie commit\n");
	mv_listener_unregister(&hi.l);
	mv_listener_unregister(&lo.l);
	mv_listener_unregister(&tie.l);
	fix_fini(&x);
}

/* Any change of a range is del + add, never a modification. */
static void rule_3_4_changed_range_is_del_add(void **state)
{
	struct fix x;
	struct rec a;

	(void)state;
	fix_init(&x);
	rec_init(&a, &x.log, "a", 0);
	register_fresh(&x, &a);
	assert_int_equal(mv_region_set_readonly(x.ram, true), 0);
	/* pass 2 walks both views by address: the add comes first */
	log_expect(&x.log, "a begin\na del 0-ffff ram@0\n"
			   "a add 0-ffff ram@0 ro\n"
			   "a nop 100000-100fff dev@0\na commit\n");
	assert_int_equal(mv_region_set_size(x.ram, 0x8000), 0);
	log_expect(&x.log, "a begin\na del 0-ffff ram@0 ro\n"
			   "a add 0-7fff ram@0 ro\n"
			   "a nop 100000-100fff dev@0\na commit\n");
	mv_listener_unregister(&a.l);
	fix_fini(&x);
}

/* Nothing pending, nothing delivered. */
static void rule_3_4_no_events_when_nothing_changed(void **state)
{
	struct fix x;
	struct rec a;

	(void)state;
	fix_init(&x);
	rec_init(&a, &x.log, "a", 0);
	register_fresh(&x, &a);
	mv_txn_begin(x.m);
	assert_int_equal(mv_txn_commit(x.m), 0);
	assert_int_equal(mv_region_set_address(x.dev, 0x100000), 0);
	log_expect(&x.log, "");
	mv_listener_unregister(&a.l);
	fix_fini(&x);
}

/*
 * log_start/log_stop only when the mask changes, after the nop; the ranges
 * stay equal (flatrange_equal ignores the mask).
 */
static void rule_3_5_log_start_stop_on_mask_change(void **state)
{
	struct fix x;
	struct rec a, b;

	(void)state;
	fix_init(&x);
	rec_init(&a, &x.log, "a", 0);
	rec_init(&b, &x.log, "b", 1);
	assert_int_equal(mv_listener_register(x.as, &a.l), 0);
	assert_int_equal(mv_listener_register(x.as, &b.l), 0);
	log_expect(&x.log, "a begin\na add 0-ffff ram@0\n"
			   "a add 100000-100fff dev@0\na commit\n"
			   "b begin\nb add 0-ffff ram@0\n"
			   "b add 100000-100fff dev@0\nb commit\n");
	assert_int_equal(mv_region_set_log(x.ram, true, MV_DIRTY_VGA), 0);
	assert_int_equal(mv_region_get_dirty_log_mask(x.ram), 1);
	log_expect(&x.log, "a begin\nb begin\n"
			   "a nop 0-ffff ram@0\nb nop 0-ffff ram@0\n"
			   "a log_start 0-ffff ram@0 0->1\n"
			   "b log_start 0-ffff ram@0 0->1\n"
			   "a nop 100000-100fff dev@0\n"
			   "b nop 100000-100fff dev@0\n"
			   "a commit\nb commit\n");
	assert_int_equal(mv_region_set_log(x.ram, false, MV_DIRTY_VGA), 0);
	log_expect(&x.log, "a begin\nb begin\n"
			   "a nop 0-ffff ram@0\nb nop 0-ffff ram@0\n"
			   "b log_stop 0-ffff ram@0 1->0\n"
			   "a log_stop 0-ffff ram@0 1->0\n"
			   "a nop 100000-100fff dev@0\n"
			   "b nop 100000-100fff dev@0\n"
			   "a commit\nb commit\n");
	assert_int_equal(mv_region_set_log(x.ram, true, MV_DIRTY_MIGRATION),
			 -EINVAL);
	mv_listener_unregister(&a.l);
	mv_listener_unregister(&b.l);
	fix_fini(&x);
}

/*
 * Global dirty logging: log_global_start, then a commit giving RAM the
 * migration bit; stop: the commit, then log_global_stop in reverse.  A
 * listener registered meanwhile gets log_global_start and log_start.
 */
static void rule_3_5_global_dirty_log(void **state)
{
	struct fix x;
	struct rec a, b;

	(void)state;
	fix_init(&x);
	rec_init(&a, &x.log, "a", 0);
	rec_init(&b, &x.log, "b", 1);
	register_fresh(&x, &a);
	assert_int_equal(mv_machine_dirty_log_start(x.m), 0);
	log_expect(&x.log, "a global_start\na begin\na nop 0-ffff ram@0\n"
			   "a log_start 0-ffff ram@0 0->4\n"
			   "a nop 100000-100fff dev@0\na commit\n");
	assert_int_equal(mv_listener_register(x.as, &b.l), 0);
	log_expect(&x.log, "b begin\nb global_start\nb add 0-ffff ram@0\n"
			   "b log_start 0-ffff ram@0 0->4\n"
			   "b add 100000-100fff dev@0\nb commit\n");
	assert_int_equal(mv_region_sync_dirty_bitmap(x.m, NULL), 0);
	log_expect(&x.log,
		   "a log_sync 0-ffff ram@0\nb log_sync 0-ffff ram@0\n");
	assert_int_equal(mv_region_sync_dirty_bitmap(x.m, x.dev), 0);
	log_expect(&x.log, "");
	assert_int_equal(mv_machine_dirty_log_stop(x.m), 0);
	log_expect(&x.log, "a begin\nb begin\n"
			   "a nop 0-ffff ram@0\nb nop 0-ffff ram@0\n"
			   "b log_stop 0-ffff ram@0 4->0\n"
			   "a log_stop 0-ffff ram@0 4->0\n"
			   "a nop 100000-100fff dev@0\n"
			   "b nop 100000-100fff dev@0\n"
			   "a commit\nb commit\n"
			   "b global_stop\na global_stop\n");
	mv_listener_unregister(&a.l);
	mv_listener_unregister(&b.l);
	fix_fini(&x);
}

/*
 * begin/commit go to every listener, also those of address spaces whose
 * view did not change; topology events only to the address space's own.
 */
static void rule_3_4_begin_commit_global(void **state)
{
	struct mv_region *io;
	struct mv_as *ioas;
	struct rec a, b;
	struct fix x;

	(void)state;
	fix_init(&x);
	assert_int_equal(mv_region_new_io(x.m, "io", 0x10000,
					  &mv_unassigned_io_ops, NULL, &io),
			 0);
	assert_int_equal(mv_as_new(x.m, "I/O", io, &ioas), 0);
	rec_init(&a, &x.log, "a", 0);
	rec_init(&b, &x.log, "b", 0);
	assert_int_equal(mv_listener_register(x.as, &a.l), 0);
	assert_int_equal(mv_listener_register(ioas, &b.l), 0);
	log_expect(&x.log, "a begin\na add 0-ffff ram@0\n"
			   "a add 100000-100fff dev@0\na commit\n"
			   "b begin\nb add 0-ffff io@0\nb commit\n");
	assert_int_equal(mv_region_set_enabled(x.dev, false), 0);
	log_expect(&x.log, "a begin\nb begin\n"
			   "a del 100000-100fff dev@0\n"
			   "a nop 0-ffff ram@0\n"
			   "b nop 0-ffff io@0\n"
			   "a commit\nb commit\n");
	mv_listener_unregister(&a.l);
	mv_listener_unregister(&b.l);
	mv_region_unref(io);
	fix_fini(&x);
}

/*
 * A failing region_add rolls the transaction back: listeners that saw
 * part of it get the inverse events, the tree and the view are as before,
 * the commit returns the error, and the next change works.
 */
static void rollback_on_failing_region_add(void **state)
{
	struct mv_flatview *before, *after;
	struct mv_region *extra;
	struct rec a, b;
	struct fix x;

	(void)state;
	fix_init(&x);
	assert_int_equal(mv_region_new_ram(x.m, "extra", 0x1000, NULL, &extra),
			 0);
	rec_init(&a, &x.log, "a", 0);
	rec_init(&b, &x.log, "b", 1);
	assert_int_equal(mv_listener_register(x.as, &a.l), 0);
	assert_int_equal(mv_listener_register(x.as, &b.l), 0);
	log_expect(&x.log, "a begin\na add 0-ffff ram@0\n"
			   "a add 100000-100fff dev@0\na commit\n"
			   "b begin\nb add 0-ffff ram@0\n"
			   "b add 100000-100fff dev@0\nb commit\n");
	before = mv_as_get_flatview(x.as);
	b.fail_add_at = b.adds + 1; /* b refuses the next region_add */
	mv_txn_begin(x.m);
	assert_int_equal(mv_region_set_enabled(x.ram, false), 0);
	assert_int_equal(mv_region_add_subregion(x.sys, 0x300000, extra), 0);
	assert_int_equal(mv_txn_commit(x.m), -ENOSPC);
	log_expect(&x.log, "a begin\nb begin\n"
			   "b del 0-ffff ram@0\na del 0-ffff ram@0\n"
			   "a nop 100000-100fff dev@0\n"
			   "b nop 100000-100fff dev@0\n"
			   "a add 300000-300fff extra@0\n"
			   /* rollback: inverse, newest first */
			   "a del 300000-300fff extra@0\n"
			   "a add 0-ffff ram@0\nb add 0-ffff ram@0\n"
			   "a commit\nb commit\n");
	after = mv_as_get_flatview(x.as);
	assert_ptr_equal(after, before);
	assert_true(mv_region_enabled(x.ram));
	assert_null(mv_region_container(extra));
	mv_test_expect_view(x.as, "0-ffff ram@0\n100000-100fff dev@0");
	mv_flatview_unref(after);
	mv_flatview_unref(before);
	/* The next change is delivered normally. */
	b.fail_add_at = 0;
	assert_int_equal(mv_region_add_subregion(x.sys, 0x300000, extra), 0);
	log_expect(&x.log, "a begin\nb begin\n"
			   "a nop 0-ffff ram@0\nb nop 0-ffff ram@0\n"
			   "a nop 100000-100fff dev@0\n"
			   "b nop 100000-100fff dev@0\n"
			   "a add 300000-300fff extra@0\n"
			   "b add 300000-300fff extra@0\n"
			   "a commit\nb commit\n");
	mv_listener_unregister(&a.l);
	mv_listener_unregister(&b.l);
	mv_region_unref(extra);
	fix_fini(&x);
}

/* Rolled back moves and deletions restore the old list order too. */
static void rollback_restores_list_order(void **state)
{
	struct mv_region *p, *q;
	struct rec a;
	struct fix x;

	(void)state;
	fix_init(&x);
	assert_int_equal(mv_region_new_ram(x.m, "p", 0x1000, NULL, &p), 0);
	assert_int_equal(mv_region_new_ram(x.m, "q", 0x1000, NULL, &q), 0);
	/* q is newer: it wins over p at 0x400000 */
	assert_int_equal(mv_region_add_subregion(x.sys, 0x400000, p), 0);
	assert_int_equal(mv_region_add_subregion(x.sys, 0x400000, q), 0);
	mv_test_expect_view(x.as, "0-ffff ram@0\n100000-100fff dev@0\n"
				  "400000-400fff q@0");
	rec_init(&a, &x.log, "a", 0);
	assert_int_equal(mv_listener_register(x.as, &a.l), 0);
	a.fail_add_at = a.adds + 1;
	mv_txn_begin(x.m);
	/* moving q away and back makes it newest; deleting p and re-adding
	 * it makes p newest: without rollback p would win */
	assert_int_equal(mv_region_del_subregion(x.sys, p), 0);
	assert_int_equal(mv_region_add_subregion(x.sys, 0x400000, p), 0);
	assert_int_equal(mv_region_set_address(x.dev, 0x500000), 0);
	assert_int_equal(mv_txn_commit(x.m), -ENOSPC);
	mv_test_expect_view(x.as, "0-ffff ram@0\n100000-100fff dev@0\n"
				  "400000-400fff q@0");
	/* A later full re-render agrees: the tree is as before. */
	a.fail_add_at = 0;
	assert_int_equal(mv_region_set_size(x.ram, 0x8000), 0);
	mv_test_expect_view(x.as, "0-7fff ram@0\n100000-100fff dev@0\n"
				  "400000-400fff q@0");
	mv_listener_unregister(&a.l);
	mv_region_unref(p);
	mv_region_unref(q);
	fix_fini(&x);
}

/*
 * A rollback restores priorities: deleting a region and re-adding it with
 * another priority, then a refused add, leaves it with its old priority
 * (and a refused add leaves the detached region's address and priority).
 */
static void rollback_restores_priority(void **state)
{
	struct mv_region *p, *q;
	struct rec a;
	struct fix x;

	(void)state;
	fix_init(&x);
	assert_int_equal(mv_region_new_ram(x.m, "p", 0x1000, NULL, &p), 0);
	assert_int_equal(mv_region_new_ram(x.m, "q", 0x1000, NULL, &q), 0);
	assert_int_equal(mv_region_add_subregion_overlap(x.sys, 0x400000, p, 1),
			 0);
	assert_int_equal(mv_region_add_subregion(x.sys, 0x400000, q), 0);
	rec_init(&a, &x.log, "a", 0);
	assert_int_equal(mv_listener_register(x.as, &a.l), 0);
	a.fail_add_at = a.adds + 1;
	mv_txn_begin(x.m);
	assert_int_equal(mv_region_del_subregion(x.sys, p), 0);
	assert_int_equal(
		mv_region_add_subregion_overlap(x.sys, 0x400000, p, -1), 0);
	assert_int_equal(mv_txn_commit(x.m), -ENOSPC);
	assert_int_equal(mv_region_priority(p), 1);
	a.fail_add_at = 0;
	assert_int_equal(mv_region_set_size(x.ram, 0x8000), 0);
	mv_test_expect_view(x.as, "0-7fff ram@0\n100000-100fff dev@0\n"
				  "400000-400fff p@0");
	/* a single refused add */
	assert_int_equal(mv_region_del_subregion(x.sys, q), 0);
	a.fail_add_at = a.adds + 1;
	assert_int_equal(mv_region_add_subregion_overlap(x.sys, 0x900000, q, 2),
			 -ENOSPC);
	assert_null(mv_region_container(q));
	assert_int_equal(mv_region_addr(q), 0x400000);
	assert_int_equal(mv_region_priority(q), 0);
	mv_listener_unregister(&a.l);
	mv_region_unref(p);
	mv_region_unref(q);
	fix_fini(&x);
}

/* A region_add failing during the replay leaves nothing registered. */
static void register_failure_takes_replay_back(void **state)
{
	struct fix x;
	struct rec a;

	(void)state;
	fix_init(&x);
	rec_init(&a, &x.log, "a", 0);
	a.fail_add_at = 2;
	assert_int_equal(mv_listener_register(x.as, &a.l), -ENOSPC);
	log_expect(&x.log, "a begin\na add 0-ffff ram@0\n"
			   "a del 0-ffff ram@0\na commit\n");
	assert_int_equal(mv_region_set_enabled(x.dev, false), 0);
	log_expect(&x.log, "");
	a.fail_add_at = 0;
	assert_int_equal(mv_listener_register(x.as, &a.l), 0);
	mv_listener_unregister(&a.l);
	fix_fini(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rule_3_5_register_replays_view),
		cmocka_unit_test(rule_3_4_delivery_order),
		cmocka_unit_test(rule_3_4_changed_range_is_del_add),
		cmocka_unit_test(rule_3_4_no_events_when_nothing_changed),
		cmocka_unit_test(rule_3_5_log_start_stop_on_mask_change),
		cmocka_unit_test(rule_3_5_global_dirty_log),
		cmocka_unit_test(rule_3_4_begin_commit_global),
		cmocka_unit_test(rollback_on_failing_region_add),
		cmocka_unit_test(rollback_restores_list_order),
		cmocka_unit_test(rollback_restores_priority),
		cmocka_unit_test(register_failure_takes_replay_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
