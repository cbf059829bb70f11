// SPDX-License-Identifier: MIT
/*
 * Machine description files (docs/machine-format.md), reading: typed JSON
 * members, the messages that name what is wrong by its JSON path, and the
 * document's top level and address spaces.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <memvirt/memory.h>

#include "machine_json_internal.h"

#define FORMAT_VERSION 1

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
__attribute__((format(printf, 4, 5))) int
mj_fail(const struct ctx *c, int ret, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, ret, path, NULL, fmt, ap);
	va_end(ap);
	return ret;
}

/* The same for the member @key of the object at @path. */
__attribute__((format(printf, 5, 6))) int mj_fail_key(const struct ctx *c,
						      int ret, const char *path,
						      const char *key,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, ret, path, key, fmt, ap);
	va_end(ap);
	return ret;
}

int mj_fail_nomem(const struct ctx *c)
{
	return mj_fail(c, -ENOMEM, NULL, "out of memory");
}

/* A short description of @v for "got ..." (@buf may be used). */
const char *mj_describe(const json_t *v, char *buf, size_t len)
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

/* ---- typed members ---------------------------------------------------- */

/* The member @key of @obj in *@v (NULL if absent and not @required). */
int mj_member(const struct ctx *c, json_t *obj, const char *path,
	      const char *key, bool required, json_t **v)
{
	*v = json_object_get(obj, key);
	if (!*v && required)
		return mj_fail(c, -EINVAL, path, "missing required key \"%s\"",
			       key);
	return 0;
}

#define JT(x) (1u << JSON_##x)

/*
 * The member @key of @obj in *@v as mj_member() gives it, which must be of
 * one of the json_type bits @types; @expected names them for the message.
 */
static int typed_member(const struct ctx *c, json_t *obj, const char *path,
			const char *key, bool required, unsigned types,
			const char *expected, json_t **v)
{
	char got[GOT_LEN];
	int ret;

	ret = mj_member(c, obj, path, key, required, v);
	if (ret || !*v || (types & (1u << json_typeof(*v))))
		return ret;
	return mj_fail_key(c, -EINVAL, path, key, "expected %s, got %s",
			   expected, mj_describe(*v, got, sizeof(got)));
}

/* Absent optional members leave *@out untouched, as do the ones below. */
int mj_get_string(const struct ctx *c, json_t *obj, const char *path,
		  const char *key, bool required, const char **out)
{
	json_t *v;
	int ret;

	ret = typed_member(c, obj, path, key, required, JT(STRING), "a string",
			   &v);
	if (!ret && v)
		*out = json_string_value(v);
	return ret;
}

int mj_get_bool(const struct ctx *c, json_t *obj, const char *path,
		const char *key, bool required, bool *out)
{
	json_t *v;
	int ret;

	ret = typed_member(c, obj, path, key, required, JT(TRUE) | JT(FALSE),
			   "true or false", &v);
	if (!ret && v)
		*out = json_is_true(v);
	return ret;
}

int mj_get_priority(const struct ctx *c, json_t *obj, const char *path,
		    const char *key, int *out)
{
	json_int_t i;
	json_t *v;
	int ret;

	ret = typed_member(c, obj, path, key, false, JT(INTEGER),
			   "an integer priority", &v);
	if (ret || !v)
		return ret;
	i = json_integer_value(v);
	if (i < INT_MIN || i > INT_MAX)
		return mj_fail_key(c, -EINVAL, path, key,
				   "priority %" JSON_INTEGER_FORMAT
				   " is out of the int range",
				   i);
	*out = (int)i;
	return 0;
}

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
		return mj_fail_key(c, -EINVAL, path, key,
				   "\"%.*s\" is out of range for %s", SHOW, s,
				   d->a_noun);
	if (ret)
		return mj_fail_key(c, -EINVAL, path, key,
				   "\"%.*s\" is not a valid %s", SHOW, s,
				   d->noun);
	return 0;
}

