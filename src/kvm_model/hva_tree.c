// SPDX-License-Identifier: MIT
/*
 * hva -> slots: the kernel's per-set interval tree, here a red-black tree
 * keyed by (hva start, id) and augmented with each subtree's largest hva
 * end, so "every slot meeting [first, last]" is O(log n + k).  hva ranges
 * may overlap (aliases are allowed).  libbsd's RB_AUGMENT only fixes the
 * nodes a rotation touches and the parent of an inserted or removed node,
 * so insert and remove finish by refreshing the path to the root.
 */
#include "internal.h"

/* tree.h expands RB_AUGMENT where RB_GENERATE is, so this one applies. */
static void augment(struct mvm_node *n);
#undef RB_AUGMENT
#define RB_AUGMENT(x) augment(x)

static int hva_cmp(const struct mvm_node *a, const struct mvm_node *b)
{
	uint64_t x = a->slot->hva, y = b->slot->hva;

	if (x != y)
		return x < y ? -1 : 1;
	if (a->slot->id != b->slot->id)
		return a->slot->id < b->slot->id ? -1 : 1;
	return 0;
}

/* The augmentation of @n from its own end and its children's. */
static uint64_t max_last(const struct mvm_node *n)
{
	const struct mvm_node *l = RB_LEFT(n, hva_entry),
			      *r = RB_RIGHT(n, hva_entry);
	uint64_t v = n->hva_last;

	if (l && l->hva_max_last > v)
		v = l->hva_max_last;
	if (r && r->hva_max_last > v)
		v = r->hva_max_last;
	return v;
}

static void augment(struct mvm_node *n)
{
	n->hva_max_last = max_last(n);
}

RB_PROTOTYPE(mvm_hva_tree, mvm_node, hva_entry, hva_cmp)
RB_GENERATE(mvm_hva_tree, mvm_node, hva_entry, hva_cmp)

static void augment_to_root(struct mvm_node *n)
{
	for (; n; n = RB_PARENT(n, hva_entry))
		augment(n);
}

void mvm_hva_insert(struct mvm_set *s, struct mvm_slot *slot)
{
	struct mvm_node *n = &slot->node[s->idx];

	n->hva_last = slot->hva + (slot->npages << MVM_PAGE_SHIFT) - 1;
	n->hva_max_last = n->hva_last;
	RB_INSERT(mvm_hva_tree, &s->hva_tree, n);
	augment_to_root(n);
}

void mvm_hva_erase(struct mvm_set *s, struct mvm_slot *slot)
{
	struct mvm_node *n = &slot->node[s->idx];
	struct mvm_node *from = RB_PARENT(n, hva_entry);

	if (RB_LEFT(n, hva_entry) && RB_RIGHT(n, hva_entry))
		from = NULL; /* RB_REMOVE refreshes the whole path itself */
	RB_REMOVE(mvm_hva_tree, &s->hva_tree, n);
	augment_to_root(from);
}

/*
 * In-order walk of the nodes meeting [@first, @last], pruning subtrees
 * whose max end is below @first and right subtrees starting after @last.
 */
static int walk(struct mvm_node *n, uint64_t first, uint64_t last,
		mv_kvm_model_slot_fn fn, void *opaque)
{
	struct mv_kvm_model_slot_info info;
	int ret;

	if (!n || n->hva_max_last < first)
		return 0;
	ret = walk(RB_LEFT(n, hva_entry), first, last, fn, opaque);
	if (ret)
		return ret;
	if (n->slot->hva > last)
		return 0;
	if (n->hva_last >= first) {
		mvm_slot_info(n->slot, &info);
		ret = fn(&info, opaque);
		if (ret)
			return ret;
	}
	return walk(RB_RIGHT(n, hva_entry), first, last, fn, opaque);
}

int mvm_hva_for_each(struct mvm_set *s, uint64_t first, uint64_t last,
		     mv_kvm_model_slot_fn fn, void *opaque)
{
	return walk(RB_ROOT(&s->hva_tree), first, last, fn, opaque);
}

static int check_node(struct mvm_node *n, const struct mvm_node **prev,
		      size_t *count)
{
	int ret;

	if (!n)
		return 0;
	ret = check_node(RB_LEFT(n, hva_entry), prev, count);
	if (ret)
		return ret;
	if (*prev && hva_cmp(*prev, n) >= 0)
		return -1;
	if (n->hva_last !=
		    n->slot->hva + (n->slot->npages << MVM_PAGE_SHIFT) - 1 ||
	    n->hva_max_last != max_last(n))
		return -1;
	*prev = n;
	(*count)++;
	return check_node(RB_RIGHT(n, hva_entry), prev, count);
}

int mvm_hva_check(struct mvm_set *s, size_t *count)
{
	const struct mvm_node *prev = NULL;

	*count = 0;
	return check_node(RB_ROOT(&s->hva_tree), &prev, count);
}
