// SPDX-License-Identifier: MIT
/*
 * Machine description files: the change list.  Each transaction of the
 * `changes` array is validated at load, kept with the machine, and applied
 * in order by mv_machine_apply_change().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <memvirt/memory.h>

#include "internal.h"
#include "machine_json_internal.h"

enum change_op {
	OP_ENABLE,
	OP_DISABLE,
	OP_MOVE,
	OP_RESIZE,
	OP_ALIAS_OFFSET,
	OP_READONLY,
	OP_NONVOLATILE,
	OP_ROMD,
	OP_ADD,
	OP_REMOVE,
	OP_COUNT,
};

/*
 * What each op takes: @field is its value key (NULL: none; "parent" for
 * add, which also takes "addr" and "priority"); @types the region types it
 * applies to.
 */
static const struct op_desc {
	const char *name;
	const char *field;
	unsigned types;
} op_descs[OP_COUNT] = {
	[OP_ENABLE] = { "enable", NULL, T_ALL },
	[OP_DISABLE] = { "disable", NULL, T_ALL },
	[OP_MOVE] = { "move", "addr", T_ALL },
	[OP_RESIZE] = { "resize", "size", T_ALL },
	[OP_ALIAS_OFFSET] = { "alias_offset", "offset", T(ALIAS) },
	[OP_READONLY] = { "readonly", "value", T_ALL },
	[OP_NONVOLATILE] = { "nonvolatile", "value", T_ALL },
	[OP_ROMD] = { "romd", "value", T(ROM_DEVICE) },
	[OP_ADD] = { "add", "parent", T_ALL },
	[OP_REMOVE] = { "remove", NULL, T_ALL },
};

/*
 * struct change - one validated change at $.changes[@txn][@idx].
 * @value: addr, size or offset; @flag: the bool of readonly/nonvolatile/romd.
 * @spec: the region an `add` defines (owned), or NULL.
 */
struct change {
	enum change_op op;
	size_t txn, idx;
	const char *region;
	const char *parent;
	uint64_t value;
	int priority;
	bool flag;
	struct region_spec *spec;
};

struct change_txn {
	struct change *ops;
	size_t nr;
};

/*
 * struct mv_change_list - the parsed `changes` of a machine file.
 * @next: the first transaction not applied yet (0 <= @next <= @nr).
 * @copy: a private copy of the `changes` array, which the changes' strings
 *	  point into (the caller may change its document after the load).
 */
struct mv_change_list {
	struct change_txn *txns;
	size_t nr;
	size_t next;
	char *origin;
	json_t *copy;
};

/* ---- changes ---------------------------------------------------------- */

void mv_change_list_free(struct mv_machine *m, struct mv_change_list *cl)
{
	size_t i, j;

	(void)m;
	if (!cl)
		return;
	for (i = 0; i < cl->nr; i++) {
		for (j = 0; j < cl->txns[i].nr; j++)
			free(cl->txns[i].ops[j].spec);
		free(cl->txns[i].ops);
	}
	free(cl->txns);
	free(cl->origin);
	json_decref(cl->copy);
	free(cl);
}

static bool is_change_field(const char *key)
{
	static const char *const fields[] = {
		"addr", "size", "offset", "value", "parent", "priority",
	};

	return mj_lookup_name(fields, 6, key) >= 0;
}

/* op and region, the op's own field, and addr/priority for add. */
static int check_change_keys(const struct ctx *c, json_t *obj, const char *path,
			     enum change_op op)
{
	const struct op_desc *d = &op_descs[op];
	const char *key;
	void *it;

	for (it = json_object_iter(obj); it;
	     it = json_object_iter_next(obj, it)) {
		key = json_object_iter_key(it);
		if (!strcmp(key, "op") || !strcmp(key, "region") ||
		    (d->field && !strcmp(key, d->field)) ||
		    (op == OP_ADD && mj_is_mapping_key(key)))
			continue;
		if (is_change_field(key))
			return mj_fail_key(c, -EINVAL, path, key,
					   "\"%s\" does not apply to op \"%s\"",
					   key, d->name);
		return mj_fail_key(c, -EINVAL, path, key, "unknown key");
	}
	return 0;
}

static int parse_change_op(const struct ctx *c, json_t *obj, const char *path,
			   struct change *ch)
{
	const char *name = NULL;
	int i, ret;

