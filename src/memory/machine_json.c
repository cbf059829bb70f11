// SPDX-License-Identifier: MIT
/*
 * Machine description files (docs/machine-format.md): the whole jansson
 * document is validated first, then the machine is built through the public
 * memory API in one transaction, and the parsed change transactions are kept
 * for mv_machine_apply_change().
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <memvirt/memory.h>

#include "internal.h"
#include "machine_json.h"

#define FORMAT_VERSION 1
#define PATH_LEN 64 /* "$.changes[N][N].region" with room to spare */
#define SHOW 40	    /* characters of a user string quoted in a message */

enum rtype {
	RT_CONTAINER,
	RT_RAM,
	RT_ROM,
	RT_ROM_DEVICE,
	RT_IO,
	RT_RESERVATION,
	RT_ALIAS,
	RT_COUNT,
};

static const char *const rtype_names[RT_COUNT] = {
	"container", "ram", "rom", "rom_device", "io", "reservation", "alias",
};

#define T(x) (1u << RT_##x)
#define T_ALL ((1u << RT_COUNT) - 1)
#define T_RAMLIKE (T(RAM) | T(ROM) | T(ROM_DEVICE))

/*
 * struct region_spec - one validated region object.  Strings point into the
 * document, or for regions `add` changes define, into the change list's
 * copy of the changes.
 * @where: the object's JSON path.
 * @tgt: the alias target's spec (regions array only), NULL otherwise.
 * @scheduled, @mark: creation order and alias-cycle walk state.
 */
struct region_spec {
	char where[PATH_LEN];
	const char *id, *name, *owner, *parent, *target;
	enum rtype type;
	uint64_t size, addr, offset;
	int priority;
	bool enabled, readonly, nonvolatile, romd;
	const struct mv_region_ops *ops;
	struct mv_ram_opts ram;
	struct region_spec *tgt;
	bool scheduled;
	unsigned char mark;
};

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

/* Where messages go: "ORIGIN: PATH: what is wrong". */
struct ctx {
	const char *origin;
	struct mv_error *err;
};

struct as_spec {
	char where[PATH_LEN];
	const char *name, *root;
};

/*
 * struct load - the state of one load.
 * @ids: id -> index in @all, every region defined so far (regions array,
 *	 then the regions `add` changes define, in document order).
 */
struct load {
	struct ctx c;
	json_t *ids;
	struct region_spec **all;
	size_t nr_all, cap_all;
	struct region_spec *specs;
	size_t nr_specs;
	struct as_spec *as;
	size_t nr_as;
	struct mv_change_list *cl;
};

/* ---- messages -------------------------------------------------------- */

__attribute__((format(printf, 5, 0))) static int
vfail(const struct ctx *c, int ret, const char *path, const char *key,
      const char *fmt, va_list ap)
{
	char what[400];

	if (!c->err)
		return ret;
	vsnprintf(what, sizeof(what), fmt, ap);
	if (!path)
		snprintf(c->err->msg, sizeof(c->err->msg), "%s: %s", c->origin,
			 what);
	else if (!key)
		snprintf(c->err->msg, sizeof(c->err->msg), "%s: %s: %s",
			 c->origin, path, what);
	else
		snprintf(c->err->msg, sizeof(c->err->msg), "%s: %s.%s: %s",
			 c->origin, path, key, what);
	return ret;
}

/* Fill the error for the value at @path and return @ret. */
__attribute__((format(printf, 4, 5))) static int
fail(const struct ctx *c, int ret, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, ret, path, NULL, fmt, ap);
	va_end(ap);
	return ret;
}

/* The same for the member @key of the object at @path. */
__attribute__((format(printf, 5, 6))) static int
fail_key(const struct ctx *c, int ret, const char *path, const char *key,
	 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, ret, path, key, fmt, ap);
	va_end(ap);
	return ret;
}

static int fail_nomem(const struct ctx *c)
{
	return fail(c, -ENOMEM, NULL, "out of memory");
}

