// SPDX-License-Identifier: MIT
/*
 * The memslot listener (QEMU's KVMMemoryListener, kvm-all.c): flat ranges
 * become KVM memslots.  Which ranges and how (reference qemu-memory.md
 * §4.1):
 *   - RAM gets a read-write slot; ROM (readonly RAM) and ROM devices in
 *     romd mode a KVM_MEM_READONLY slot when the kernel has read-only
 *     memory (ROM without it: a writable slot, as QEMU; ROM devices: none);
 *     MMIO, port I/O and ROM devices outside romd mode get none.
 *   - A range's start is rounded up and its end down to the host page
 *     (kvm_align_section); what is left is cut in max_slot_size chunks.
 *   - KVM_MEM_LOG_DIRTY_PAGES follows the range's dirty-log mask.
 *
 * region_add/region_del/log_start/log_stop only queue, without k->lock
 * (internal.h says why that is safe); commit applies the queue under it,
 * in the order deletions, flag changes, creations -- QEMU 8's
 * "atomic memslot updates" ordering.  The kernel has no atomic multi-slot
 * update (kvm-memslots.md §1.3), so between a deletion and the creation
 * that replaces it a vCPU may find no slot: it takes an MMIO exit, which
 * the run loop dispatches through the new flat view, so the access still
 * lands in the right place, only slower.  The window lasts from the first
 * deletion ioctl to the last creation ioctl of one commit.
 *
 * Dirty bits are never lost: a logging slot's log is fetched before it is
 * deleted or its LOG flag is cleared.
 *
 * A failed creation at commit leaves that range without a slot (served by
 * MMIO exits, still correct) and the commit returns the error; the table
 * always mirrors what the kernel has.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOTS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOTS_ASAN 1
#endif
#endif
#ifdef SLOTS_ASAN
#include <sanitizer/asan_interface.h>
#define SPARE_POISON(p) ASAN_POISON_MEMORY_REGION(p, sizeof(*(p)))
#define SPARE_UNPOISON(p) ASAN_UNPOISON_MEMORY_REGION(p, sizeof(*(p)))
#else
#define SPARE_POISON(p) ((void)(p))
#define SPARE_UNPOISON(p) ((void)(p))
#endif

int mv_kvm_slot_cmp(const struct mv_kvm_slot *a, const struct mv_kvm_slot *b)
{
	return a->gpa < b->gpa ? -1 : a->gpa > b->gpa;
}

/* The same order, inlined into the tree's generated code. */
static inline int slot_cmp(const struct mv_kvm_slot *a,
			   const struct mv_kvm_slot *b)
{
	return a->gpa < b->gpa ? -1 : a->gpa > b->gpa;
}

RB_GENERATE(mv_kvm_slot_tree, mv_kvm_slot, node, slot_cmp)

/* ---- the index by exact start ------------------------------------------ */

static size_t gpa_hash(const struct mv_kvm_space *sp, mv_gpa_t gpa)
{
	uint64_t h = (gpa >> 12 ^ gpa << 52) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32 ^ h) & sp->gpa_mask;
}

static void gpa_put(struct mv_kvm_space *sp, struct mv_kvm_slot *s)
{
	size_t i = gpa_hash(sp, s->gpa);

	while (sp->by_gpa[i])
		i = (i + 1) & sp->gpa_mask;
	sp->by_gpa[i] = s;
}

/* Room for @n slots at most half full; may rehash. */
static int gpa_reserve(struct mv_kvm_space *sp, size_t n)
{
	struct mv_kvm_slot **old = sp->by_gpa;
	size_t old_size = old ? sp->gpa_mask + 1 : 0, size = 64, i;

	if (2 * n <= old_size)
		return 0;
	while (size < 2 * n)
		size *= 2;
	sp->by_gpa = calloc(size, sizeof(*sp->by_gpa));
	if (!sp->by_gpa) {
		sp->by_gpa = old;
		return -ENOMEM;
	}
	sp->gpa_mask = size - 1;
	for (i = 0; i < old_size; i++)
		if (old[i])
			gpa_put(sp, old[i]);
	free(old);
	return 0;
}

