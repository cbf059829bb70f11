// SPDX-License-Identifier: MIT
/*
 * Allocation wrappers with failure injection (see alloc.h).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void mv_alloc_init(struct mv_alloc *a)
{
	a->fail_after = -1;
}

/* True when this allocation must fail. */
static int should_fail(struct mv_alloc *a)
{
	if (!a || a->fail_after < 0)
		return 0;
	if (a->fail_after == 0)
		return 1;
	a->fail_after--;
	return 0;
}

void *mv_alloc_malloc(struct mv_alloc *a, size_t size)
{
	if (should_fail(a))
		return NULL;
	return malloc(size ? size : 1);
}

void *mv_alloc_zalloc(struct mv_alloc *a, size_t size)
{
	if (should_fail(a))
		return NULL;
	return calloc(1, size ? size : 1);
}

void *mv_alloc_realloc(struct mv_alloc *a, void *p, size_t size)
{
	if (should_fail(a))
		return NULL;
	return realloc(p, size ? size : 1);
}

char *mv_alloc_strdup(struct mv_alloc *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = mv_alloc_malloc(a, n);

	if (d)
		memcpy(d, s, n);
	return d;
}