/* A short description of @v for "got ..." (@buf may be used). */
static const char *describe(const json_t *v, char *buf, size_t len)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		snprintf(buf, len, "\"%.*s%s\"", SHOW, json_string_value(v),
			 json_string_length(v) > SHOW ? "..." : "");
		return buf;
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return buf;
	case JSON_REAL:
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return "null";
	}
}

#define GOT_LEN (SHOW + 8)

/* ---- typed members ---------------------------------------------------- */

/* The member @key of @obj in *@v (NULL if absent and not @required). */
static int member(const struct ctx *c, json_t *obj, const char *path,
		  const char *key, bool required, json_t **v)
{
	*v = json_object_get(obj, key);
	if (!*v && required)
		return fail(c, -EINVAL, path, "missing required key \"%s\"",
			    key);
	return 0;
}

/* Absent optional members leave *@out untouched, as do the ones below. */
static int get_string(const struct ctx *c, json_t *obj, const char *path,
		      const char *key, bool required, const char **out)
{
	char got[GOT_LEN];
	json_t *v;
	int ret;

	ret = member(c, obj, path, key, required, &v);
	if (ret || !v)
		return ret;
	if (!json_is_string(v))
		return fail_key(c, -EINVAL, path, key,
				"expected a string, got %s",
				describe(v, got, sizeof(got)));
	*out = json_string_value(v);
	return 0;
}

static int get_bool(const struct ctx *c, json_t *obj, const char *path,
		    const char *key, bool required, bool *out)
{
	char got[GOT_LEN];
	json_t *v;
	int ret;

	ret = member(c, obj, path, key, required, &v);
	if (ret || !v)
		return ret;
	if (!json_is_boolean(v))
		return fail_key(c, -EINVAL, path, key,
				"expected true or false, got %s",
				describe(v, got, sizeof(got)));
	*out = json_is_true(v);
	return 0;
}

static int get_priority(const struct ctx *c, json_t *obj, const char *path,
			const char *key, int *out)
{
	char got[GOT_LEN];
	json_int_t i;
	json_t *v;

	v = json_object_get(obj, key);
	if (!v)
		return 0;
	if (!json_is_integer(v))
		return fail_key(c, -EINVAL, path, key,
				"expected an integer priority, got %s",
				describe(v, got, sizeof(got)));
	i = json_integer_value(v);
	if (i < INT_MIN || i > INT_MAX)
		return fail_key(c, -EINVAL, path, key,
				"priority %" JSON_INTEGER_FORMAT
				" is out of the int range",
				i);
	*out = (int)i;
	return 0;
}

enum num_kind {
	NUM_SIZE,
	NUM_ADDR,
	NUM_OFFSET
};

static const struct num_desc {
	const char *noun, *a_noun, *example;
} num_descs[] = {
	[NUM_SIZE] = { "size", "a size", "512M" },
	[NUM_ADDR] = { "address", "an address", "0xfe000000" },
	[NUM_OFFSET] = { "offset", "an offset", "0x1000" },
};

/*
 * Whether the size string @s that overflowed mv_parse_size() means exactly
 * 2^64 = 16 EiB: the same digits with the E suffix read as K give 16 KiB.
 */
static bool size_is_2_64(const char *s)
{
	char buf[64];
	uint64_t v;
	char *e;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	e = strrchr(buf, 'E');
	if (!e)
		e = strrchr(buf, 'e');
	if (!e)
		return false;
	*e = 'K';
	return !mv_parse_size(buf, 1, &v) && v == 16 * 1024;
}

static int parse_number_string(const struct ctx *c, json_t *v, const char *path,
			       const char *key, enum num_kind kind,
			       uint64_t *out)
{
	const struct num_desc *d = &num_descs[kind];
	const char *s = json_string_value(v);
	int ret;

	ret = mv_parse_size(s, 1, out);
	if (ret == -ERANGE && kind == NUM_SIZE && size_is_2_64(s)) {
		*out = MV_SIZE_2_64;
		return 0;
	}
	if (ret == -ERANGE)
		return fail_key(c, -EINVAL, path, key,
				"\"%.*s\" is out of range for %s", SHOW, s,
				d->a_noun);
	if (ret)
		return fail_key(c, -EINVAL, path, key,
				"\"%.*s\" is not a valid %s", SHOW, s, d->noun);
	return 0;
}