/* The slot starting exactly at @gpa, or NULL. */
static struct mv_kvm_slot *gpa_find(const struct mv_kvm_space *sp, mv_gpa_t gpa)
{
	size_t i;

	if (!sp->by_gpa)
		return NULL;
	for (i = gpa_hash(sp, gpa); sp->by_gpa[i]; i = (i + 1) & sp->gpa_mask)
		if (sp->by_gpa[i]->gpa == gpa)
			return sp->by_gpa[i];
	return NULL;
}

/* Remove @s (present), shifting back the entries probed past it. */
static void gpa_remove(struct mv_kvm_space *sp, const struct mv_kvm_slot *s)
{
	size_t mask = sp->gpa_mask, i = gpa_hash(sp, s->gpa), j;

	while (sp->by_gpa[i] != s) {
		if (!sp->by_gpa[i])
			return; /* not indexed */
		i = (i + 1) & mask;
	}
	sp->by_gpa[i] = NULL;
	for (j = (i + 1) & mask; sp->by_gpa[j]; j = (j + 1) & mask) {
		size_t home = gpa_hash(sp, sp->by_gpa[j]->gpa);

		/* The entry at j moves to the hole at i unless its home
		 * lies in the cyclic interval (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			sp->by_gpa[i] = sp->by_gpa[j];
			sp->by_gpa[j] = NULL;
			i = j;
		}
	}
}

/* The slot holding @gpa, or NULL for a hole (never a neighbour). */
struct mv_kvm_slot *mv_kvm_space_find(struct mv_kvm_space *sp, mv_gpa_t gpa)
{
	struct mv_kvm_slot *n = RB_ROOT(&sp->tree), *best = NULL;

	while (n) {
		if (n->gpa <= gpa) {
			best = n;
			n = RB_RIGHT(n, node);
		} else {
			n = RB_LEFT(n, node);
		}
	}
	if (best && gpa - best->gpa < best->size)
		return best;
	return NULL;
}

/* ---- slot ids ------------------------------------------------------- */

static int id_alloc(struct mv_kvm_space *sp, unsigned *id)
{
	unsigned n = sp->k->nr_slots, i = sp->id_hint;

	while (i < n) {
		uint64_t w = ~sp->id_used[i / 64] >> (i % 64);

		if (w) {
			i += (unsigned)__builtin_ctzll(w);
			break;
		}
		i = (i / 64 + 1) * 64;
	}
	if (i >= n)
		return -ENOSPC;
	sp->id_used[i / 64] |= 1ull << (i % 64);
	sp->id_hint = i + 1;
	*id = i;
	return 0;
}

static void id_free(struct mv_kvm_space *sp, unsigned id)
{
	sp->id_used[id / 64] &= ~(1ull << (id % 64));
	if (id < sp->id_hint)
		sp->id_hint = id;
}

/* ---- the kernel side ------------------------------------------------- */

/* KVM_SET_USER_MEMORY_REGION for @s with @flags and @size (0: delete). */
static int slot_ioctl(struct mv_kvm *k, unsigned as_id,
		      const struct mv_kvm_slot *s, uint32_t flags,
		      uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = s->id | as_id << 16,
		.flags = flags,
		.guest_phys_addr = s->gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)s->hva,
	};
	long ret;

	if (k->closing)
		return 0;
	ret = mv_kvm_ioctl(k->sys, k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
	return ret < 0 ? (int)ret : 0;
}

/* Release @s; @sp (NULL: free it) keeps one for the next slot_create(). */
static void slot_free(struct mv_kvm_space *sp, struct mv_kvm_slot *s)
{
	mv_region_unref(s->mr);
	free(s->bitmap);
	if (sp && !sp->spare) {
		SPARE_POISON(s);
		sp->spare = s;
		return;
	}
	free(s);
}

static int slot_delete(struct mv_kvm_space *sp, struct mv_kvm_slot *s)
{
	struct mv_kvm *k = sp->k;
	int ret = 0;

	if (s->flags & KVM_MEM_LOG_DIRTY_PAGES && !k->closing)
		ret = mv_kvm_slot_fetch_dirty(k, sp, s);
	if (!ret)
		ret = slot_ioctl(k, sp->as_id, s, s->flags, 0);
	if (ret)
		return ret; /* the kernel still has it: so do we */
	RB_REMOVE(mv_kvm_slot_tree, &sp->tree, s);
	gpa_remove(sp, s);
	sp->by_id[s->id] = NULL;
	id_free(sp, s->id);
	sp->nr--;
	k->stats.slot_deletes++;
	slot_free(sp, s);
	return 0;
}

static int slot_set_flags(struct mv_kvm_space *sp, struct mv_kvm_slot *s,
			  uint32_t flags)
{
	struct mv_kvm *k = sp->k;
	bool log_on = flags & KVM_MEM_LOG_DIRTY_PAGES;
	int ret = 0;

	if (flags == s->flags)
		return 0;
	if (s->flags & KVM_MEM_LOG_DIRTY_PAGES && !log_on)
		ret = mv_kvm_slot_fetch_dirty(k, sp, s);
	if (!ret && log_on && !s->bitmap)
		ret = mv_kvm_slot_alloc_bitmap(k, s);
	if (!ret)
		ret = slot_ioctl(k, sp->as_id, s, flags, s->size);
	if (ret)
		return ret;
	s->flags = flags;
	if (!log_on) {
		free(s->bitmap);
		s->bitmap = NULL;
	}
	k->stats.slot_flag_changes++;
	return 0;
}

static int slot_create(struct mv_kvm_space *sp, const struct mv_kvm_slot *tmpl)
{
	struct mv_kvm *k = sp->k;
	struct mv_kvm_slot *s = sp->spare;
	int ret;

	if (s) {
		SPARE_UNPOISON(s);
		sp->spare = NULL;
	} else if (!(s = malloc(sizeof(*s)))) {
		return -ENOMEM;
	}
	*s = *tmpl;
	s->bitmap = NULL;
	ret = gpa_reserve(sp, sp->nr + 1);
	if (ret)
		goto err_free;
	ret = id_alloc(sp, &s->id);
	if (ret)
		goto err_free;
	if (s->flags & KVM_MEM_LOG_DIRTY_PAGES) {
		ret = mv_kvm_slot_alloc_bitmap(k, s);
		if (ret)
			goto err_id;
	}
	ret = slot_ioctl(k, sp->as_id, s, s->flags, s->size);
	if (ret)
		goto err_id;
	mv_region_ref(s->mr);
	if (!RB_INSERT(mv_kvm_slot_tree, &sp->tree, s))
		gpa_put(sp, s);
	sp->by_id[s->id] = s;
	sp->nr++;
	k->stats.slot_creates++;
	return 0;
err_id:
	id_free(sp, s->id);
err_free:
	free(s->bitmap);
	free(s);
	return ret;
}

/* ---- sections to slots ------------------------------------------------ */

/*
 * What slot, if any, a section gets: kvm_set_phys_mem()'s filter plus
 * kvm_mem_flags().  Return: true with *@flags set when it gets one.
 * Inlined into the listener callbacks; mv_kvm_section_flags() is it for
 * the other files (the library is built -fPIC, so the exported function
 * itself is never inlined).
 */
static inline bool section_flags(const struct mv_kvm *k,
				 const struct mv_section *sec, uint32_t *flags)
{
	enum mv_region_kind kind = mv_region_kind(sec->mr);
	/* kvm_mem_flags() asks the region, not the range: a read-only
	 * alias of RAM still gets a writable slot in QEMU 7.2. */
	bool readonly = mv_region_readonly(sec->mr);

	if (kind == MV_REGION_ROM_DEVICE) {
		if (!k->readonly_mem || !sec->romd_mode)
			return false;
		readonly = true;
	} else if (kind != MV_REGION_RAM) {
		return false;
	}
	*flags = 0;
	if (sec->dirty_log_mask)
		*flags |= KVM_MEM_LOG_DIRTY_PAGES;
	if (readonly && k->readonly_mem)
		*flags |= KVM_MEM_READONLY;
	return true;
}

/*
 * kvm_align_section(): the host-page-aligned part of @sec, as a template
 * slot (gpa, size, hva, mr, offset; the rest zero).  Return: false if
 * nothing is left.  Inlined as section_flags() is.
 */
static inline bool section_align(const struct mv_kvm *k,
				 const struct mv_section *sec,
				 struct mv_kvm_slot *t)
{
	uint64_t mask = k->page_size - 1;
	uint64_t size = sec->last - sec->first + 1;
	uint64_t delta = (k->page_size - (sec->first & mask)) & mask;
	uint64_t offset = sec->offset_within_region + delta;
	uint8_t *host = mv_region_ram_ptr(sec->mr);

	if (!host || sec->last - sec->first == UINT64_MAX || delta >= size)
		return false;
	size = (size - delta) & ~mask;
	if (!size)
		return false;
	*t = (struct mv_kvm_slot){
		.gpa = sec->first + delta,
		.size = size,
		.hva = host + offset,
		.mr = sec->mr,
		.offset_within_region = offset,
	};
	return true;
}

bool mv_kvm_section_flags(const struct mv_kvm *k, const struct mv_section *sec,
			  uint32_t *flags)
{
	return section_flags(k, sec, flags);
}

bool mv_kvm_section_align(const struct mv_kvm *k, const struct mv_section *sec,
			  struct mv_kvm_slot *t)
{
	return section_align(k, sec, t);
}

/* Cut @t into the next max_slot_size chunk; advances @t. */
struct mv_kvm_slot mv_kvm_next_chunk(const struct mv_kvm *k,
				     struct mv_kvm_slot *t)
{
	struct mv_kvm_slot c = *t;

	if (c.size > k->max_slot_size)
		c.size = k->max_slot_size;
	t->gpa += c.size;
	t->hva = (uint8_t *)t->hva + c.size;
	t->offset_within_region += c.size;
	t->size -= c.size;
	return c;
}

/* ---- the queue -------------------------------------------------------- */

/* A new change of @kind at the end of the queue for the caller to fill. */
static inline struct mv_kvm_change *queue_push(struct mv_kvm_space *sp,
					       enum mv_kvm_change_kind kind)
{
	struct mv_kvm_change *c;

	if (sp->nr_queue == sp->queue_cap) {
		size_t cap = sp->queue_cap ? 2 * sp->queue_cap : 16;
		struct mv_kvm_change *q;

		q = realloc(sp->queue, cap * sizeof(*q));
		if (!q)
			return NULL;
		sp->queue = q;
		sp->queue_cap = cap;
	}
	c = &sp->queue[sp->nr_queue++];
	c->kind = kind;
	if (kind == MV_KVM_ADD)
		sp->nr_queued_adds++;
	else if (kind == MV_KVM_DEL)
		sp->nr_queued_dels++;
	return c;
}

/* Keeps the order of the rest: creations take ids in region_add order. */
static void queue_drop(struct mv_kvm_space *sp, size_t i)
{
	if (sp->queue[i].kind == MV_KVM_ADD)
		sp->nr_queued_adds--;
	else if (sp->queue[i].kind == MV_KVM_DEL)
		sp->nr_queued_dels--;
	else
		sp->queue[i].slot->flags_queued = false;
	sp->nr_queue--;
	memmove(&sp->queue[i], &sp->queue[i + 1],
		(sp->nr_queue - i) * sizeof(*sp->queue));
}

/* The queued flag change of slot @s, or -1. */
static ssize_t queue_find_flags(const struct mv_kvm_space *sp,
				const struct mv_kvm_slot *s)
{
	size_t i;

	if (!s->flags_queued) /* no scan: deleting N slots stays O(N log N) */
		return -1;
	for (i = 0; i < sp->nr_queue; i++)
		if (sp->queue[i].kind == MV_KVM_FLAGS && sp->queue[i].slot == s)
			return (ssize_t)i;
	return -1;
}

/* A queued change of @kind for exactly the range of @c, or -1. */
static ssize_t queue_find(const struct mv_kvm_space *sp,
			  enum mv_kvm_change_kind kind,
			  const struct mv_kvm_slot *c)
{
	size_t i;

	for (i = 0; i < sp->nr_queue; i++) {
		const struct mv_kvm_change *q = &sp->queue[i];
		const struct mv_kvm_slot *s = kind == MV_KVM_ADD ? &q->add :
								   q->slot;

		if (q->kind == kind && s->gpa == c->gpa && s->size == c->size)
			return (ssize_t)i;
	}
	return -1;
}

static bool same_mapping(const struct mv_kvm_slot *a,
			 const struct mv_kvm_slot *b)
{
	return a->gpa == b->gpa && a->size == b->size && a->hva == b->hva &&
	       a->mr == b->mr && a->flags == b->flags &&
	       a->offset_within_region == b->offset_within_region;
}

static int queue_add(struct mv_kvm_space *sp, const struct mv_kvm_slot *c)
{
	struct mv_kvm_change *ch;
	ssize_t i;

	/* Re-adding what a queued deletion removes (a rollback, or a
	 * del/add pair that changed nothing for KVM): keep the slot. */
	if (sp->nr_queued_dels) {
		i = queue_find(sp, MV_KVM_DEL, c);
		if (i >= 0 && same_mapping(sp->queue[i].slot, c)) {
			sp->queue[i].slot->dying = false;
			queue_drop(sp, (size_t)i);
			return 0;
		}
	}
	if (sp->nr + sp->nr_queued_adds - sp->nr_queued_dels >= sp->k->nr_slots)
		return -ENOSPC; /* QEMU: "no free slot available" */
	ch = queue_push(sp, MV_KVM_ADD);
	if (!ch)
		return -ENOMEM;
	ch->add = *c;
	return 0;
}

static int queue_del(struct mv_kvm_space *sp, const struct mv_kvm_slot *c)
{
	struct mv_kvm_change *ch;
	struct mv_kvm_slot *s;
	ssize_t i;

	if (sp->nr_queued_adds) {
		i = queue_find(sp, MV_KVM_ADD, c);
		if (i >= 0) { /* never reached the kernel */
			queue_drop(sp, (size_t)i);
			return 0;
		}
	}
	s = gpa_find(sp, c->gpa);
	if (!s || s->size != c->size || s->dying)
		return 0; /* QEMU: "Unregistering non-existent slot" */
	/* A flag change queued before (log_stop + region_del when a
	 * listener goes) dies with the slot, whose log the deletion
	 * fetches anyway; applied after it, it would use a freed slot. */
	i = queue_find_flags(sp, s);
	if (i >= 0)
		queue_drop(sp, (size_t)i);
	s->dying = true;
	ch = queue_push(sp, MV_KVM_DEL);
	if (!ch)
		return -ENOMEM;
	ch->slot = s;
	return 0;
}

static int queue_flags(struct mv_kvm_space *sp, const struct mv_kvm_slot *c)
{
	struct mv_kvm_change *ch;
	struct mv_kvm_slot *s;
	ssize_t i;

	if (sp->nr_queued_adds) {
		i = queue_find(sp, MV_KVM_ADD, c);
		if (i >= 0) {
			sp->queue[i].add.flags = c->flags;
			return 0;
		}
	}
	s = gpa_find(sp, c->gpa);
	if (!s || s->size != c->size || s->dying)
		return 0;
	/* One change per slot, the last wins: a rollback's log_stop must
	 * undo the log_start it follows. */
	i = queue_find_flags(sp, s);
	if (i >= 0) {
		sp->queue[i].new_flags = c->flags;
		return 0;
	}
	ch = queue_push(sp, MV_KVM_FLAGS);
	if (!ch)
		return -ENOMEM;
	ch->slot = s;
	ch->new_flags = c->flags;
	s->flags_queued = true;
	return 0;
}

/*
 * for_each_chunk() for a section longer than max_slot_size: @fn for each
 * chunk of @t, and what a failing queue_add() leaves queued taken back.
 */
static int for_each_cut(struct mv_kvm_space *sp, const struct mv_section *sec,
			struct mv_kvm_slot *t,
			int (*fn)(struct mv_kvm_space *,
				  const struct mv_kvm_slot *))
{
	struct mv_kvm *k = sp->k;
	uint32_t flags = t->flags;
	struct mv_kvm_slot c;
	size_t done = 0;
	int ret = 0;

	while (t->size && !ret) {
		c = mv_kvm_next_chunk(k, t);
		ret = fn(sp, &c);
		done += !ret;
	}
	/* The rollback never takes back a region_add that failed, so the
	 * chunks it queued before failing are taken back here: the same
	 * chunks again, cut from the section anew. */
	if (ret && fn == queue_add && done) {
		section_align(k, sec, t);
		t->flags = flags;
		while (done--) {
			c = mv_kvm_next_chunk(k, t);
			queue_del(sp, &c);
		}
	}
	return ret;
}

/* Call @fn for each chunk of the slots @sec maps to. */
static int for_each_chunk(struct mv_kvm_space *sp, const struct mv_section *sec,
			  int (*fn)(struct mv_kvm_space *,
				    const struct mv_kvm_slot *),
			  int log)
{
	struct mv_kvm *k = sp->k;
	struct mv_kvm_slot t;
	uint32_t flags;

	if (!section_flags(k, sec, &flags) || !section_align(k, sec, &t))
		return 0;
	if (log >= 0)
		flags = (flags & ~KVM_MEM_LOG_DIRTY_PAGES) |
			(log ? KVM_MEM_LOG_DIRTY_PAGES : 0);
	t.flags = flags;
	/* No k->lock: the queue is the listener's own (internal.h).  One
	 * chunk, the common case: @t is it, and a failure leaves nothing
	 * queued to take back. */
	if (t.size <= k->max_slot_size)
		return fn(sp, &t);
	return for_each_cut(sp, sec, &t, fn);
}

static struct mv_kvm_space *to_space(struct mv_listener *l)
{
	return l->opaque;
}

static int on_region_add(struct mv_listener *l, const struct mv_section *s)
{
	return for_each_chunk(to_space(l), s, queue_add, -1);
}

static int on_region_del(struct mv_listener *l, const struct mv_section *s)
{
	return for_each_chunk(to_space(l), s, queue_del, -1);
}

static int on_log_start(struct mv_listener *l, const struct mv_section *s,
			unsigned old_mask, unsigned new_mask)
{
	(void)old_mask;
	return for_each_chunk(to_space(l), s, queue_flags, new_mask != 0);
}

static int on_log_sync(struct mv_listener *l, const struct mv_section *s)
{
	struct mv_kvm_space *sp = to_space(l);
	int ret;

	pthread_mutex_lock(&sp->k->lock);
	ret = mv_kvm_space_sync(sp->k, sp, s->first, s->last);
	pthread_mutex_unlock(&sp->k->lock);
	return ret;
}

/* Apply queued change @c.  Return: 0 or the failing call's error. */
static int change_apply(struct mv_kvm_space *sp, struct mv_kvm_change *c)
{
	int ret;

	if (c->kind == MV_KVM_DEL) {
		ret = slot_delete(sp, c->slot);
		if (ret)
			c->slot->dying = false;
	} else if (c->kind == MV_KVM_FLAGS) {
		c->slot->flags_queued = false;
		ret = slot_set_flags(sp, c->slot, c->new_flags);
	} else {
		ret = slot_create(sp, &c->add);
	}
	return ret;
}

/*
 * Apply a queue of several changes in the order deletions, flag changes,
 * creations.  Return: 0 or the first error; each change is tried.
 */
static int queue_apply(struct mv_kvm_space *sp)
{
	static const enum mv_kvm_change_kind order[] = { MV_KVM_DEL,
							 MV_KVM_FLAGS,
							 MV_KVM_ADD };
	size_t left[3]; /* of each kind: a pass ends after its last */
	int ret, first = 0;
	size_t i, o;

	left[MV_KVM_DEL] = sp->nr_queued_dels;
	left[MV_KVM_ADD] = sp->nr_queued_adds;
	left[MV_KVM_FLAGS] =
		sp->nr_queue - sp->nr_queued_adds - sp->nr_queued_dels;
	for (o = 0; o < 3; o++) {
		for (i = 0; left[order[o]]; i++) {
			struct mv_kvm_change *c = &sp->queue[i];

			if (c->kind != order[o])
				continue;
			left[order[o]]--;
			ret = change_apply(sp, c);
			if (ret && !first)
				first = ret;
		}
	}
	return first;
}

/* Apply the queue: deletions, flag changes, creations. */
static int on_commit(struct mv_listener *l)
{
	struct mv_kvm_space *sp = to_space(l);
	struct mv_kvm *k = sp->k;
	int ret;

	pthread_mutex_lock(&k->lock);
	/* One change, the common case, needs no ordering passes. */
	if (sp->nr_queue == 1)
		ret = change_apply(sp, &sp->queue[0]);
	else
		ret = queue_apply(sp);
	if (ret)
		k->stats.commit_errors++;
	sp->nr_queue = sp->nr_queued_adds = sp->nr_queued_dels = 0;
	pthread_mutex_unlock(&k->lock);
	return ret;
}

static const struct mv_listener_ops space_ops = {
	.region_add = on_region_add,
	.region_del = on_region_del,
	.log_start = on_log_start,
	.log_stop = on_log_start,
	.log_sync = on_log_sync,
	.commit = on_commit,
};

/* ---- address spaces ------------------------------------------------------ */

int mv_kvm_space_new(struct mv_kvm *k, struct mv_as *as, unsigned as_id,
		     struct mv_kvm_space **out)
{
	struct mv_kvm_space *sp = calloc(1, sizeof(*sp));

	if (!sp)
		return -ENOMEM;
	sp->k = k;
	sp->as = as;
	sp->as_id = as_id;
	RB_INIT(&sp->tree);
	sp->by_id = calloc(k->nr_slots, sizeof(*sp->by_id));
	sp->id_used = calloc((k->nr_slots + 63) / 64, sizeof(uint64_t));
	if (!sp->by_id || !sp->id_used) {
		mv_kvm_space_free(sp);
		return -ENOMEM;
	}
	sp->listener.ops = &space_ops;
	sp->listener.priority = 10; /* QEMU's kvm listener */
	sp->listener.name = "kvm-memslots";
	sp->listener.opaque = sp;
	*out = sp;
	return 0;
}

void mv_kvm_space_free(struct mv_kvm_space *sp)
{
	struct mv_kvm_slot *s, *tmp;

	if (!sp)
		return;
	RB_FOREACH_SAFE(s, mv_kvm_slot_tree, &sp->tree, tmp)
	{
		RB_REMOVE(mv_kvm_slot_tree, &sp->tree, s);
		slot_free(NULL, s);
	}
	if (sp->spare) {
		SPARE_UNPOISON(sp->spare);
		free(sp->spare);
	}
	free(sp->queue);
	free(sp->by_gpa);
	free(sp->by_id);
	free(sp->id_used);
	free(sp);
}

int mv_kvm_attach(struct mv_kvm *k, struct mv_as *as, unsigned as_id)
{
	struct mv_kvm_space *sp;
	long nr_as = mv_kvm_check_extension(k, KVM_CAP_MULTI_ADDRESS_SPACE);
	int ret;

	if (as_id >= MV_KVM_MAX_AS || (as_id && as_id >= nr_as))
		return -EINVAL;
	if (k->space[as_id])
		return -EBUSY;
	ret = mv_kvm_space_new(k, as, as_id, &sp);
	if (ret)
		return ret;
	k->space[as_id] = sp;
	ret = mv_listener_register(as, &sp->listener);
	if (ret) {
		k->space[as_id] = NULL;
		mv_kvm_space_free(sp);
	}
	return ret;
}

void mv_kvm_detach(struct mv_kvm *k, struct mv_as *as)
{
	unsigned i;

	for (i = 0; i < MV_KVM_MAX_AS; i++) {
		struct mv_kvm_space *sp = k->space[i];

		if (!sp || sp->as != as)
			continue;
		mv_listener_unregister(&sp->listener);
		k->space[i] = NULL;
		mv_kvm_space_free(sp);
	}
}
