/* SPDX-License-Identifier: MIT */
/*
 * The candidates at one address, in render order (explain.c), shared with
 * the JSON mtree printer for each flat range's provenance.
 */
#ifndef MV_MEMORY_EXPLAIN_H
#define MV_MEMORY_EXPLAIN_H

#include <jansson.h>

#include "internal.h"

/* One step of a path: a region and where its window starts in the AS. */
struct mv_xstep {
	struct mv_region *mr;
	uint64_t start;
};

/*
 * struct mv_xcand - a region covering the address: the terminating region
 * at the end of @path, or (with @disabled) a disabled region whose
 * subtree was skipped.
 */
struct mv_xcand {
	struct mv_xstep *path;
	size_t depth;
	bool disabled;
	uint64_t offset;
	bool readonly;
	bool nonvolatile;
};

int mv_xcands_collect(struct mv_machine *m, struct mv_region *root,
		      uint64_t addr, struct mv_xcand **out, size_t *nr);
void mv_xcands_free(struct mv_xcand *cands, size_t nr);
/* The first enabled candidate: what the flat view holds, or NULL. */
const struct mv_xcand *mv_xcands_winner(const struct mv_xcand *c, size_t nr);
/* Why @w wins over @l, as one sentence. */
void mv_xcand_reason(const struct mv_xcand *w, const struct mv_xcand *l,
		     char *buf, size_t len);
json_t *mv_xcand_path_json(const struct mv_xcand *x);
json_t *mv_json_hex(uint64_t v);

#endif /* MV_MEMORY_EXPLAIN_H */