static int get_number(const struct ctx *c, json_t *obj, const char *path,
		      const char *key, bool required, enum num_kind kind,
		      uint64_t *out)
{
	const struct num_desc *d = &num_descs[kind];
	char got[GOT_LEN];
	json_t *v;
	int ret;

	ret = member(c, obj, path, key, required, &v);
	if (ret || !v)
		return ret;
	if (json_is_string(v))
		return parse_number_string(c, v, path, key, kind, out);
	if (!json_is_integer(v))
		return fail_key(c, -EINVAL, path, key,
				"expected %s (integer or string such as "
				"\"%s\"), got %s",
				d->a_noun, d->example,
				describe(v, got, sizeof(got)));
	if (json_integer_value(v) < 0)
		return fail_key(c, -EINVAL, path, key,
				"%s must not be negative, got %s", d->noun,
				describe(v, got, sizeof(got)));
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_array(const struct ctx *c, json_t *obj, const char *path,
		     const char *key, bool required, json_t **out)
{
	char got[GOT_LEN];
	int ret;

	ret = member(c, obj, path, key, required, out);
	if (ret || !*out || json_is_array(*out))
		return ret;
	return fail_key(c, -EINVAL, path, key, "expected an array, got %s",
			describe(*out, got, sizeof(got)));
}

static int check_object(const struct ctx *c, json_t *v, const char *path,
			const char *what)
{
	char got[GOT_LEN];

	if (json_is_object(v))
		return 0;
	return fail(c, -EINVAL, path, "expected %s object, got %s", what,
		    describe(v, got, sizeof(got)));
}

/* Index of @s in the @n names of @names, or -1. */
static int lookup_name(const char *const *names, int n, const char *s)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

/* The first key of the object @obj not among the @n @known, or NULL. */
static const char *unknown_key(json_t *obj, const char *const *known, int n)
{
	const char *key;
	void *it;

	for (it = json_object_iter(obj); it;
	     it = json_object_iter_next(obj, it)) {
		key = json_object_iter_key(it);
		if (lookup_name(known, n, key) < 0)
			return key;
	}
	return NULL;
}

/* ---- region ids --------------------------------------------------------- */

static struct region_spec *find_id(const struct load *l, const char *id)
{
	json_t *v = json_object_get(l->ids, id);

	return v ? l->all[json_integer_value(v)] : NULL;
}

/* Record @s under its id; ids are unique across the whole document. */
static int define_id(struct load *l, struct region_spec *s)
{
	const struct region_spec *first = find_id(l, s->id);
	struct region_spec **all;

	if (first)
		return fail_key(&l->c, -EINVAL, s->where, "id",
				"duplicate id \"%.*s\" (first defined at %s)",
				SHOW, s->id, first->where);
	if (l->nr_all == l->cap_all) {
		l->cap_all = l->cap_all ? 2 * l->cap_all : 16;
		all = realloc(l->all, l->cap_all * sizeof(*all));
		if (!all)
			return fail_nomem(&l->c);
		l->all = all;
	}
	if (json_object_set_new(l->ids, s->id,
				json_integer((json_int_t)l->nr_all)))
		return fail_nomem(&l->c);
	l->all[l->nr_all++] = s;
	return 0;
}

/* The spec of the region @id named by @key at @path, which must exist. */
static int resolve_id(struct load *l, const char *path, const char *key,
		      const char *id, struct region_spec **out)
{
	*out = find_id(l, id);
	if (*out)
		return 0;
	return fail_key(&l->c, -EINVAL, path, key, "no region with id \"%.*s\"",
			SHOW, id);
}

/* Resolve a mapping parent; aliases cannot have subregions. */
static int resolve_parent(struct load *l, const char *path, const char *id)
{
	struct region_spec *p;
	int ret;

	ret = resolve_id(l, path, "parent", id, &p);
	if (ret)
		return ret;
	if (p->type == RT_ALIAS)
		return fail_key(&l->c, -EINVAL, path, "parent",
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
static const char *type_list(unsigned mask, char *buf, size_t len)
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
		n += (size_t)snprintf(buf + n, len - n, "%s%s", rtype_names[t],
				      sep);
	}
	return buf;
}

static bool is_mapping_key(const char *key)
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
			return fail_key(c, -EINVAL, s->where, key,
					"unknown key");
		if (!(k->types & (1u << s->type)))
			return fail_key(c, -EINVAL, s->where, key,
					"\"%s\" is for %s regions, not %s", key,
					type_list(k->types, types,
						  sizeof(types)),
					rtype_names[s->type]);
		if (in_change && is_mapping_key(key))
			return fail_key(c, -EINVAL, s->where, key,
					"give \"%s\" in the add change, not in "
					"the region object",
					key);
	}
	return 0;
}