int mj_get_number(const struct ctx *c, json_t *obj, const char *path,
		  const char *key, bool required, enum num_kind kind,
		  uint64_t *out)
{
	const struct num_desc *d = &num_descs[kind];
	char got[GOT_LEN];
	json_t *v;
	int ret;

	ret = mj_member(c, obj, path, key, required, &v);
	if (ret || !v)
		return ret;
	if (json_is_string(v))
		return parse_number_string(c, v, path, key, kind, out);
	if (!json_is_integer(v))
		return mj_fail_key(c, -EINVAL, path, key,
				   "expected %s (integer or string such as "
				   "\"%s\"), got %s",
				   d->a_noun, d->example,
				   mj_describe(v, got, sizeof(got)));
	if (json_integer_value(v) < 0)
		return mj_fail_key(c, -EINVAL, path, key,
				   "%s must not be negative, got %s", d->noun,
				   mj_describe(v, got, sizeof(got)));
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_array(const struct ctx *c, json_t *obj, const char *path,
		     const char *key, bool required, json_t **out)
{
	return typed_member(c, obj, path, key, required, JT(ARRAY), "an array",
			    out);
}

int mj_check_object(const struct ctx *c, json_t *v, const char *path,
		    const char *what)
{
	char got[GOT_LEN];

	if (json_is_object(v))
		return 0;
	return mj_fail(c, -EINVAL, path, "expected %s object, got %s", what,
		       mj_describe(v, got, sizeof(got)));
}

/* Index of @s in the @n names of @names, or -1. */
int mj_lookup_name(const char *const *names, int n, const char *s)
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
		if (mj_lookup_name(known, n, key) < 0)
			return key;
	}
	return NULL;
}

/* ---- address spaces ---------------------------------------------------- */

static int parse_as(struct load *l, json_t *obj, struct as_spec *a)
{
	static const char *const keys[] = { "name", "root" };
	struct region_spec *root;
	const char *key;
	size_t i;
	int ret;

	ret = mj_check_object(&l->c, obj, a->where, "an address space");
	if (ret)
		return ret;
	key = unknown_key(obj, keys, 2);
	if (key)
		return mj_fail_key(&l->c, -EINVAL, a->where, key,
				   "unknown key");
	ret = mj_get_string(&l->c, obj, a->where, "name", true, &a->name);
	if (!ret)
		ret = mj_get_string(&l->c, obj, a->where, "root", true,
				    &a->root);
	if (!ret)
		ret = mj_resolve_id(l, a->where, "root", a->root, &root);
	for (i = 0; !ret && &l->as[i] != a; i++)
		if (!strcmp(l->as[i].name, a->name))
			ret = mj_fail_key(&l->c, -EINVAL, a->where, "name",
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
		return mj_fail_nomem(&l->c);
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

	ret = mj_check_object(c, doc, "$", "a machine");
	if (ret)
		return ret;
	key = unknown_key(doc, keys, 5);
	if (key)
		return mj_fail_key(c, -EINVAL, "$", key, "unknown key");
	ret = mj_member(c, doc, "$", "memvirt-machine", true, &v);
	if (ret)
		return ret;
	if (!json_is_integer(v) || json_integer_value(v) != FORMAT_VERSION)
		return mj_fail_key(
			c, -EINVAL, "$", "memvirt-machine",
			"unsupported format version %s (expected %d)",
			mj_describe(v, got, sizeof(got)), FORMAT_VERSION);
	return 0;
}

int mj_parse_document(struct load *l, json_t *doc)
{
	json_t *regions, *spaces, *changes = NULL;
	int ret;

	ret = check_top_keys(&l->c, doc);
	if (!ret)
		ret = mj_get_string(&l->c, doc, "$", "name", false, &l->name);
	if (!ret)
		ret = get_array(&l->c, doc, "$", "regions", true, &regions);
	if (!ret)
		ret = get_array(&l->c, doc, "$", "address_spaces", true,
				&spaces);
	if (!ret)
		ret = get_array(&l->c, doc, "$", "changes", false, &changes);
	if (!ret)
		ret = mj_parse_regions(l, regions);
	if (!ret)
		ret = parse_address_spaces(l, spaces);
	if (!ret && changes)
		ret = mj_parse_changes(l, changes);
	return ret;
}
