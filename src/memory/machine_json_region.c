// SPDX-License-Identifier: MIT
/*
 * Machine description files: region objects, checked key by key against
 * their type, the ids they are found by, and the regions array with its
 * parents and alias targets resolved and alias cycles refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <memvirt/memory.h>

#include "machine_json_internal.h"

const char *const mj_rtype_names[RT_COUNT] = {
	"container", "ram", "rom", "rom_device", "io", "reservation", "alias",
};

/* ---- region ids --------------------------------------------------------- */

static struct region_spec *find_id(const struct load *l, const char *id)
{
	json_t *v = json_object_get(l->ids, id);

	return v ? l->all[json_integer_value(v)] : NULL;
}

/* Record @s under its id; ids are unique across the whole document. */
int mj_define_id(struct load *l, struct region_spec *s)
{
	const struct region_spec *first = find_id(l, s->id);
	struct region_spec **all;

	if (first)
		return mj_fail_key(
			&l->c, -EINVAL, s->where, "id",
			"duplicate id \"%.*s\" (first defined at %s)", SHOW,
			s->id, first->where);
	if (l->nr_all == l->cap_all) {
		l->cap_all = l->cap_all ? 2 * l->cap_all : 16;
		all = realloc(l->all, l->cap_all * sizeof(*all));
		if (!all)
			return mj_fail_nomem(&l->c);
		l->all = all;
	}
	if (json_object_set_new(l->ids, s->id,
				json_integer((json_int_t)l->nr_all)))
		return mj_fail_nomem(&l->c);
	l->all[l->nr_all++] = s;
	return 0;
}

/* The spec of the region @id named by @key at @path, which must exist. */
int mj_resolve_id(struct load *l, const char *path, const char *key,
		  const char *id, struct region_spec **out)
{
	*out = find_id(l, id);
	if (*out)
		return 0;
	return mj_fail_key(&l->c, -EINVAL, path, key,
			   "no region with id \"%.*s\"", SHOW, id);
}

/* Resolve a mapping parent; aliases cannot have subregions. */
int mj_resolve_parent(struct load *l, const char *path, const char *id)
{
	struct region_spec *p;
	int ret;

	ret = mj_resolve_id(l, path, "parent", id, &p);
	if (ret)
		return ret;
	if (p->type == RT_ALIAS)
		return mj_fail_key(&l->c, -EINVAL, path, "parent",
				   "\"%.*s\" is an alias, which cannot have "
				   "subregions",
				   SHOW, id);
	return 0;
}

/* ---- region objects ---------------------------------------------------- */

/* Which keys a region object may have, and for which types. */
static const struct region_key {
	const char *key;
	unsigned types;
} region_keys[] = {
	{ "id", T_ALL },	   { "name", T_ALL },
	{ "type", T_ALL },	   { "size", T_ALL },
	{ "parent", T_ALL },	   { "addr", T_ALL },
	{ "priority", T_ALL },	   { "enabled", T_ALL },
	{ "readonly", T_ALL },	   { "nonvolatile", T_ALL },
	{ "owner", T_ALL },	   { "target", T(ALIAS) },
	{ "offset", T(ALIAS) },	   { "ops", T(IO) | T(ROM_DEVICE) },
	{ "romd", T(ROM_DEVICE) }, { "backend", T_RAMLIKE },
	{ "path", T_RAMLIKE },	   { "share", T_RAMLIKE },
	{ "prealloc", T_RAMLIKE }, { "thp", T_RAMLIKE },
	{ "max_size", T_RAMLIKE }, { "block", T_RAMLIKE },
};

static const struct region_key *find_region_key(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(region_keys) / sizeof(region_keys[0]); i++)
		if (!strcmp(region_keys[i].key, key))
			return &region_keys[i];
	return NULL;
}