static int parse_region_type(const struct ctx *c, json_t *obj,
			     struct region_spec *s)
{
	const char *type = NULL;
	int ret, t;

	ret = get_string(c, obj, s->where, "type", true, &type);
	if (ret)
		return ret;
	t = lookup_name(rtype_names, RT_COUNT, type);
	if (t < 0)
		return fail_key(c, -EINVAL, s->where, "type",
				"unknown type \"%.*s\" (expected container, "
				"ram, rom, rom_device, io, reservation or "
				"alias)",
				SHOW, type);
	s->type = (enum rtype)t;
	return 0;
}

/* The keys every region has. */
static int parse_region_base(const struct ctx *c, json_t *obj,
			     struct region_spec *s)
{
	const char *p = s->where;
	int ret;

	s->enabled = true;
	s->romd = true;
	ret = get_string(c, obj, p, "id", true, &s->id);
	if (!ret && !s->id[0])
		ret = fail_key(c, -EINVAL, p, "id", "must not be empty");
	if (!ret)
		ret = get_string(c, obj, p, "name", false, &s->name);
	if (!ret)
		ret = get_number(c, obj, p, "size", true, NUM_SIZE, &s->size);
	if (!ret)
		ret = get_bool(c, obj, p, "enabled", false, &s->enabled);
	if (!ret)
		ret = get_bool(c, obj, p, "readonly", false, &s->readonly);
	if (!ret)
		ret = get_bool(c, obj, p, "nonvolatile", false,
			       &s->nonvolatile);
	if (!ret)
		ret = get_string(c, obj, p, "owner", false, &s->owner);
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

	ret = get_string(c, obj, p, "parent", false, &s->parent);
	if (!ret)
		ret = get_number(c, obj, p, "addr", false, NUM_ADDR, &s->addr);
	if (!ret)
		ret = get_priority(c, obj, p, "priority", &s->priority);
	if (ret || s->parent)
		return ret;
	if (json_object_get(obj, "addr"))
		return fail_key(c, -EINVAL, p, "addr",
				"\"addr\" needs \"parent\"");
	if (json_object_get(obj, "priority"))
		return fail_key(c, -EINVAL, p, "priority",
				"\"priority\" needs \"parent\"");
	return 0;
}

static const char *const ops_names[] = { "none", "unassigned-io", "zero" };

static int parse_region_ops(const struct ctx *c, json_t *obj,
			    struct region_spec *s)
{
	const char *name = NULL;
	int ret;

	ret = get_string(c, obj, s->where, "ops", false, &name);
	if (ret || !name)
		return ret;
	switch (lookup_name(ops_names, 3, name)) {
	case 0:
		s->ops = NULL;
		return 0;
	case 1:
		s->ops = &mv_unassigned_io_ops;
		return 0;
	case 2:
		s->ops = &mv_zero_ops;
		return 0;
	}
	return fail_key(c, -EINVAL, s->where, "ops",
			"unknown ops \"%.*s\" (expected none, unassigned-io "
			"or zero)",
			SHOW, name);
}

/* Keys of one type only: alias target/offset, ops, romd, rom's readonly. */
static int parse_region_kind(const struct ctx *c, json_t *obj,
			     struct region_spec *s)
{
	const char *p = s->where;
	int ret;