	ret = mj_check_object(c, obj, path, "a change");
	if (!ret)
		ret = mj_get_string(c, obj, path, "op", true, &name);
	if (ret)
		return ret;
	for (i = 0; i < OP_COUNT; i++) {
		if (!strcmp(op_descs[i].name, name)) {
			ch->op = (enum change_op)i;
			return check_change_keys(c, obj, path, ch->op);
		}
	}
	return mj_fail_key(c, -EINVAL, path, "op", "unknown op \"%.*s\"", SHOW,
			   name);
}

/* An `add` that defines a new region: validate and record its id. */
static int parse_change_new_region(struct load *l, json_t *obj,
				   struct change *ch)
{
	struct region_spec *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return mj_fail_nomem(&l->c);
	ch->spec = s;
	snprintf(s->where, sizeof(s->where), "$.changes[%zu][%zu].region",
		 ch->txn, ch->idx);
	ret = mj_parse_region(&l->c, obj, s, true);
	if (!ret && s->target)
		ret = mj_resolve_id(l, s->where, "target", s->target, &s->tgt);
	if (!ret)
		ret = mj_define_id(l, s);
	ch->region = s->id;
	return ret;
}

/* `region`: the id of a region defined earlier, or for add a new one. */
static int parse_change_region(struct load *l, json_t *obj, const char *path,
			       struct change *ch)
{
	const struct op_desc *d = &op_descs[ch->op];
	char got[GOT_LEN], types[80];
	struct region_spec *s;
	json_t *v;
	int ret;

	ret = mj_member(&l->c, obj, path, "region", true, &v);
	if (ret)
		return ret;
	if (ch->op == OP_ADD && json_is_object(v))
		return parse_change_new_region(l, v, ch);
	if (!json_is_string(v))
		return mj_fail_key(&l->c, -EINVAL, path, "region",
				   "expected a region id%s, got %s",
				   ch->op == OP_ADD ? " or a region object" :
						      "",
				   mj_describe(v, got, sizeof(got)));
	ch->region = json_string_value(v);
	ret = mj_resolve_id(l, path, "region", ch->region, &s);
	if (!ret && !(d->types & (1u << s->type)))
		ret = mj_fail_key(
			&l->c, -EINVAL, path, "region",
			"op \"%s\" is for %s regions, not %s \"%.*s\"", d->name,
			mj_type_list(d->types, types, sizeof(types)),
			mj_rtype_names[s->type], SHOW, ch->region);
	return ret;
}

/* The op's value: addr, size, offset, value, or add's parent/addr/prio. */
static int parse_change_value(struct load *l, json_t *obj, const char *path,
			      struct change *ch)
{
	const struct ctx *c = &l->c;
	int ret;

	switch (ch->op) {
	case OP_MOVE:
		return mj_get_number(c, obj, path, "addr", true, NUM_ADDR,
				     &ch->value);
	case OP_RESIZE:
		return mj_get_number(c, obj, path, "size", true, NUM_SIZE,
				     &ch->value);
	case OP_ALIAS_OFFSET:
		return mj_get_number(c, obj, path, "offset", true, NUM_OFFSET,
				     &ch->value);
	case OP_READONLY:
	case OP_NONVOLATILE:
	case OP_ROMD:
		return mj_get_bool(c, obj, path, "value", true, &ch->flag);
	case OP_ADD:
		ret = mj_get_string(c, obj, path, "parent", true, &ch->parent);
		if (!ret)
			ret = mj_resolve_parent(l, path, ch->parent);
		if (!ret)
			ret = mj_get_number(c, obj, path, "addr", false,
					    NUM_ADDR, &ch->value);
		if (!ret)
			ret = mj_get_priority(c, obj, path, "priority",
					      &ch->priority);
		return ret;
	default:
		return 0;
	}
}

static int parse_txn(struct load *l, json_t *arr, size_t t,
		     struct change_txn *txn)
{
	char path[PATH_LEN], got[GOT_LEN];
	struct change *ch;
	json_t *obj;
	size_t i;
	int ret;

	snprintf(path, sizeof(path), "$.changes[%zu]", t);
	if (!json_is_array(arr))
		return mj_fail(&l->c, -EINVAL, path,
			       "expected a transaction (an array of changes), "
			       "got %s",
			       mj_describe(arr, got, sizeof(got)));
	txn->ops = calloc(json_array_size(arr) + 1, sizeof(*txn->ops));
	if (!txn->ops)
		return mj_fail_nomem(&l->c);
	for (i = 0; i < json_array_size(arr); i++) {
		obj = json_array_get(arr, i);
		ch = &txn->ops[txn->nr++];
		ch->txn = t;
		ch->idx = i;
		snprintf(path, sizeof(path), "$.changes[%zu][%zu]", t, i);
		ret = parse_change_op(&l->c, obj, path, ch);
		if (!ret)
			ret = parse_change_region(l, obj, path, ch);
		if (!ret)
			ret = parse_change_value(l, obj, path, ch);
		if (ret)
			return ret;
	}
	return 0;
}