/* "ram, rom or rom_device" for a mask of types. */
const char *mj_type_list(unsigned mask, char *buf, size_t len)
{
	int left = __builtin_popcount(mask);
	const char *sep;
	size_t n = 0;
	int t;

	buf[0] = '\0';
	for (t = 0; t < RT_COUNT && n < len; t++) {
		if (!(mask & (1u << t)))
			continue;
		left--;
		sep = left > 1 ? ", " : " or ";
		if (!left)
			sep = "";
		n += (size_t)snprintf(buf + n, len - n, "%s%s",
				      mj_rtype_names[t], sep);
	}
	return buf;
}

bool mj_is_mapping_key(const char *key)
{
	return !strcmp(key, "parent") || !strcmp(key, "addr") ||
	       !strcmp(key, "priority");
}

/*
 * Every key must be known and apply to @s's type; a region an `add` change
 * defines is mapped by the change, so it has no mapping keys.
 */
static int check_region_keys(const struct ctx *c, json_t *obj,
			     const struct region_spec *s, bool in_change)
{
	const struct region_key *k;
	const char *key;
	char types[80];
	void *it;

	for (it = json_object_iter(obj); it;
	     it = json_object_iter_next(obj, it)) {
		key = json_object_iter_key(it);
		k = find_region_key(key);
		if (!k)
			return mj_fail_key(c, -EINVAL, s->where, key,
					   "unknown key");
		if (!(k->types & (1u << s->type)))
			return mj_fail_key(
				c, -EINVAL, s->where, key,
				"\"%s\" is for %s regions, not %s", key,
				mj_type_list(k->types, types, sizeof(types)),
				mj_rtype_names[s->type]);
		if (in_change && mj_is_mapping_key(key))
			return mj_fail_key(
				c, -EINVAL, s->where, key,
				"give \"%s\" in the add change, not in "
				"the region object",
				key);
	}
	return 0;
}

/*
 * The member @key, one of the @n @names: its index in *@out (untouched if
 * absent and not @required).  @expected lists the names for the message.
 */
static int get_choice(const struct ctx *c, json_t *obj, const char *path,
		      const char *key, bool required, const char *const *names,
		      int n, const char *expected, int *out)
{
	const char *name = NULL;
	int ret, i;

	ret = mj_get_string(c, obj, path, key, required, &name);
	if (ret || !name)
		return ret;
	i = mj_lookup_name(names, n, name);
	if (i < 0)
		return mj_fail_key(c, -EINVAL, path, key,
				   "unknown %s \"%.*s\" (expected %s)", key,
				   SHOW, name, expected);
	*out = i;
	return 0;
}

static int parse_region_type(const struct ctx *c, json_t *obj,
			     struct region_spec *s)
{
	int ret, t = 0;

	ret = get_choice(c, obj, s->where, "type", true, mj_rtype_names,
			 RT_COUNT,
			 "container, ram, rom, rom_device, io, reservation or "
			 "alias",
			 &t);
	s->type = (enum rtype)t;
	return ret;
}

/* The keys every region has. */
static int parse_region_base(const struct ctx *c, json_t *obj,
			     struct region_spec *s)
{
	const char *p = s->where;
	int ret;

	s->enabled = true;
	s->romd = true;
	ret = mj_get_string(c, obj, p, "id", true, &s->id);
	if (!ret && !s->id[0])
		ret = mj_fail_key(c, -EINVAL, p, "id", "must not be empty");
	if (!ret)
		ret = mj_get_string(c, obj, p, "name", false, &s->name);
	if (!ret)
		ret = mj_get_number(c, obj, p, "size", true, NUM_SIZE,
				    &s->size);
	if (!ret)
		ret = mj_get_bool(c, obj, p, "enabled", false, &s->enabled);
	if (!ret)
		ret = mj_get_bool(c, obj, p, "readonly", false, &s->readonly);
	if (!ret)
		ret = mj_get_bool(c, obj, p, "nonvolatile", false,
				  &s->nonvolatile);
	if (!ret)
		ret = mj_get_string(c, obj, p, "owner", false, &s->owner);
	if (!s->name)
		s->name = s->id;
	return ret;
}

