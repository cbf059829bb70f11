// SPDX-License-Identifier: MIT
/*
 * Why a region answers at an address: a walk in render order restricted to
 * one address collects every terminating region that covers it, each with
 * the path that reached it.  The first candidate is what the flat view
 * holds; each later one is hidden, and the point where its path leaves the
 * winner's says why (priority, recency, or a background yielding to its
 * subregion).  Used by `memvirt explain` and by `mtree --json`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

#define MAX_DEPTH 512

struct xctx {
	struct mv_machine *m;
	uint64_t addr;
	struct mv_xstep path[MAX_DEPTH];
	size_t depth;
	struct mv_xcand *cands;
	size_t nr, cap;
};

static int record(struct xctx *c, bool disabled, uint64_t offset, bool ro,
		  bool nv)
{
	struct mv_xcand *x;

	if (c->nr == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;

		x = mv_realloc(c->m, c->cands, cap * sizeof(*x));
		if (!x)
			return -ENOMEM;
		c->cands = x;
		c->cap = cap;
	}
	x = &c->cands[c->nr];
	x->path = mv_malloc(c->m, c->depth * sizeof(*x->path));
	if (!x->path)
		return -ENOMEM;
	memcpy(x->path, c->path, c->depth * sizeof(*x->path));
	x->depth = c->depth;
	x->disabled = disabled;
	x->offset = offset;
	x->readonly = ro;
	x->nonvolatile = nv;
	c->nr++;
	return 0;
}

/* render_region() with the clip reduced to one address. */
static int walk(struct xctx *c, struct mv_region *mr, s128 base, bool ro,
		bool nv)
{
	s128 a = (s128)c->addr;
	struct mv_region *ch;
	int ret = 0;

	if (c->depth == MAX_DEPTH)
		return -E2BIG;
	base += mr->addr;
	if (a < base || a >= base + (s128)mr->size)
		return 0;
	c->path[c->depth++] = (struct mv_xstep){ mr, (uint64_t)base };
	if (!mr->enabled) {
		ret = record(c, true, 0, ro, nv);
		goto out;
	}
	ro |= mr->readonly;
	nv |= mr->nonvolatile;
	if (mr->alias) {
		base -= (s128)mr->alias->addr + (s128)mr->alias_offset;
		ret = walk(c, mr->alias, base, ro, nv);
		goto out;
	}
	mv_for_each_child(ch, mr) {
		ret = walk(c, ch, base, ro, nv);
		if (ret)
			break;
	}
	if (!ret && mr->terminates)
		ret = record(c, false, (uint64_t)(a - base), ro, nv);
out:
	c->depth--;
	return ret;
}

void mv_xcands_free(struct mv_xcand *cands, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		free(cands[i].path);
	free(cands);
}

