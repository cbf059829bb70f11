// SPDX-License-Identifier: MIT
/*
 * Machine description files: the validated specs built into a machine
 * through the public memory API in one transaction, and the entry points
 * that load a description from a jansson document, a string or a file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <memvirt/memory.h>

#include "internal.h"
#include "machine_json.h"
#include "machine_json_internal.h"

/* ---- building --------------------------------------------------------- */

static int new_region(struct mv_machine *m, const struct region_spec *s,
		      struct mv_region *target, struct mv_region **out)
{
	switch (s->type) {
	case RT_CONTAINER:
		return mv_region_new_container(m, s->name, s->size, out);
	case RT_RAM:
		return mv_region_new_ram(m, s->name, s->size, &s->ram, out);
	case RT_ROM:
		return mv_region_new_rom(m, s->name, s->size, &s->ram, out);
	case RT_ROM_DEVICE:
		return mv_region_new_rom_device(m, s->name, s->size, s->ops,
						NULL, &s->ram, out);
	case RT_IO:
		return mv_region_new_io(m, s->name, s->size, s->ops, NULL, out);
	case RT_RESERVATION:
		return mv_region_new_reservation(m, s->name, s->size, out);
	default:
		return mv_region_new_alias(m, s->name, target, s->offset,
					   s->size, out);
	}
}

/* The attributes set between creation and mapping. */
static int set_region_attrs(struct mv_region *r, const struct region_spec *s)
{
	int ret = 0;

	if (!s->enabled)
		ret = mv_region_set_enabled(r, false);
	if (!ret && s->readonly)
		ret = mv_region_set_readonly(r, true);
	if (!ret && s->nonvolatile)
		ret = mv_region_set_nonvolatile(r, true);
	if (!ret && s->type == RT_ROM_DEVICE && !s->romd)
		ret = mv_region_rom_device_set_romd(r, false);
	if (!ret && s->owner)
		ret = mv_region_set_owner(r, s->owner);
	return ret;
}

/* Create the region of @s and register it; the machine owns it. */
int mj_create_region(const struct ctx *c, struct mv_machine *m,
		     const struct region_spec *s)
{
	struct mv_region *target = NULL, *r;
	int ret;

	if (s->type == RT_ALIAS) {
		target = mv_machine_find_region(m, s->target);
		if (!target)
			return mj_fail_key(c, -ENOENT, s->where, "target",
					   "no region with id \"%.*s\"", SHOW,
					   s->target);
	}
	ret = new_region(m, s, target, &r);
	if (ret)
		return mj_fail(c, ret, s->where,
			       "cannot create %s region \"%.*s\": %s",
			       mj_rtype_names[s->type], SHOW, s->id,
			       strerror(-ret));
	ret = set_region_attrs(r, s);
	if (ret) {
		mj_fail(c, ret, s->where, "cannot set up region \"%.*s\": %s",
			SHOW, s->id, strerror(-ret));
		goto out_unref_region;
	}
	ret = mv_machine_register_region(m, s->id, r);
	if (ret)
		mj_fail(c, ret, s->where, "cannot register region \"%.*s\": %s",
			SHOW, s->id, strerror(-ret));
out_unref_region:
	/* On success the machine holds its own reference. */
	mv_region_unref(r);
	return ret;
}

/*
 * Create l->specs[@first], then each alias before it that was waiting for
 * a target created here, breadth first, so an alias follows its target.
 */
static int create_with_aliases(struct load *l, struct mv_machine *m,
			       size_t first, size_t *queue)
{
	size_t head = 0, tail = 0, j;
	struct region_spec *s, *d;
	int ret;

	queue[tail++] = first;
	l->specs[first].scheduled = true;
	while (head < tail) {
		s = &l->specs[queue[head++]];
		ret = mj_create_region(&l->c, m, s);
		if (ret)
			return ret;
		for (j = 0; j < first; j++) {
			d = &l->specs[j];
			if (!d->scheduled && d->tgt == s) {
				d->scheduled = true;
				queue[tail++] = j;
			}
		}
	}
	return 0;
}

/* In array order; an alias whose target comes later waits for it. */
static int create_regions(struct load *l, struct mv_machine *m)
{
	struct region_spec *s;
	size_t *queue, i;
	int ret = 0;

	queue = calloc(l->nr_specs + 1, sizeof(*queue));
	if (!queue)
		return mj_fail_nomem(&l->c);
	for (i = 0; i < l->nr_specs && !ret; i++) {
		s = &l->specs[i];
		if (s->scheduled || (s->tgt && !s->tgt->scheduled))
			continue;
		ret = create_with_aliases(l, m, i, queue);
	}
	free(queue);
	return ret;
}