/* Validate a copy of the changes, which the change list keeps. */
int mj_parse_changes(struct load *l, json_t *changes)
{
	struct mv_change_list *cl;
	json_t *arr, *txn;
	size_t i;
	int ret;

	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return mj_fail_nomem(&l->c);
	l->cl = cl;
	cl->copy = arr = json_deep_copy(changes);
	cl->origin = strdup(l->c.origin);
	cl->txns = calloc(json_array_size(changes) + 1, sizeof(*cl->txns));
	if (!arr || !cl->origin || !cl->txns)
		return mj_fail_nomem(&l->c);
	for (i = 0; i < json_array_size(arr); i++) {
		txn = json_array_get(arr, i);
		ret = parse_txn(l, txn, i, &cl->txns[cl->nr++]);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- applying changes --------------------------------------------------- */

static int apply_setter(const struct change *ch, struct mv_region *r)
{
	switch (ch->op) {
	case OP_ENABLE:
		return mv_region_set_enabled(r, true);
	case OP_DISABLE:
		return mv_region_set_enabled(r, false);
	case OP_MOVE:
		return mv_region_set_address(r, ch->value);
	case OP_RESIZE:
		return mv_region_set_size(r, ch->value);
	case OP_ALIAS_OFFSET:
		return mv_region_set_alias_offset(r, ch->value);
	case OP_READONLY:
		return mv_region_set_readonly(r, ch->flag);
	case OP_NONVOLATILE:
		return mv_region_set_nonvolatile(r, ch->flag);
	case OP_ROMD:
		return mv_region_rom_device_set_romd(r, ch->flag);
	default:
		return -EINVAL;
	}
}

static int apply_remove(const struct ctx *c, const char *path,
			const struct change *ch, struct mv_region *r)
{
	struct mv_region *parent = mv_region_container(r);
	int ret;

	if (!parent)
		return mj_fail(c, -ENOENT, path, "\"%.*s\" is not mapped", SHOW,
			       ch->region);
	ret = mv_region_del_subregion(parent, r);
	if (ret)
		return mj_fail(c, ret, path, "cannot remove \"%.*s\": %s", SHOW,
			       ch->region, strerror(-ret));
	return 0;
}

static int apply_op(const struct ctx *c, struct mv_machine *m,
		    const struct change *ch)
{
	char path[PATH_LEN];
	struct mv_region *r;
	int ret;

	snprintf(path, sizeof(path), "$.changes[%zu][%zu]", ch->txn, ch->idx);
	if (ch->spec) {
		ret = mj_create_region(c, m, ch->spec);
		if (ret)
			return ret;
	}
	r = mv_machine_find_region(m, ch->region);
	if (!r)
		return mj_fail_key(c, -ENOENT, path, "region",
				   "no region with id \"%.*s\"", SHOW,
				   ch->region);
	if (ch->op == OP_ADD)
		return mj_map_region(c, m, path, ch->region, ch->parent,
				     ch->value, ch->priority);
	if (ch->op == OP_REMOVE)
		return apply_remove(c, path, ch, r);
	ret = apply_setter(ch, r);
	if (ret)
		return mj_fail(c, ret, path, "%s \"%.*s\" failed: %s",
			       op_descs[ch->op].name, SHOW, ch->region,
			       strerror(-ret));
	return 0;
}

size_t mv_machine_pending_changes(const struct mv_machine *m)
{
	const struct mv_change_list *cl = m->changes;

	return cl ? cl->nr - cl->next : 0;
}

int mv_machine_apply_change(struct mv_machine *m, struct mv_error *err)
{
	struct mv_change_list *cl = m->changes;
	struct ctx c = { .origin = cl ? cl->origin : "machine", .err = err };
	const struct change_txn *txn;
	char path[PATH_LEN];
	int ret = 0, cret;
	size_t i;

	if (!cl || cl->next == cl->nr)
		return mj_fail(&c, -ENOENT, NULL, "no change left to apply");
	snprintf(path, sizeof(path), "$.changes[%zu]", cl->next);
	txn = &cl->txns[cl->next++];
	mv_txn_begin(m);
	for (i = 0; i < txn->nr && !ret; i++)
		ret = apply_op(&c, m, &txn->ops[i]);
	cret = mv_txn_commit(m);
	if (!ret && cret)
		ret = mj_fail(&c, cret, path, "cannot render the change: %s",
			      strerror(-cret));
	return ret;
}
