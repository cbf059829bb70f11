/* SPDX-License-Identifier: MIT */
/*
 * Allocation with per-context failure injection: tests make the n-th
 * allocation of one context fail to walk every error path, without any
 * process-global state.
 */
#ifndef MV_UTIL_ALLOC_H
#define MV_UTIL_ALLOC_H

#include <stddef.h>

/*
 * struct mv_alloc - @fail_after counts allocations still allowed to
 * succeed; negative means injection is off.
 */
struct mv_alloc {
	long fail_after;
};

void mv_alloc_init(struct mv_alloc *a);
void *mv_alloc_malloc(struct mv_alloc *a, size_t size);
void *mv_alloc_zalloc(struct mv_alloc *a, size_t size);
void *mv_alloc_realloc(struct mv_alloc *a, void *p, size_t size);
char *mv_alloc_strdup(struct mv_alloc *a, const char *s);

#endif /* MV_UTIL_ALLOC_H */