int mj_map_region(const struct ctx *c, struct mv_machine *m, const char *path,
		  const char *id, const char *parent_id, uint64_t addr,
		  int priority)
{
	struct mv_region *parent = mv_machine_find_region(m, parent_id);
	struct mv_region *child = mv_machine_find_region(m, id);
	int ret;

	if (!parent)
		return mj_fail_key(c, -ENOENT, path, "parent",
				   "no region with id \"%.*s\"", SHOW,
				   parent_id);
	ret = mv_region_add_subregion_overlap(parent, addr, child, priority);
	if (ret == -ELOOP)
		return mj_fail(c, ret, path,
			       "adding \"%.*s\" to \"%.*s\" would make a cycle",
			       SHOW, id, SHOW, parent_id);
	if (ret == -EBUSY)
		return mj_fail(c, ret, path,
			       "\"%.*s\" is already mapped; remove it first",
			       SHOW, id);
	if (ret)
		return mj_fail(c, ret, path,
			       "cannot add \"%.*s\" to \"%.*s\": %s", SHOW, id,
			       SHOW, parent_id, strerror(-ret));
	return 0;
}

/*
 * In array order: among equal priorities the last one mapped wins.  A
 * mapping the API refuses (a cycle) makes the description bad: -EINVAL.
 */
static int map_regions(struct load *l, struct mv_machine *m)
{
	const struct region_spec *s;
	size_t i;
	int ret;

	for (i = 0; i < l->nr_specs; i++) {
		s = &l->specs[i];
		if (!s->parent)
			continue;
		ret = mj_map_region(&l->c, m, s->where, s->id, s->parent,
				    s->addr, s->priority);
		if (ret)
			return ret == -ENOMEM ? ret : -EINVAL;
	}
	return 0;
}

static int create_address_spaces(struct load *l, struct mv_machine *m)
{
	const struct as_spec *a;
	struct mv_as *as;
	size_t i;
	int ret;

	for (i = 0; i < l->nr_as; i++) {
		a = &l->as[i];
		ret = mv_as_new(m, a->name, mv_machine_find_region(m, a->root),
				&as);
		if (ret)
			return mj_fail(
				&l->c, ret, a->where,
				"cannot create address space \"%.*s\": %s",
				SHOW, a->name, strerror(-ret));
	}
	return 0;
}

/* The document's top-level "name", if it has one. */
static int name_machine(struct load *l, struct mv_machine *m)
{
	int ret;

	if (!l->name)
		return 0;
	ret = mv_machine_set_name(m, l->name);
	if (ret)
		return mj_fail(&l->c, ret, NULL, "cannot name the machine: %s",
			       strerror(-ret));
	return 0;
}

/* Regions and mappings in one transaction, then the address spaces. */
static int build(struct load *l, struct mv_machine **out)
{
	struct mv_machine *m;
	int ret, cret;

	ret = mv_machine_new(&m);
	if (ret)
		return mj_fail(&l->c, ret, NULL,
			       "cannot create the machine: %s", strerror(-ret));
	ret = name_machine(l, m);
	if (ret)
		goto err_free_machine;
	mv_txn_begin(m);
	ret = create_regions(l, m);
	if (!ret)
		ret = map_regions(l, m);
	cret = mv_txn_commit(m);
	if (!ret && cret)
		ret = mj_fail(&l->c, cret, NULL,
			      "cannot render the machine: %s", strerror(-cret));
	if (!ret)
		ret = create_address_spaces(l, m);
	if (ret)
		goto err_free_machine;
	m->changes = l->cl;
	l->cl = NULL;
	*out = m;
	return 0;

err_free_machine:
	mv_machine_free(m);
	return ret;
}

/* ---- entry points ------------------------------------------------------- */

static void load_fini(struct load *l)
{
	mv_change_list_free(NULL, l->cl);
	free(l->as);
	free(l->specs);
	free(l->all);
	json_decref(l->ids);
}

int mv_machine_load_json(json_t *doc, const char *origin,
			 struct mv_machine **out, struct mv_error *err)
{
	struct load l = { .c = { .origin = origin ? origin : "machine",
				 .err = err } };
	int ret;

	*out = NULL;
	l.ids = json_object();
	if (!l.ids)
		return mj_fail_nomem(&l.c);
	ret = mj_parse_document(&l, doc);
	if (!ret)
		ret = build(&l, out);
	load_fini(&l);
	return ret;
}

static int syntax_error(const char *origin, const json_error_t *je,
			struct mv_error *err)
{
	if (err)
		snprintf(err->msg, sizeof(err->msg),
			 "%s:%d:%d: JSON syntax error: %s", origin, je->line,
			 je->column, je->text);
	return json_error_code(je) == json_error_out_of_memory ? -ENOMEM :
								 -EINVAL;
}

int mv_machine_load_string(const char *text, const char *origin,
			   struct mv_machine **out, struct mv_error *err)
{
	json_error_t je;
	json_t *doc;
	int ret;

	*out = NULL;
	if (!origin)
		origin = "machine";
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return syntax_error(origin, &je, err);
	ret = mv_machine_load_json(doc, origin, out, err);
	json_decref(doc);
	return ret;
}

int mv_machine_load_file(const char *path, struct mv_machine **out,
			 struct mv_error *err)
{
	json_error_t je;
	json_t *doc;
	FILE *f;
	int ret;

	*out = NULL;
	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		if (err)
			snprintf(err->msg, sizeof(err->msg),
				 "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	doc = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
	fclose(f);
	if (!doc)
		return syntax_error(path, &je, err);
	ret = mv_machine_load_json(doc, path, out, err);
	json_decref(doc);
	return ret;
}