/* parent/addr/priority; addr and priority mean nothing without parent. */
static int parse_region_mapping(const struct ctx *c, json_t *obj,
				struct region_spec *s)
{
	const char *p = s->where;
	int ret;

	ret = mj_get_string(c, obj, p, "parent", false, &s->parent);
	if (!ret)
		ret = mj_get_number(c, obj, p, "addr", false, NUM_ADDR,
				    &s->addr);
	if (!ret)
		ret = mj_get_priority(c, obj, p, "priority", &s->priority);
	if (ret || s->parent)
		return ret;
	if (json_object_get(obj, "addr"))
		return mj_fail_key(c, -EINVAL, p, "addr",
				   "\"addr\" needs \"parent\"");
	if (json_object_get(obj, "priority"))
		return mj_fail_key(c, -EINVAL, p, "priority",
				   "\"priority\" needs \"parent\"");
	return 0;
}

static const char *const ops_names[] = { "none", "unassigned-io", "zero" };

static int parse_region_ops(const struct ctx *c, json_t *obj,
			    struct region_spec *s)
{
	static const struct mv_region_ops *const ops[] = {
		NULL,
		&mv_unassigned_io_ops,
		&mv_zero_ops,
	};
	int ret, i = -1;

	ret = get_choice(c, obj, s->where, "ops", false, ops_names, 3,
			 "none, unassigned-io or zero", &i);
	if (i >= 0)
		s->ops = ops[i];
	return ret;
}

/* Keys of one type only: alias target/offset, ops, romd, rom's readonly. */
static int parse_region_kind(const struct ctx *c, json_t *obj,
			     struct region_spec *s)
{
	const char *p = s->where;
	int ret;

	ret = mj_get_string(c, obj, p, "target", s->type == RT_ALIAS,
			    &s->target);
	if (!ret)
		ret = mj_get_number(c, obj, p, "offset", false, NUM_OFFSET,
				    &s->offset);
	if (!ret)
		ret = parse_region_ops(c, obj, s);
	if (!ret)
		ret = mj_get_bool(c, obj, p, "romd", false, &s->romd);
	if (ret)
		return ret;
	if (s->type == RT_ROM &&
	    json_is_false(json_object_get(obj, "readonly")))
		return mj_fail_key(c, -EINVAL, p, "readonly",
				   "a rom region is always readonly");
	return 0;
}

static const char *const backend_names[] = { "anon", "memfd", "file" };

static int parse_backend(const struct ctx *c, json_t *obj,
			 struct region_spec *s)
{
	static const enum mv_ram_backend backends[] = {
		MV_RAM_ANON,
		MV_RAM_MEMFD,
		MV_RAM_FILE,
	};
	int ret, b = -1;

	ret = get_choice(c, obj, s->where, "backend", false, backend_names, 3,
			 "anon, memfd or file", &b);
	if (b >= 0)
		s->ram.backend = backends[b];
	return ret;
}

/* How a RAM-backed region gets its host memory. */
static int parse_ram_opts(const struct ctx *c, json_t *obj,
			  struct region_spec *s)
{
	struct mv_ram_opts *o = &s->ram;
	const char *p = s->where;
	int ret;

	ret = parse_backend(c, obj, s);
	if (!ret)
		ret = mj_get_string(c, obj, p, "path", false, &o->path);
	if (!ret)
		ret = mj_get_bool(c, obj, p, "share", false, &o->share);
	if (!ret)
		ret = mj_get_bool(c, obj, p, "prealloc", false, &o->prealloc);
	if (!ret)
		ret = mj_get_bool(c, obj, p, "thp", false, &o->thp);
	if (!ret)
		ret = mj_get_number(c, obj, p, "max_size", false, NUM_SIZE,
				    &o->max_size);
	if (!ret)
		ret = mj_get_string(c, obj, p, "block", false, &o->block_name);
	if (ret)
		return ret;
	if (o->backend == MV_RAM_FILE && !o->path)
		return mj_fail(c, -EINVAL, p,
			       "backend \"file\" needs \"path\"");
	if (o->backend != MV_RAM_FILE && o->path)
		return mj_fail_key(c, -EINVAL, p, "path",
				   "\"path\" needs backend \"file\"");
	if (json_object_get(obj, "max_size") && o->max_size < s->size)
		return mj_fail_key(c, -EINVAL, p, "max_size",
				   "\"max_size\" is smaller than \"size\"");
	return 0;
}