	ret = get_string(c, obj, p, "target", s->type == RT_ALIAS, &s->target);
	if (!ret)
		ret = get_number(c, obj, p, "offset", false, NUM_OFFSET,
				 &s->offset);
	if (!ret)
		ret = parse_region_ops(c, obj, s);
	if (!ret)
		ret = get_bool(c, obj, p, "romd", false, &s->romd);
	if (ret)
		return ret;
	if (s->type == RT_ROM &&
	    json_is_false(json_object_get(obj, "readonly")))
		return fail_key(c, -EINVAL, p, "readonly",
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
	const char *name = NULL;
	int ret, b;

	ret = get_string(c, obj, s->where, "backend", false, &name);
	if (ret || !name)
		return ret;
	b = lookup_name(backend_names, 3, name);
	if (b < 0)
		return fail_key(c, -EINVAL, s->where, "backend",
				"unknown backend \"%.*s\" (expected anon, "
				"memfd or file)",
				SHOW, name);
	s->ram.backend = backends[b];
	return 0;
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
		ret = get_string(c, obj, p, "path", false, &o->path);
	if (!ret)
		ret = get_bool(c, obj, p, "share", false, &o->share);
	if (!ret)
		ret = get_bool(c, obj, p, "prealloc", false, &o->prealloc);
	if (!ret)
		ret = get_bool(c, obj, p, "thp", false, &o->thp);
	if (!ret)
		ret = get_number(c, obj, p, "max_size", false, NUM_SIZE,
				 &o->max_size);
	if (!ret)
		ret = get_string(c, obj, p, "block", false, &o->block_name);
	if (ret)
		return ret;
	if (o->backend == MV_RAM_FILE && !o->path)
		return fail(c, -EINVAL, p, "backend \"file\" needs \"path\"");
	if (o->backend != MV_RAM_FILE && o->path)
		return fail_key(c, -EINVAL, p, "path",
				"\"path\" needs backend \"file\"");
	if (json_object_get(obj, "max_size") && o->max_size < s->size)
		return fail_key(c, -EINVAL, p, "max_size",
				"\"max_size\" is smaller than \"size\"");
	return 0;
}

/* Validate the region object @obj at @s->where into @s. */
static int parse_region(const struct ctx *c, json_t *obj, struct region_spec *s,
			bool in_change)
{
	int ret;

	ret = check_object(c, obj, s->where, "a region");
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
	return fail_key(c, -EINVAL, entry->where, "target", "alias cycle: %s",
			chain);
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
			ret = resolve_parent(l, s->where, s->parent);
			if (ret)
				return ret;
		}
		if (s->target) {
			ret = resolve_id(l, s->where, "target", s->target,
					 &s->tgt);
			if (ret)
				return ret;
		}
	}
	return check_alias_cycles(l);
}

static int parse_regions(struct load *l, json_t *arr)
{
	struct region_spec *s;
	json_t *obj;
	size_t i;
	int ret;

	l->specs = calloc(json_array_size(arr) + 1, sizeof(*l->specs));
	if (!l->specs)
		return fail_nomem(&l->c);
	for (i = 0; i < json_array_size(arr); i++) {
		obj = json_array_get(arr, i);
		s = &l->specs[i];
		snprintf(s->where, sizeof(s->where), "$.regions[%zu]", i);
		ret = parse_region(&l->c, obj, s, false);
		if (!ret)
			ret = define_id(l, s);
		if (ret)
			return ret;
		l->nr_specs++;
	}
	return resolve_regions(l);
}

/* ---- address spaces ---------------------------------------------------- */

