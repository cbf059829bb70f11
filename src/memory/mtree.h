/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the mtree printers (mtree.c, mtree_json.c, explain.c):
 * text blocks built in memstreams and sorted before output.
 */
#ifndef MV_MEMORY_MTREE_H
#define MV_MEMORY_MTREE_H

#include "internal.h"

struct mv_blocks {
	char **text;
	size_t nr, cap;
};

struct mv_block {
	FILE *f;
	char *text;
	size_t len;
};

int mv_blocks_add(struct mv_machine *m, struct mv_blocks *b, char *text);
void mv_blocks_free(struct mv_blocks *b);
void mv_blocks_sort(struct mv_blocks *b);
int mv_block_open(struct mv_block *blk);
/* Closes @blk; on success (@ret == 0) its text joins @out. */
int mv_block_close(struct mv_machine *m, struct mv_block *blk,
		   struct mv_blocks *out, int ret);
/* One flat-view range line, without the newline. */
void mv_print_flat_range(FILE *f, const struct mv_flat_range *r,
			 unsigned flags);

#endif /* MV_MEMORY_MTREE_H */
