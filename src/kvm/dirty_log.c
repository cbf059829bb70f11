// SPDX-License-Identifier: MIT
/*
 * Dirty logging in bitmap mode: classic KVM_GET_DIRTY_LOG (snapshot and
 * clear in one call) or manual protect (GET copies, CLEAR re-protects),
 * reference kvm-memslots.md §2.1-2.2.  What the kernel reports goes into
 * the memory core's per-client bitmaps (mv_region_set_dirty_bitmap), as
 * QEMU's kvm_slot_sync_dirty_pages() feeds cpu_physical_memory_set_dirty_
 * lebitmap().  In ring mode the same entry points reap the rings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* KVM logs 4 KiB guest pages on x86 whatever the host page size. */
#define MV_KVM_DIRTY_PAGE 4096u

uint64_t mv_kvm_slot_npages(const struct mv_kvm_slot *s)
{
	return s->size / MV_KVM_DIRTY_PAGE;
}

/* ALIGN(npages, 64) / 8 bytes, as the kernel's dirty bitmap. */
static size_t bitmap_bytes(const struct mv_kvm_slot *s)
{
	return (mv_kvm_slot_npages(s) + 63) / 64 * 8;
}

int mv_kvm_slot_alloc_bitmap(struct mv_kvm *k, struct mv_kvm_slot *s)
{
	(void)k;
	s->bitmap = calloc(1, bitmap_bytes(s));
	return s->bitmap ? 0 : -ENOMEM;
}

static bool bitmap_any(const unsigned long *b, size_t bytes)
{
	size_t i;

	for (i = 0; i < bytes / sizeof(*b); i++)
		if (b[i])
			return true;
	return false;
}

/* GET (and in manual mode CLEAR) one slot's log into the core. */
static int fetch_bitmap(struct mv_kvm *k, struct mv_kvm_space *sp,
			struct mv_kvm_slot *s)
{
	uint32_t slot = s->id | sp->as_id << 16;
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = s->bitmap };
	uint64_t npages = mv_kvm_slot_npages(s);
	long ret;

	ret = mv_kvm_ioctl(k->sys, k->vm_fd, KVM_GET_DIRTY_LOG, &log);
	if (ret < 0)
		return (int)ret;
	k->stats.dirty_fetches++;
	if (!bitmap_any(s->bitmap, bitmap_bytes(s)))
		return 0;
	if (k->dirty_mode == MV_KVM_DIRTY_MANUAL) {
		struct kvm_clear_dirty_log clear = {
			.slot = slot,
			.num_pages = (uint32_t)npages,
			.first_page = 0,
			.dirty_bitmap = s->bitmap,
		};

		ret = mv_kvm_ioctl(k->sys, k->vm_fd, KVM_CLEAR_DIRTY_LOG,
				   &clear);
		if (ret < 0)
			return (int)ret;
	}
	mv_region_set_dirty_bitmap(s->mr, s->offset_within_region, s->bitmap,
				   npages);
	return 0;
}

int mv_kvm_slot_fetch_dirty(struct mv_kvm *k, struct mv_kvm_space *sp,
			    struct mv_kvm_slot *s)
{
	if (k->dirty_mode == MV_KVM_DIRTY_RING)
		return mv_kvm_rings_harvest(k);
	return fetch_bitmap(k, sp, s);
}

/* The first slot that ends after @gpa, or NULL. */
static struct mv_kvm_slot *first_from(struct mv_kvm_space *sp, mv_gpa_t gpa)
{
	struct mv_kvm_slot key = { .gpa = gpa }, *s;

	s = mv_kvm_space_find(sp, gpa);
	return s ? s : RB_NFIND(mv_kvm_slot_tree, &sp->tree, &key);
}

int mv_kvm_space_sync(struct mv_kvm *k, struct mv_kvm_space *sp, mv_gpa_t first,
		      mv_gpa_t last)
{
	struct mv_kvm_slot *s;
	int ret = 0;

	if (k->dirty_mode == MV_KVM_DIRTY_RING)
		return mv_kvm_rings_harvest(k);
	for (s = first_from(sp, first); s && s->gpa <= last && !ret;
	     s = RB_NEXT(mv_kvm_slot_tree, &sp->tree, s))
		if (s->flags & KVM_MEM_LOG_DIRTY_PAGES)
			ret = fetch_bitmap(k, sp, s);
	return ret;
}

int mv_kvm_dirty_harvest(struct mv_kvm *k)
{
	unsigned i;
	int ret = 0;

	pthread_mutex_lock(&k->lock);
	for (i = 0; i < MV_KVM_MAX_AS && !ret; i++)
		if (k->space[i])
			ret = mv_kvm_space_sync(k, k->space[i], 0, UINT64_MAX);
	pthread_mutex_unlock(&k->lock);
	return ret;
}