int mv_xcands_collect(struct mv_machine *m, struct mv_region *root,
		      uint64_t addr, struct mv_xcand **out, size_t *nr)
{
	struct xctx *c = mv_zalloc(m, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->m = m;
	c->addr = addr;
	ret = root ? walk(c, root, 0, false, false) : 0;
	if (ret) {
		mv_xcands_free(c->cands, c->nr);
	} else {
		*out = c->cands;
		*nr = c->nr;
	}
	free(c);
	return ret;
}

const struct mv_xcand *mv_xcands_winner(const struct mv_xcand *c, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		if (!c[i].disabled)
			return &c[i];
	return NULL;
}

void mv_xcand_reason(const struct mv_xcand *w, const struct mv_xcand *l,
		     char *buf, size_t len)
{
	size_t k = 0;
	const struct mv_region *a, *b;

	while (k < w->depth && k < l->depth && w->path[k].mr == l->path[k].mr)
		k++;
	if (k == l->depth) {
		snprintf(buf, len, "%s is the background of its subregion %s",
			 l->path[k - 1].mr->name, w->path[k].mr->name);
		return;
	}
	a = w->path[k].mr;
	b = l->path[k].mr;
	if (a->priority != b->priority)
		snprintf(buf, len, "%s has priority %d > %d of %s", a->name,
			 a->priority, b->priority, b->name);
	else
		snprintf(buf, len,
			 "%s and %s have priority %d; %s was added later",
			 a->name, b->name, a->priority, a->name);
}

/* ---- output ------------------------------------------------------------- */

static void step_text(FILE *f, const struct mv_xstep *s)
{
	const struct mv_region *mr = s->mr;

	fprintf(f, "    %016" PRIx64 "-%016" PRIx64 " %s (prio %d, ", s->start,
		s->start + mv_size_last(mr->size), mr->name, mr->priority);
	if (mr->alias)
		fprintf(f, "alias @%s+0x%" PRIx64, mr->alias->name,
			mr->alias_offset);
	else if (mr->kind == MV_REGION_CONTAINER)
		fputs("container", f);
	else
		fputs(mv_region_type(mr), f);
	fprintf(f, "%s)\n", mr->enabled ? "" : ", disabled");
}

static void cand_text(FILE *f, const struct mv_xcand *x)
{
	const struct mv_region *mr = x->path[x->depth - 1].mr;

	fprintf(f, "%s (%s) @0x%" PRIx64, mr->name,
		x->readonly ? "rom" : mv_region_type(mr), x->offset);
}

static void explain_text(FILE *f, struct mv_as *as, uint64_t addr,
			 const struct mv_xcand *c, size_t nr)
{
	const struct mv_xcand *w = mv_xcands_winner(c, nr);
	char why[256];
	size_t i;

	fprintf(f, "address-space: %s (root %s)\n", as->name, as->root->name);
	fprintf(f, "0x%016" PRIx64 ": ", addr);
	if (!w) {
		fputs("unassigned (no region answers here)\n", f);
	} else {
		cand_text(f, w);
		fputs("\n  path:\n", f);
		for (i = 0; i < w->depth; i++)
			step_text(f, &w->path[i]);
	}
	for (i = 0; i < nr; i++) {
		const struct mv_xcand *x = &c[i];

		if (x == w)
			continue;
		if (x->disabled) {
			const struct mv_region *d = x->path[x->depth - 1].mr;

			fprintf(f, "  disabled here: %s", d->name);
			if (d->alias)
				fprintf(f, " (alias @%s+0x%" PRIx64 ")",
					d->alias->name, d->alias_offset);
			fputc('\n', f);
			continue;
		}
		fputs("  hides ", f);
		cand_text(f, x);
		mv_xcand_reason(w, x, why, sizeof(why));
		fprintf(f, ": %s\n", why);
	}
}

json_t *mv_xcand_path_json(const struct mv_xcand *x)
{
	json_t *path = json_array();
	size_t i;

	for (i = 0; i < x->depth; i++) {
		const struct mv_region *mr = x->path[i].mr;
		json_t *s = json_pack("{s:s, s:i, s:s}", "region", mr->name,
				      "priority", mr->priority, "kind",
				      mr->alias ? "alias" :
				      mr->kind == MV_REGION_CONTAINER ?
						  "container" :
						  mv_region_type(mr));

		json_object_set_new(s, "start", mv_json_hex(x->path[i].start));
		if (mr->alias)
			json_object_set_new(s, "alias_offset",
					    mv_json_hex(mr->alias_offset));
		json_array_append_new(path, s);
	}
	return path;
}

json_t *mv_json_hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_string(buf);
}

static json_t *explain_json(struct mv_as *as, uint64_t addr,
			    const struct mv_xcand *c, size_t nr)
{
	const struct mv_xcand *w = mv_xcands_winner(c, nr);
	json_t *o = json_object(), *hidden = json_array(), *off = json_array();
	char why[256];
	size_t i;

	json_object_set_new(o, "address_space", json_string(as->name));
	json_object_set_new(o, "address", mv_json_hex(addr));
	if (w) {
		const struct mv_region *mr = w->path[w->depth - 1].mr;

		json_object_set_new(o, "region", json_string(mr->name));
		json_object_set_new(o, "offset", mv_json_hex(w->offset));
		json_object_set_new(o, "path", mv_xcand_path_json(w));
	} else {
		json_object_set_new(o, "region", json_null());
	}
	for (i = 0; i < nr; i++) {
		const struct mv_xcand *x = &c[i];

		if (x == w)
			continue;
		if (x->disabled) {
			json_array_append_new(
				off,
				json_string(x->path[x->depth - 1].mr->name));
			continue;
		}
		mv_xcand_reason(w, x, why, sizeof(why));
		json_array_append_new(
			hidden,
			json_pack("{s:s, s:o, s:s, s:o}", "region",
				  x->path[x->depth - 1].mr->name, "offset",
				  mv_json_hex(x->offset), "reason", why, "path",
				  mv_xcand_path_json(x)));
	}
	json_object_set_new(o, "hides", hidden);
	json_object_set_new(o, "disabled", off);
	return o;
}

int mv_explain(struct mv_as *as, uint64_t addr, bool json, FILE *out)
{
	struct mv_region *root = mv_flatview_root_of(as->root);
	struct mv_xcand *c = NULL;
	size_t nr = 0;
	int ret;

	/* Walk from the AS root so disabled roots are explained too. */
	ret = mv_xcands_collect(as->machine, root ? root : as->root, addr, &c,
				&nr);
	if (ret)
		return ret;
	if (json) {
		json_t *o = explain_json(as, addr, c, nr);

		ret = o ? json_dumpf(o, out,
				     JSON_INDENT(2) | JSON_PRESERVE_ORDER) :
			  -ENOMEM;
		fputc('\n', out);
		json_decref(o);
		if (ret)
			ret = -ENOMEM;
	} else {
		explain_text(out, as, addr, c, nr);
	}
	mv_xcands_free(c, nr);
	return ferror(out) ? -EIO : ret;
}
