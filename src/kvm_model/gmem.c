// SPDX-License-Identifier: MIT
/*
 * guest_memfd files as model objects (virt/kvm/guest_memfd.c): fds are
 * numbers the model hands out, each file has a size and a list of slot
 * bindings by page offset that never overlap (kvm_gmem_bind()).
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct mvm_gmem *mvm_gmem_find(struct mv_kvm_model *m, int fd)
{
	struct mvm_gmem *g;

	for (g = m->gmem; g; g = g->next)
		if (g->fd == fd)
			return g;
	return NULL;
}

int mv_kvm_model_gmem_create(struct mv_kvm_model *m, uint64_t size,
			     uint64_t flags, int *fd)
{
	struct mvm_gmem *g;

	if (!m->p.guest_memfd)
		return -ENOTTY;
	if (flags || !size || size % MVM_PAGE_SIZE || size >> 63)
		return -EINVAL;
	g = mvm_alloc(m, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->fd = m->next_gmem_fd++;
	g->size = size;
	g->next = m->gmem;
	m->gmem = g;
	*fd = g->fd;
	return 0;
}

int mv_kvm_model_gmem_close(struct mv_kvm_model *m, int fd)
{
	struct mvm_gmem **pp, *g;

	for (pp = &m->gmem; *pp; pp = &(*pp)->next) {
		if ((*pp)->fd != fd)
			continue;
		g = *pp;
		*pp = g->next;
		while (g->bindings) {
			struct mvm_slot *s = g->bindings;

			g->bindings = s->gmem_next;
			s->gmem = NULL;
			s->gmem_next = NULL;
		}
		free(g);
		return 0;
	}
	return -EBADF;
}

/*
 * kvm_gmem_bind(): the model knows only its own files, so a negative fd
 * is not an fd at all (EBADF) and any other number it did not hand out is
 * taken for an open file of another kind, or another VM's (EINVAL).  A
 * range of the file already bound to another slot is EINVAL too: the
 * kernel's xa_find() on the bindings fails with the function's -EINVAL
 * (kvm_pvm 6.18: gmem_binding_overlap; the reference says EEXIST, which
 * only a GPA overlap gives, before the bind).
 */
int mvm_gmem_bind(struct mv_kvm_model *m, struct mvm_slot *s, uint32_t fd,
		  uint64_t offset)
{
	uint64_t start = offset >> MVM_PAGE_SHIFT, end = start + s->npages;
	struct mvm_gmem *g;
	struct mvm_slot *b;

	if ((int32_t)fd < 0)
		return -EBADF;
	g = mvm_gmem_find(m, (int)fd);
	if (!g)
		return -EINVAL;
	if (offset >> 63 || offset % MVM_PAGE_SIZE ||
	    offset + (s->npages << MVM_PAGE_SHIFT) > g->size)
		return -EINVAL;
	for (b = g->bindings; b; b = b->gmem_next)
		if (start < b->gmem_pgoff + b->npages && b->gmem_pgoff < end)
			return -EINVAL;
	s->gmem = g;
	s->gmem_pgoff = start;
	s->gmem_next = g->bindings;
	g->bindings = s;
	return 0;
}

void mvm_gmem_unbind(struct mvm_slot *s)
{
	struct mvm_slot **pp;

	if (!s->gmem)
		return;
	for (pp = &s->gmem->bindings; *pp; pp = &(*pp)->gmem_next) {
		if (*pp == s) {
			*pp = s->gmem_next;
			break;
		}
	}
	s->gmem = NULL;
	s->gmem_next = NULL;
}

void mvm_gmem_free_all(struct mv_kvm_model *m)
{
	while (m->gmem)
		mv_kvm_model_gmem_close(m, m->gmem->fd);
}