static int parse_as(struct load *l, json_t *obj, struct as_spec *a)
{
	static const char *const keys[] = { "name", "root" };
	struct region_spec *root;
	const char *key;
	size_t i;
	int ret;

	ret = check_object(&l->c, obj, a->where, "an address space");
	if (ret)
		return ret;
	key = unknown_key(obj, keys, 2);
	if (key)
		return fail_key(&l->c, -EINVAL, a->where, key, "unknown key");
	ret = get_string(&l->c, obj, a->where, "name", true, &a->name);
	if (!ret)
		ret = get_string(&l->c, obj, a->where, "root", true, &a->root);
	if (!ret)
		ret = resolve_id(l, a->where, "root", a->root, &root);
	for (i = 0; !ret && &l->as[i] != a; i++)
		if (!strcmp(l->as[i].name, a->name))
			ret = fail_key(&l->c, -EINVAL, a->where, "name",
				       "duplicate address space name "
				       "\"%.*s\" (first at %s)",
				       SHOW, a->name, l->as[i].where);
	return ret;
}

static int parse_address_spaces(struct load *l, json_t *arr)
{
	struct as_spec *a;
	json_t *obj;
	size_t i;
	int ret;

	l->as = calloc(json_array_size(arr) + 1, sizeof(*l->as));
	if (!l->as)
		return fail_nomem(&l->c);
	for (i = 0; i < json_array_size(arr); i++) {
		obj = json_array_get(arr, i);
		a = &l->as[i];
		snprintf(a->where, sizeof(a->where), "$.address_spaces[%zu]",
			 i);
		ret = parse_as(l, obj, a);
		if (ret)
			return ret;
		l->nr_as++;
	}
	return 0;
}

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

	return lookup_name(fields, 6, key) >= 0;
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
		    (op == OP_ADD && is_mapping_key(key)))
			continue;
		if (is_change_field(key))
			return fail_key(c, -EINVAL, path, key,
					"\"%s\" does not apply to op \"%s\"",
					key, d->name);
		return fail_key(c, -EINVAL, path, key, "unknown key");
	}
	return 0;
}

static int parse_change_op(const struct ctx *c, json_t *obj, const char *path,
			   struct change *ch)
{
	const char *name = NULL;
	int i, ret;

