/* SPDX-License-Identifier: MIT */
/*
 * What the machine file loader's parts share: the validated region and
 * address space specs, the state of one load, and the mj_ helpers that read
 * typed JSON members and word errors as "ORIGIN: $.path: what is wrong".
 */
#ifndef MV_MEMORY_MACHINE_JSON_INTERNAL_H
#define MV_MEMORY_MACHINE_JSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <memvirt/memory.h>

#define PATH_LEN 64 /* "$.changes[N][N].region" with room to spare */
#define SHOW 40	    /* characters of a user string quoted in a message */
#define GOT_LEN (SHOW + 8)

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

extern const char *const mj_rtype_names[RT_COUNT];

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
 * @name: the document's top-level "name", or NULL.
 * @ids: id -> index in @all, every region defined so far (regions array,
 *	 then the regions `add` changes define, in document order).
 */
struct load {
	struct ctx c;
	const char *name;
	json_t *ids;
	struct region_spec **all;
	size_t nr_all, cap_all;
	struct region_spec *specs;
	size_t nr_specs;
	struct as_spec *as;
	size_t nr_as;
	struct mv_change_list *cl;
};

/* ---- messages and typed members (machine_json_parse.c) -------------- */

/* Fill the error for the value at @path and return @ret. */
__attribute__((format(printf, 4, 5))) int
mj_fail(const struct ctx *c, int ret, const char *path, const char *fmt, ...);
/* The same for the member @key of the object at @path. */
__attribute__((format(printf, 5, 6))) int mj_fail_key(const struct ctx *c,
						      int ret, const char *path,
						      const char *key,
						      const char *fmt, ...);
int mj_fail_nomem(const struct ctx *c);
/* A short description of @v for "got ..." (@buf may be used). */
const char *mj_describe(const json_t *v, char *buf, size_t len);

enum num_kind {
	NUM_SIZE,
	NUM_ADDR,
	NUM_OFFSET
};

/*
 * Typed members of @obj at @path: 0 with *@out set, or 0 with *@out
 * untouched if absent and not @required, or -EINVAL with the error filled.
 */
int mj_member(const struct ctx *c, json_t *obj, const char *path,
	      const char *key, bool required, json_t **v);
int mj_get_string(const struct ctx *c, json_t *obj, const char *path,
		  const char *key, bool required, const char **out);
int mj_get_bool(const struct ctx *c, json_t *obj, const char *path,
		const char *key, bool required, bool *out);
int mj_get_priority(const struct ctx *c, json_t *obj, const char *path,
		    const char *key, int *out);
int mj_get_number(const struct ctx *c, json_t *obj, const char *path,
		  const char *key, bool required, enum num_kind kind,
		  uint64_t *out);
int mj_check_object(const struct ctx *c, json_t *v, const char *path,
		    const char *what);
/* Index of @s in the @n names of @names, or -1. */
int mj_lookup_name(const char *const *names, int n, const char *s);

/* Validate the whole document @doc into @l. */
int mj_parse_document(struct load *l, json_t *doc);

/* ---- regions (machine_json_region.c) ------------------------------------ */

/* Record @s under its id; ids are unique across the whole document. */
int mj_define_id(struct load *l, struct region_spec *s);
/* The spec of the region @id named by @key at @path, which must exist. */
int mj_resolve_id(struct load *l, const char *path, const char *key,
		  const char *id, struct region_spec **out);
/* Resolve a mapping parent; aliases cannot have subregions. */
int mj_resolve_parent(struct load *l, const char *path, const char *id);
/* "ram, rom or rom_device" for a mask of types. */
const char *mj_type_list(unsigned mask, char *buf, size_t len);
bool mj_is_mapping_key(const char *key);
/* Validate the region object @obj at @s->where into @s. */
int mj_parse_region(const struct ctx *c, json_t *obj, struct region_spec *s,
		    bool in_change);
/* The regions array, then every parent and alias target resolved. */
int mj_parse_regions(struct load *l, json_t *arr);

/* ---- changes (machine_json_apply.c) --------------------------------- */

/* Validate a copy of the changes into l->cl, which the machine keeps. */
int mj_parse_changes(struct load *l, json_t *changes);

/* ---- building (machine_json_build.c) -------------------------------- */

/* Create the region of @s and register it; the machine owns it. */
int mj_create_region(const struct ctx *c, struct mv_machine *m,
		     const struct region_spec *s);
/* Map the region @id into @parent_id; errors name @path. */
int mj_map_region(const struct ctx *c, struct mv_machine *m, const char *path,
		  const char *id, const char *parent_id, uint64_t addr,
		  int priority);

#endif /* MV_MEMORY_MACHINE_JSON_INTERNAL_H */
