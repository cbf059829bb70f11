// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for machine description files: load the bytes, check
 * every named view after the build and after each change, print the trees.
 * A failed load must explain itself; documents that would map a lot of RAM
 * or use file-backed RAM are skipped (see doc_cost()).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <memvirt/memory.h>

#define ORIGIN "fuzz"
#define CHANGE_PREFIX ORIGIN ": $.changes["
#define RAM_LIMIT (1ull << 30)
#define PREALLOC_FACTOR 64 /* populated RAM costs time: 16 MiB at most */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* A size as the loader reads it; unknown or huge reads as UINT64_MAX. */
static uint64_t size_of(const json_t *v)
{
	uint64_t n;

	if (json_is_integer(v))
		return json_integer_value(v) < 0 ? 0 : json_integer_value(v);
	if (json_is_string(v))
		return mv_parse_size(json_string_value(v), 1, &n) ? UINT64_MAX :
								    n;
	return 0;
}

static bool is_ram_free_type(const json_t *type)
{
	static const char *const types[] = { "container", "io", "reservation",
					     "alias" };
	size_t i;

	for (i = 0; json_is_string(type) && i < 4; i++)
		if (!strcmp(json_string_value(type), types[i]))
			return true;
	return false;
}

/*
 * What a value may cost in RAM: an object's own size and max_size unless
 * its type has no RAM (a change's "size" counts too), plus its members.  A
 * "path" (file backend) could touch any file: it costs everything.
 */
static uint64_t doc_cost(const json_t *v)
{
	uint64_t cost = 0, own = 0;
	size_t i;
	void *it;

	for (i = 0; json_is_array(v) && i < json_array_size(v); i++)
		cost = add_sat(cost, doc_cost(json_array_get(v, i)));
	if (!json_is_object(v))
		return cost;
	if (json_object_get(v, "path"))
		return UINT64_MAX;
	if (!is_ram_free_type(json_object_get(v, "type"))) {
		own = add_sat(size_of(json_object_get(v, "size")),
			      size_of(json_object_get(v, "max_size")));
		if (json_is_true(json_object_get(v, "prealloc")))
			own = own > UINT64_MAX / PREALLOC_FACTOR ?
				      UINT64_MAX :
				      own * PREALLOC_FACTOR;
	}
	for (it = json_object_iter((json_t *)v); it;
	     it = json_object_iter_next((json_t *)v, it))
		cost = add_sat(cost, doc_cost(json_object_iter_value(it)));
	return add_sat(cost, own);
}

/* Every address space the document names must have a sound view. */
static void check_views(struct mv_machine *m, const json_t *doc)
{
	const json_t *spaces = json_object_get(doc, "address_spaces");
	struct mv_flatview *fv;
	const json_t *name;
	struct mv_as *as;
	char why[128];
	size_t i;

	for (i = 0; i < json_array_size(spaces); i++) {
		name = json_object_get(json_array_get(spaces, i), "name");
		as = mv_machine_find_as(m, json_string_value(name));
		if (!as)
			abort();
		fv = mv_as_get_flatview(as);
		if (mv_flatview_check(fv, why, sizeof(why))) {
			fprintf(stderr, "bad view: %s\n", why);
			abort();
		}
		mv_flatview_unref(fv);
	}
}

static void print_trees(struct mv_machine *m)
{
	static const unsigned flags[] = { 0, MV_MTREE_FLAT,
					  MV_MTREE_DISABLED | MV_MTREE_OWNER };
	size_t len, i;
	char *text;
	FILE *f;

	for (i = 0; i < 3; i++) {
		text = NULL;
		f = open_memstream(&text, &len);
		if (!f)
			return;
		mv_mtree_print(m, f, flags[i]);
		mv_mtree_print_json(m, f, flags[i]);
		mv_ramblock_print(m, f);
		fclose(f);
		free(text);
	}
}

/* Load, apply every change (failures included), print, free. */
static void run(const char *text, const json_t *doc)
{
	struct mv_error err = { "" };
	struct mv_machine *m;

	if (mv_machine_load_string(text, ORIGIN, &m, &err)) {
		if (m || strncmp(err.msg, ORIGIN ":", strlen(ORIGIN ":")))
			abort();
		return;
	}
	check_views(m, doc);
	while (mv_machine_pending_changes(m)) {
		err.msg[0] = '\0';
		if (mv_machine_apply_change(m, &err) &&
		    strncmp(err.msg, CHANGE_PREFIX, strlen(CHANGE_PREFIX)))
			abort();
		check_views(m, doc);
	}
	print_trees(m);
	mv_machine_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	json_t *doc;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	doc = json_loads(text, 0, NULL);
	if (!doc || doc_cost(doc) <= RAM_LIMIT)
		run(text, doc);
	json_decref(doc);
	free(text);
	return 0;
}