/* Validate the region object @obj at @s->where into @s. */
int mj_parse_region(const struct ctx *c, json_t *obj, struct region_spec *s,
		    bool in_change)
{
	int ret;

	ret = mj_check_object(c, obj, s->where, "a region");
	if (!ret)
		ret = parse_region_type(c, obj, s);
	if (!ret)
		ret = check_region_keys(c, obj, s, in_change);
	if (!ret)
		ret = parse_region_base(c, obj, s);
	if (!ret && !in_change)
		ret = parse_region_mapping(c, obj, s);
	if (!ret)
		ret = parse_region_kind(c, obj, s);
	if (!ret)
		ret = parse_ram_opts(c, obj, s);
	return ret;
}

/* ---- the regions array ------------------------------------------------- */

/* An alias cycle found at @entry: name it, e.g. "a" -> "b" -> "a". */
static int alias_cycle(const struct ctx *c, const struct region_spec *entry)
{
	const struct region_spec *s = entry;
	char chain[256];
	size_t n = 0;

	do {
		n += (size_t)snprintf(chain + n, sizeof(chain) - n,
				      "\"%.*s\" -> ", SHOW, s->id);
		s = s->tgt;
	} while (s != entry && n < sizeof(chain));
	if (n < sizeof(chain))
		snprintf(chain + n, sizeof(chain) - n, "\"%.*s\"", SHOW, s->id);
	return mj_fail_key(c, -EINVAL, entry->where, "target",
			   "alias cycle: %s", chain);
}

/*
 * Aliases are created once their target exists, so their targets must not
 * form a cycle.  Each alias has one target: walk each chain once, marking
 * aliases 1 while on the current walk and 2 when known to end in a
 * non-alias.
 */
static int check_alias_cycles(const struct load *l)
{
	struct region_spec *s;
	size_t i;

	for (i = 0; i < l->nr_specs; i++) {
		for (s = &l->specs[i]; s->type == RT_ALIAS && !s->mark;
		     s = s->tgt)
			s->mark = 1;
		if (s->type == RT_ALIAS && s->mark == 1)
			return alias_cycle(&l->c, s);
		for (s = &l->specs[i]; s->mark == 1; s = s->tgt)
			s->mark = 2;
	}
	return 0;
}

/* Every parent and alias target must name a region of the file. */
static int resolve_regions(struct load *l)
{
	struct region_spec *s;
	size_t i;
	int ret;

	for (i = 0; i < l->nr_specs; i++) {
		s = &l->specs[i];
		if (s->parent) {
			ret = mj_resolve_parent(l, s->where, s->parent);
			if (ret)
				return ret;
		}
		if (s->target) {
			ret = mj_resolve_id(l, s->where, "target", s->target,
					    &s->tgt);
			if (ret)
				return ret;
		}
	}
	return check_alias_cycles(l);
}

int mj_parse_regions(struct load *l, json_t *arr)
{
	struct region_spec *s;
	json_t *obj;
	size_t i;
	int ret;

	l->specs = calloc(json_array_size(arr) + 1, sizeof(*l->specs));
	if (!l->specs)
		return mj_fail_nomem(&l->c);
	for (i = 0; i < json_array_size(arr); i++) {
		obj = json_array_get(arr, i);
		s = &l->specs[i];
		snprintf(s->where, sizeof(s->where), "$.regions[%zu]", i);
		ret = mj_parse_region(&l->c, obj, s, false);
		if (!ret)
			ret = mj_define_id(l, s);
		if (ret)
			return ret;
		l->nr_specs++;
	}
	return resolve_regions(l);
}
