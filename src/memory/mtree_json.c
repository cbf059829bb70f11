// SPDX-License-Identifier: MIT
/*
 * `mtree --json`: the region trees, the flat views with the provenance of
 * every range (the path of aliases and priorities that put it there and
 * what it hides), and the RAM blocks, as one JSON document.
 */
#include <errno.h>
#include <stdlib.h>

#include "explain.h"
#include "mtree.h"

static json_t *tree_json(const struct mv_region *mr, uint64_t base,
			 unsigned depth)
{
	uint64_t start = base + mr->addr;
	struct mv_region *ch;
	json_t *o, *kids;

	if (depth > 1024)
		return NULL;
	o = json_pack("{s:s, s:s, s:o, s:o, s:i, s:b, s:b, s:b}", "name",
		      mr->name, "type", mv_region_type(mr), "start",
		      mv_json_hex(start), "last",
		      mv_json_hex(start + mv_size_last(mr->size)), "priority",
		      mr->priority, "enabled", mr->enabled, "readonly",
		      mr->readonly, "nonvolatile", mr->nonvolatile);
	if (!o)
		return NULL;
	json_object_set_new(o, "kind",
			    json_string(mr->alias ? "alias" :
					mr->kind == MV_REGION_CONTAINER ?
						    "container" :
						    "terminating"));
	if (mr->alias)
		json_object_set_new(o, "alias",
				    json_pack("{s:s, s:o}", "target",
					      mr->alias->name, "offset",
					      mv_json_hex(mr->alias_offset)));
	kids = json_array();
	mv_for_each_child(ch, mr)
		json_array_append_new(kids, tree_json(ch, start, depth + 1));
	json_object_set_new(o, "subregions", kids);
	return o;
}

static json_t *range_json(struct mv_machine *m, const struct mv_flatview *fv,
			  const struct mv_flat_range *r)
{
	const struct mv_xcand *w;
	struct mv_xcand *c = NULL;
	json_t *o, *hides;
	char why[256];
	size_t nr = 0, i;

	o = json_pack("{s:o, s:o, s:s, s:s, s:i, s:o, s:b, s:b, s:b}", "first",
		      mv_json_hex(r->first), "last", mv_json_hex(r->last),
		      "region", r->mr->name, "type",
		      r->readonly ? "rom" : mv_region_type(r->mr), "priority",
		      r->mr->priority, "offset_in_region",
		      mv_json_hex(r->offset_in_region), "readonly", r->readonly,
		      "nonvolatile", r->nonvolatile, "romd_mode", r->romd_mode);
	if (!o || mv_xcands_collect(m, fv->root, r->first, &c, &nr))
		return o;
	w = mv_xcands_winner(c, nr);
	hides = json_array();
	for (i = 0; w && i < nr; i++) {
		if (&c[i] == w || c[i].disabled)
			continue;
		mv_xcand_reason(w, &c[i], why, sizeof(why));
		json_array_append_new(
			hides, json_pack("{s:s, s:s}", "region",
					 c[i].path[c[i].depth - 1].mr->name,
					 "reason", why));
	}
	if (w)
		json_object_set_new(o, "path", mv_xcand_path_json(w));
	json_object_set_new(o, "hides", hides);
	mv_xcands_free(c, nr);
	return o;
}

static json_t *views_json(struct mv_machine *m)
{
	json_t *views = json_array();
	struct mv_as *as, *other;

	for (as = m->as_head; as; as = as->next) {
		const struct mv_flatview *fv = as->view;
		json_t *v, *names, *ranges;
		size_t i;

		for (other = m->as_head; other != as; other = other->next)
			if (other->view == fv)
				break;
		if (other != as)
			continue;
		names = json_array();
		ranges = json_array();
		for (other = as; other; other = other->next)
			if (other->view == fv)
				json_array_append_new(names,
						      json_string(other->name));
		for (i = 0; i < fv->nr; i++)
			json_array_append_new(
				ranges, range_json(m, fv, mv_fv_at(fv, i)));
		v = json_pack(
			"{s:o, s:o, s:o}", "address_spaces", names, "root",
			fv->root ? json_string(fv->root->name) : json_null(),
			"ranges", ranges);
		json_array_append_new(views, v);
	}
	return views;
}

static json_t *blocks_json(const struct mv_machine *m)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < m->nr_blocks; i++) {
		const struct mv_ramblock *b = m->blocks[i];

		json_array_append_new(
			a,
			json_pack("{s:s, s:I, s:o, s:o, s:o}", "name", b->idstr,
				  "page_size", (json_int_t)b->page_size,
				  "offset", mv_json_hex(b->offset), "used",
				  mv_json_hex(b->used_length), "total",
				  mv_json_hex(b->max_length)));
	}
	return a;
}

int mv_mtree_print_json(struct mv_machine *m, FILE *out, unsigned flags)
{
	json_t *doc = json_object(), *spaces = json_array();
	struct mv_as *as;
	int ret;

	(void)flags;
	json_object_set_new(doc, "machine",
			    m->name ? json_string(m->name) : json_null());
	for (as = m->as_head; as; as = as->next)
		json_array_append_new(
			spaces, json_pack("{s:s, s:o}", "name", as->name,
					  "tree", tree_json(as->root, 0, 0)));
	json_object_set_new(doc, "address_spaces", spaces);
	json_object_set_new(doc, "flatviews", views_json(m));
	json_object_set_new(doc, "ramblocks", blocks_json(m));
	ret = json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(doc);
	if (ret)
		return -ENOMEM;
	return ferror(out) ? -EIO : 0;
}