	ret = check_object(c, obj, path, "a change");
	if (!ret)
		ret = get_string(c, obj, path, "op", true, &name);
	if (ret)
		return ret;
	for (i = 0; i < OP_COUNT; i++) {
		if (!strcmp(op_descs[i].name, name)) {
			ch->op = (enum change_op)i;
			return check_change_keys(c, obj, path, ch->op);
		}
	}
	return fail_key(c, -EINVAL, path, "op", "unknown op \"%.*s\"", SHOW,
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
		return fail_nomem(&l->c);
	ch->spec = s;
	snprintf(s->where, sizeof(s->where), "$.changes[%zu][%zu].region",
		 ch->txn, ch->idx);
	ret = parse_region(&l->c, obj, s, true);
	if (!ret && s->target)
		ret = resolve_id(l, s->where, "target", s->target, &s->tgt);
	if (!ret)
		ret = define_id(l, s);
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

	ret = member(&l->c, obj, path, "region", true, &v);
	if (ret)
		return ret;
	if (ch->op == OP_ADD && json_is_object(v))
		return parse_change_new_region(l, v, ch);
	if (!json_is_string(v))
		return fail_key(&l->c, -EINVAL, path, "region",
				"expected a region id%s, got %s",
				ch->op == OP_ADD ? " or a region object" : "",
				describe(v, got, sizeof(got)));
	ch->region = json_string_value(v);
	ret = resolve_id(l, path, "region", ch->region, &s);
	if (!ret && !(d->types & (1u << s->type)))
		ret = fail_key(&l->c, -EINVAL, path, "region",
			       "op \"%s\" is for %s regions, not %s \"%.*s\"",
			       d->name,
			       type_list(d->types, types, sizeof(types)),
			       rtype_names[s->type], SHOW, ch->region);
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
		return get_number(c, obj, path, "addr", true, NUM_ADDR,
				  &ch->value);
	case OP_RESIZE:
		return get_number(c, obj, path, "size", true, NUM_SIZE,
				  &ch->value);
	case OP_ALIAS_OFFSET:
		return get_number(c, obj, path, "offset", true, NUM_OFFSET,
				  &ch->value);
	case OP_READONLY:
	case OP_NONVOLATILE:
	case OP_ROMD:
		return get_bool(c, obj, path, "value", true, &ch->flag);
	case OP_ADD:
		ret = get_string(c, obj, path, "parent", true, &ch->parent);
		if (!ret)
			ret = resolve_parent(l, path, ch->parent);
		if (!ret)
			ret = get_number(c, obj, path, "addr", false, NUM_ADDR,
					 &ch->value);
		if (!ret)
			ret = get_priority(c, obj, path, "priority",
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
		return fail(&l->c, -EINVAL, path,
			    "expected a transaction (an array of changes), "
			    "got %s",
			    describe(arr, got, sizeof(got)));
	txn->ops = calloc(json_array_size(arr) + 1, sizeof(*txn->ops));
	if (!txn->ops)
		return fail_nomem(&l->c);
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
static int parse_changes(struct load *l, json_t *changes)
{
	struct mv_change_list *cl;
	json_t *arr, *txn;
	size_t i;
	int ret;

	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return fail_nomem(&l->c);
	l->cl = cl;
	cl->copy = arr = json_deep_copy(changes);
	cl->origin = strdup(l->c.origin);
	cl->txns = calloc(json_array_size(changes) + 1, sizeof(*cl->txns));
	if (!arr || !cl->origin || !cl->txns)
		return fail_nomem(&l->c);
	for (i = 0; i < json_array_size(arr); i++) {
		txn = json_array_get(arr, i);
		ret = parse_txn(l, txn, i, &cl->txns[cl->nr++]);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- the document ------------------------------------------------------ */

static int check_top_keys(const struct ctx *c, json_t *doc)
{
	static const char *const keys[] = { "memvirt-machine", "name",
					    "regions", "address_spaces",
					    "changes" };
	const char *key;
	char got[GOT_LEN];
	json_t *v;
	int ret;

	ret = check_object(c, doc, "$", "a machine");
	if (ret)
		return ret;
	key = unknown_key(doc, keys, 5);
	if (key)
		return fail_key(c, -EINVAL, "$", key, "unknown key");
	ret = member(c, doc, "$", "memvirt-machine", true, &v);
	if (ret)
		return ret;
	if (!json_is_integer(v) || json_integer_value(v) != FORMAT_VERSION)
		return fail_key(c, -EINVAL, "$", "memvirt-machine",
				"unsupported format version %s (expected %d)",
				describe(v, got, sizeof(got)), FORMAT_VERSION);
	return 0;
}

static int parse_document(struct load *l, json_t *doc)
{
	json_t *regions, *spaces, *changes = NULL;
	const char *name = NULL;
	int ret;

	ret = check_top_keys(&l->c, doc);
	if (!ret)
		ret = get_string(&l->c, doc, "$", "name", false, &name);
	if (!ret)
		ret = get_array(&l->c, doc, "$", "regions", true, &regions);
	if (!ret)
		ret = get_array(&l->c, doc, "$", "address_spaces", true,
				&spaces);
	if (!ret)
		ret = get_array(&l->c, doc, "$", "changes", false, &changes);
	if (!ret)
		ret = parse_regions(l, regions);
	if (!ret)
		ret = parse_address_spaces(l, spaces);
	if (!ret && changes)
		ret = parse_changes(l, changes);
	return ret;
}

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
static int create_region(const struct ctx *c, struct mv_machine *m,
			 const struct region_spec *s)
{
	struct mv_region *target = NULL, *r;
	int ret;

	if (s->type == RT_ALIAS) {
		target = mv_machine_find_region(m, s->target);
		if (!target)
			return fail_key(c, -ENOENT, s->where, "target",
					"no region with id \"%.*s\"", SHOW,
					s->target);
	}
	ret = new_region(m, s, target, &r);
	if (ret)
		return fail(c, ret, s->where,
			    "cannot create %s region \"%.*s\": %s",
			    rtype_names[s->type], SHOW, s->id, strerror(-ret));
	ret = set_region_attrs(r, s);
	if (ret) {
		fail(c, ret, s->where, "cannot set up region \"%.*s\": %s",
		     SHOW, s->id, strerror(-ret));
		goto out_unref_region;
	}
	ret = mv_machine_register_region(m, s->id, r);
	if (ret)
		fail(c, ret, s->where, "cannot register region \"%.*s\": %s",
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
		ret = create_region(&l->c, m, s);
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
		return fail_nomem(&l->c);
	for (i = 0; i < l->nr_specs && !ret; i++) {
		s = &l->specs[i];
		if (s->scheduled || (s->tgt && !s->tgt->scheduled))
			continue;
		ret = create_with_aliases(l, m, i, queue);
	}
	free(queue);
	return ret;
}

static int map_region(const struct ctx *c, struct mv_machine *m,
		      const char *path, const char *id, const char *parent_id,
		      uint64_t addr, int priority)
{
	struct mv_region *parent = mv_machine_find_region(m, parent_id);
	struct mv_region *child = mv_machine_find_region(m, id);
	int ret;

	if (!parent)
		return fail_key(c, -ENOENT, path, "parent",
				"no region with id \"%.*s\"", SHOW, parent_id);
	ret = mv_region_add_subregion_overlap(parent, addr, child, priority);
	if (ret == -ELOOP)
		return fail(c, ret, path,
			    "adding \"%.*s\" to \"%.*s\" would make a cycle",
			    SHOW, id, SHOW, parent_id);
	if (ret == -EBUSY)
		return fail(c, ret, path,
			    "\"%.*s\" is already mapped; remove it first", SHOW,
			    id);
	if (ret)
		return fail(c, ret, path, "cannot add \"%.*s\" to \"%.*s\": %s",
			    SHOW, id, SHOW, parent_id, strerror(-ret));
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
		ret = map_region(&l->c, m, s->where, s->id, s->parent, s->addr,
				 s->priority);
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
			return fail(&l->c, ret, a->where,
				    "cannot create address space \"%.*s\": %s",
				    SHOW, a->name, strerror(-ret));
	}
	return 0;
}

/* Regions and mappings in one transaction, then the address spaces. */
static int build(struct load *l, struct mv_machine **out)
{
	struct mv_machine *m;
	int ret, cret;

	ret = mv_machine_new(&m);
	if (ret)
		return fail(&l->c, ret, NULL, "cannot create the machine: %s",
			    strerror(-ret));
	mv_txn_begin(m);
	ret = create_regions(l, m);
	if (!ret)
		ret = map_regions(l, m);
	cret = mv_txn_commit(m);
	if (!ret && cret)
		ret = fail(&l->c, cret, NULL, "cannot render the machine: %s",
			   strerror(-cret));
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
		return fail(c, -ENOENT, path, "\"%.*s\" is not mapped", SHOW,
			    ch->region);
	ret = mv_region_del_subregion(parent, r);
	if (ret)
		return fail(c, ret, path, "cannot remove \"%.*s\": %s", SHOW,
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
		ret = create_region(c, m, ch->spec);
		if (ret)
			return ret;
	}
	r = mv_machine_find_region(m, ch->region);
	if (!r)
		return fail_key(c, -ENOENT, path, "region",
				"no region with id \"%.*s\"", SHOW, ch->region);
	if (ch->op == OP_ADD)
		return map_region(c, m, path, ch->region, ch->parent, ch->value,
				  ch->priority);
	if (ch->op == OP_REMOVE)
		return apply_remove(c, path, ch, r);
	ret = apply_setter(ch, r);
	if (ret)
		return fail(c, ret, path, "%s \"%.*s\" failed: %s",
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
		return fail(&c, -ENOENT, NULL, "no change left to apply");
	snprintf(path, sizeof(path), "$.changes[%zu]", cl->next);
	txn = &cl->txns[cl->next++];
	mv_txn_begin(m);
	for (i = 0; i < txn->nr && !ret; i++)
		ret = apply_op(&c, m, &txn->ops[i]);
	cret = mv_txn_commit(m);
	if (!ret && cret)
		ret = fail(&c, cret, path, "cannot render the change: %s",
			   strerror(-cret));
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
		return fail_nomem(&l.c);
	ret = parse_document(&l, doc);
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
