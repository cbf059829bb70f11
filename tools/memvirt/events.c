// SPDX-License-Identifier: MIT
/*
 * memvirt mtree --events: the listener event log of a machine file's
 * change list.  One listener per address space prints every callback; the
 * registration replay comes first, then each change transaction.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

struct printer {
	struct mv_listener l;
	FILE *out;
};

static void print_event(struct mv_listener *l, const char *ev,
			const struct mv_section *s, int om, int nm)
{
	FILE *f = ((struct printer *)l)->out;

	fprintf(f, "%s: %s", l->name, ev);
	if (s) {
		fprintf(f, " %016" PRIx64 "-%016" PRIx64 " (prio %d, %s%s): %s",
			s->first, s->last, mv_region_priority(s->mr),
			s->nonvolatile ? "nv-" : "",
			s->readonly ? "rom" : mv_region_type(s->mr),
			mv_region_name(s->mr));
		if (s->offset_within_region)
			fprintf(f, " @%016" PRIx64, s->offset_within_region);
	}
	if (om >= 0)
		fprintf(f, " mask %d->%d", om, nm);
	fputc('\n', f);
}

#define SIMPLE(fn, ev)                           \
	static int fn(struct mv_listener *l)     \
	{                                        \
		print_event(l, ev, NULL, -1, 0); \
		return 0;                        \
	}
#define SECTION(fn, ev)                                                  \
	static int fn(struct mv_listener *l, const struct mv_section *s) \
	{                                                                \
		print_event(l, ev, s, -1, 0);                            \
		return 0;                                                \
	}
#define MASKS(fn, ev)                                                    \
	static int fn(struct mv_listener *l, const struct mv_section *s, \
		      unsigned om, unsigned nm)                          \
	{                                                                \
		print_event(l, ev, s, (int)om, (int)nm);                 \
		return 0;                                                \
	}

SIMPLE(ev_begin, "begin")
SIMPLE(ev_commit, "commit")
SIMPLE(ev_global_start, "log_global_start")
SIMPLE(ev_global_stop, "log_global_stop")
SECTION(ev_add, "region_add")
SECTION(ev_del, "region_del")
SECTION(ev_nop, "region_nop")
MASKS(ev_log_start, "log_start")
MASKS(ev_log_stop, "log_stop")

static const struct mv_listener_ops printer_ops = {
	.begin = ev_begin,
	.commit = ev_commit,
	.region_add = ev_add,
	.region_del = ev_del,
	.region_nop = ev_nop,
	.log_start = ev_log_start,
	.log_stop = ev_log_stop,
	.log_global_start = ev_global_start,
	.log_global_stop = ev_global_stop,
};

int cli_print_events(struct mv_machine *m, FILE *out)
{
	size_t n = mv_machine_as_count(m), i, step = 0;
	struct mv_error err = { { 0 } };
	struct printer *p = calloc(n ? n : 1, sizeof(*p));
	int ret = 0;

	if (!p)
		return -ENOMEM;
	fputs("# register\n", out);
	for (i = 0; i < n && !ret; i++) {
		struct mv_as *as = mv_machine_as_get(m, i);

		p[i].l.ops = &printer_ops;
		p[i].l.name = mv_as_name(as);
		p[i].out = out;
		ret = mv_listener_register(as, &p[i].l);
	}
	while (!ret && mv_machine_pending_changes(m)) {
		fprintf(out, "# change %zu\n", ++step);
		ret = mv_machine_apply_change(m, &err);
		if (ret)
			cli_error("%s", err.msg);
	}
	fputs("# unregister\n", out);
	for (i = 0; i < n; i++)
		mv_listener_unregister(&p[i].l);
	free(p);
	return ret;
}
