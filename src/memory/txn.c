// SPDX-License-Identifier: MIT
/*
 * Transactions: nestable begin/commit; the outermost commit renders each
 * distinct flat-view root once and publishes the views, or, if a render
 * fails, publishes nothing and keeps the change pending (reference §3.4).
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

void mv_txn_begin(struct mv_machine *m)
{
	m->txn_depth++;
}

void mv_txn_mark_pending(struct mv_machine *m)
{
	m->update_pending = true;
}

/* One new view per address space; ASes with the same root share it. */
static int render_all(struct mv_machine *m, struct mv_flatview **views)
{
	struct mv_as *as;
	size_t i = 0, j;
	int ret;

	for (as = m->as_head; as; as = as->next, i++) {
		struct mv_region *root = mv_flatview_root_of(as->root);
		views[i] = NULL;
		for (j = 0; j < i; j++) {
			if (views[j] && views[j]->root == root) {
				mv_flatview_ref(views[j]);
				views[i] = views[j];
				break;
			}
		}
		if (views[i])
			continue;
		ret = mv_render(m, root, &views[i]);
		if (ret) {
			for (j = 0; j < i; j++)
				mv_flatview_unref(views[j]);
			return ret;
		}
	}
	return 0;
}

int mv_txn_commit(struct mv_machine *m)
{
	struct mv_flatview **views;
	struct mv_as *as;
	size_t nr_as = 0, i = 0;
	int ret;

	if (!m->txn_depth)
		return -EINVAL;
	if (--m->txn_depth || !m->update_pending)
		return 0;
	for (as = m->as_head; as; as = as->next)
		nr_as++;
	views = mv_malloc(m, (nr_as ? nr_as : 1) * sizeof(*views));
	if (!views)
		return -ENOMEM;
	ret = render_all(m, views);
	if (ret) {
		free(views);
		return ret;
	}
	for (as = m->as_head; as; as = as->next)
		mv_as_set_view(as, views[i++]);
	free(views);
	m->update_pending = false;
	m->stats.commits++;
	return 0;
}
