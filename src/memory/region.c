// SPDX-License-Identifier: MIT
/*
 * Regions: constructors, reference counting, the subregion lists in QEMU's
 * order, and the setters, each wrapped in its own transaction with QEMU's
 * update_pending rules (reference §3.2).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int region_alloc(struct mv_machine *m, const char *name,
			enum mv_region_kind kind, uint64_t size,
			struct mv_region **out)
{
	struct mv_region *r;

	if (!m || !name || !out)
		return -EINVAL;
	r = mv_zalloc(m, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->name = mv_strdup(m, name);
	if (!r->name) {
		free(r);
		return -ENOMEM;
	}
	r->refcount = 1;
	r->machine = m;
	r->kind = kind;
	r->size = mv_size_from_api(size);
	r->enabled = true;
	r->romd_mode = true;
	r->terminates = kind != MV_REGION_CONTAINER && kind != MV_REGION_ALIAS;
	mv_machine_get(m);
	*out = r;
	return 0;
}

int mv_region_new_container(struct mv_machine *m, const char *name,
			    uint64_t size, struct mv_region **out)
{
	return region_alloc(m, name, MV_REGION_CONTAINER, size, out);
}

int mv_region_new_io(struct mv_machine *m, const char *name, uint64_t size,
		     const struct mv_region_ops *ops, void *opaque,
		     struct mv_region **out)
{
	int ret = region_alloc(m, name, MV_REGION_IO, size, out);

	if (ret)
		return ret;
	(*out)->ops = ops;
	(*out)->opaque = opaque;
	return 0;
}

int mv_region_new_reservation(struct mv_machine *m, const char *name,
			      uint64_t size, struct mv_region **out)
{
	return mv_region_new_io(m, name, size, NULL, NULL, out);
}

/* A region of @kind with a RAM block of @size bytes behind it. */
static int region_new_backed(struct mv_machine *m, const char *name,
			     enum mv_region_kind kind, uint64_t size,
			     const struct mv_ram_opts *opts,
			     struct mv_region **out)
{
	static const struct mv_ram_opts defaults;
	struct mv_region *r;
	int ret;

	if (!out)
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	ret = region_alloc(m, name, kind, size, &r);
	if (ret)
		return ret;
	ret = mv_ramblock_new(m, opts->block_name ? opts->block_name : name,
			      r->size, opts, &r->block);
	if (ret) {
		mv_region_unref(r);
		return ret;
	}
	r->block->mr = r;
	*out = r;
	return 0;
}

int mv_region_new_ram(struct mv_machine *m, const char *name, uint64_t size,
		      const struct mv_ram_opts *opts, struct mv_region **out)
{
	return region_new_backed(m, name, MV_REGION_RAM, size, opts, out);
}

int mv_region_new_rom(struct mv_machine *m, const char *name, uint64_t size,
		      const struct mv_ram_opts *opts, struct mv_region **out)
{
	int ret = region_new_backed(m, name, MV_REGION_RAM, size, opts, out);

	if (!ret)
		(*out)->readonly = true;
	return ret;
}

int mv_region_new_rom_device(struct mv_machine *m, const char *name,
			     uint64_t size, const struct mv_region_ops *ops,
			     void *opaque, const struct mv_ram_opts *opts,
			     struct mv_region **out)
{
	int ret = region_new_backed(m, name, MV_REGION_ROM_DEVICE, size, opts,
				    out);

	if (ret)
		return ret;
	(*out)->ops = ops;
	(*out)->opaque = opaque;
	return 0;
}

int mv_region_new_alias(struct mv_machine *m, const char *name,
			struct mv_region *target, uint64_t offset,
			uint64_t size, struct mv_region **out)
{
	struct mv_region **a;
	int ret;

	if (!target || target->machine != m)
		return -EINVAL;
	a = mv_realloc(m, target->aliases,
		       (target->nr_aliases + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	target->aliases = a;
	ret = region_alloc(m, name, MV_REGION_ALIAS, size, out);
	if (ret)
		return ret;
	a[target->nr_aliases++] = *out;
	mv_region_ref(target);
	(*out)->alias = target;
	(*out)->alias_offset = offset;
	return 0;
}

void mv_region_ref(struct mv_region *r)
{
	r->refcount++;
}

/* Forget @alias in its target's list of aliases. */
static void alias_unlink(struct mv_region *alias)
{
	struct mv_region *t = alias->alias;
	size_t i;

	for (i = 0; i < t->nr_aliases; i++) {
		if (t->aliases[i] == alias) {
			t->aliases[i] = t->aliases[--t->nr_aliases];
			return;
		}
	}
}

static void region_free(struct mv_region *r)
{
	struct mv_machine *m = r->machine;
	size_t i;

	for (i = 0; i < r->nr_children; i++) {
		r->children[i]->container = NULL;
		mv_region_unref(r->children[i]);
	}
	free(r->children);
	free(r->by_addr);
	free(r->aliases);
	if (r->alias) {
		alias_unlink(r);
		mv_region_unref(r->alias);
	}
	if (r->block)
		mv_ramblock_free(m, r->block);
	free(r->name);
	free(r->owner);
	free(r);
	mv_machine_put(m);
}

void mv_region_unref(struct mv_region *r)
{
	if (r && --r->refcount == 0)
		region_free(r);
}

void mv_region_ref_n(struct mv_region *r, long n)
{
	r->refcount += n;
}

void mv_region_unref_n(struct mv_region *r, long n)
{
	if (n && (r->refcount -= n) == 0)
		region_free(r);
}

/* ---- the subregion lists ----------------------------------------------- */

/*
 * Index at which @child enters the reversed list @parent->children.  QEMU
 * inserts before the first sibling whose priority is <= its own
 * (memory_region_update_container_subregions); reversed, that is after
 * every sibling whose priority is <= its own.
 */
static size_t prio_insert_pos(const struct mv_region *parent, int priority)
{
	size_t lo = 0, hi = parent->nr_children;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (parent->children[mid]->priority <= priority)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index after every child whose address is <= @addr. */
static size_t addr_insert_pos(const struct mv_region *parent, uint64_t addr)
{
	size_t lo = 0, hi = parent->nr_children;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (parent->by_addr[mid]->addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void array_insert(struct mv_region **a, size_t n, size_t pos,
			 struct mv_region *r)
{
	memmove(&a[pos + 1], &a[pos], (n - pos) * sizeof(*a));
	a[pos] = r;
}

static void array_remove(struct mv_region **a, size_t n, struct mv_region *r)
{
	size_t i;

	for (i = n; i-- > 0;) {
		if (a[i] == r) {
			memmove(&a[i], &a[i + 1], (n - i - 1) * sizeof(*a));
			return;
		}
	}
}

static bool takes_space(const struct mv_region *r)
{
	return r->enabled && r->size;
}

/*
 * Keep @parent's cached "children are disjoint" true across the insertion
 * of by_addr[pos] when it cannot overlap its nearest neighbours that take
 * space; the children are sorted by address, so no other can overlap.
 */
static void disjoint_after_insert(struct mv_region *parent, size_t pos)
{
	const struct mv_region *ch = parent->by_addr[pos];
	size_t i;

	if (!parent->disjoint_known || !parent->children_disjoint ||
	    !takes_space(ch))
		return;
	for (i = pos; i-- > 0;) {
		const struct mv_region *prev = parent->by_addr[i];

		if (!takes_space(prev))
			continue;
		if ((u128)prev->addr + prev->size > ch->addr)
			parent->children_disjoint = false;
		break;
	}
	for (i = pos + 1; i < parent->nr_children; i++) {
		const struct mv_region *next = parent->by_addr[i];

		if (!takes_space(next))
			continue;
		if ((u128)ch->addr + ch->size > next->addr)
			parent->children_disjoint = false;
		break;
	}
}

/* Link @child (capacity already reserved) at its QEMU list position. */
static void children_link(struct mv_region *parent, struct mv_region *child)
{
	size_t n = parent->nr_children,
	       pos = addr_insert_pos(parent, child->addr);

	array_insert(parent->children, n,
		     prio_insert_pos(parent, child->priority), child);
	array_insert(parent->by_addr, n, pos, child);
	parent->nr_children++;
	child->container = parent;
	child->seq = ++parent->machine->link_seq;
	if (child->size > parent->max_child_size)
		parent->max_child_size = child->size;
	disjoint_after_insert(parent, pos);
}

static void children_unlink(struct mv_region *parent, struct mv_region *child)
{
	array_remove(parent->children, parent->nr_children, child);
	array_remove(parent->by_addr, parent->nr_children, child);
	parent->nr_children--;
	/* Removing a child keeps disjoint children disjoint. */
	if (!parent->children_disjoint)
		parent->disjoint_known = false;
	child->container = NULL;
}

void mv_region_unlink(struct mv_region *parent, struct mv_region *child)
{
	children_unlink(parent, child);
}

/*
 * Link @child back where it was: the list is sorted by (priority, seq) in
 * its reversed storage, so a child keeping its old seq regains its old
 * place among equals.  Capacity is there: it was linked before.
 */
void mv_region_relink(struct mv_region *parent, struct mv_region *child,
		      uint64_t seq)
{
	size_t n = parent->nr_children, lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct mv_region *c = parent->children[mid];

		if (c->priority < child->priority ||
		    (c->priority == child->priority && c->seq < seq))
			lo = mid + 1;
		else
			hi = mid;
	}
	array_insert(parent->children, n, lo, child);
	array_insert(parent->by_addr, n, addr_insert_pos(parent, child->addr),
		     child);
	parent->nr_children++;
	parent->disjoint_known = false;
	child->container = parent;
	child->seq = seq;
}

/* Record how to undo a change to @r while a transaction is open. */
static void record(struct mv_region *r, enum mv_undo_op op,
		   struct mv_region *parent)
{
	struct mv_undo u = {
		.op = op,
		.r = r,
		.parent = parent,
		.addr = op == MV_UNDO_ALIAS_OFFSET ? r->alias_offset : r->addr,
		.priority = r->priority,
		.seq = r->seq,
		.size = r->size,
		.used_length = r->block ? r->block->used_length : 0,
		.mask = r->dirty_log_mask,
	};

	switch (op) {
	case MV_UNDO_ENABLED:
		u.flag = r->enabled;
		break;
	case MV_UNDO_READONLY:
		u.flag = r->readonly;
		break;
	case MV_UNDO_NONVOLATILE:
		u.flag = r->nonvolatile;
		break;
	case MV_UNDO_ROMD:
		u.flag = r->romd_mode;
		break;
	default:
		break;
	}
	if (r->machine->txn_depth)
		mv_txn_record(r->machine, &u);
}

static int children_reserve(struct mv_region *parent)
{
	struct mv_machine *m = parent->machine;
	size_t cap = parent->cap_children ? parent->cap_children * 2 : 4;
	struct mv_region **a, **b;

	if (parent->nr_children < parent->cap_children)
		return 0;
	a = mv_realloc(m, parent->children, cap * sizeof(*a));
	if (!a)
		return -ENOMEM;
	parent->children = a;
	b = mv_realloc(m, parent->by_addr, cap * sizeof(*b));
	if (!b)
		return -ENOMEM;
	parent->by_addr = b;
	parent->cap_children = cap;
	return 0;
}

/*
 * Whether @to can be reached from @from through children and alias
 * targets (an explicit stack: machine files may nest deeply).
 */
static int region_reaches(struct mv_region *from, struct mv_region *to,
			  bool *found)
{
	struct mv_machine *m = from->machine;
	struct mv_region **stack = NULL;
	size_t n = 0, cap = 0;
	unsigned gen = ++m->mark_gen;

	*found = false;
	if (!gen)
		gen = ++m->mark_gen; /* 0 means "never visited" */
	stack = mv_malloc(m, 16 * sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	cap = 16;
	stack[n++] = from;
	from->mark = gen;
	while (n && !*found) {
		struct mv_region *r = stack[--n];
		size_t need = n + r->nr_children + 1, i;

		if (r == to) {
			*found = true;
			break;
		}
		if (need > cap) {
			struct mv_region **s;

			s = mv_realloc(m, stack, need * 2 * sizeof(*s));
			if (!s) {
				free(stack);
				return -ENOMEM;
			}
			stack = s;
			cap = need * 2;
		}
		if (r->alias && r->alias->mark != gen) {
			r->alias->mark = gen;
			stack[n++] = r->alias;
		}
		for (i = 0; i < r->nr_children; i++) {
			if (r->children[i]->mark != gen) {
				r->children[i]->mark = gen;
				stack[n++] = r->children[i];
			}
		}
	}
	free(stack);
	return 0;
}

bool mv_region_is_view_root(const struct mv_region *r)
{
	const struct mv_as *as;

	for (as = r->machine->as_head; as; as = as->next)
		if (as->view && as->view->root == r)
			return true;
	return false;
}

/* The window a child at @addr covers in its parent changed. */
static void mark_child_window(struct mv_region *child, uint64_t addr)
{
	mv_txn_mark_dirty(child->machine, child->container, addr,
			  (u128)addr + child->size);
}

int mv_region_add_subregion_overlap(struct mv_region *parent, uint64_t offset,
				    struct mv_region *child, int priority)
{
	bool cycle;
	int ret;

	if (!parent || !child || parent->machine != child->machine ||
	    parent->kind == MV_REGION_ALIAS)
		return -EINVAL;
	if (child->container)
		return -EBUSY;
	ret = region_reaches(child, parent, &cycle);
	if (ret)
		return ret;
	if (cycle)
		return -ELOOP;
	ret = children_reserve(parent);
	if (ret)
		return ret;

	mv_txn_begin(parent->machine);
	mv_region_ref(child);
	record(child, MV_UNDO_LINK, parent); /* keeps its old addr/priority */
	/* A view root renders at its own address: all of it moves. */
	if (child->addr != offset && mv_region_is_view_root(child))
		mv_txn_mark_dirty_all(parent->machine);
	child->addr = offset;
	child->priority = priority;
	children_link(parent, child);
	mark_child_window(child, child->addr);
	if (parent->enabled && child->enabled)
		mv_txn_mark_pending(parent->machine);
	return mv_txn_commit(parent->machine);
}

int mv_region_add_subregion(struct mv_region *parent, uint64_t offset,
			    struct mv_region *child)
{
	return mv_region_add_subregion_overlap(parent, offset, child, 0);
}

int mv_region_del_subregion(struct mv_region *parent, struct mv_region *child)
{
	struct mv_machine *m;
	int ret;

	if (!parent || !child)
		return -EINVAL;
	if (child->container != parent)
		return -ENOENT;
	m = parent->machine;
	mv_txn_begin(m);
	record(child, MV_UNDO_UNLINK, parent);
	mark_child_window(child, child->addr);
	if (parent->enabled && child->enabled)
		mv_txn_mark_pending(m);
	children_unlink(parent, child);
	ret = mv_txn_commit(m);
	mv_region_unref(child);
	return ret;
}

/* ---- setters ------------------------------------------------------------ */

/* The parent's disjointness cache depends on each child's place and size. */
static void invalidate_parent(struct mv_region *r)
{
	if (r->container)
		r->container->disjoint_known = false;
}

/*
 * Keep the parent's disjointness cache across enabling @r: like an
 * insertion, only its nearest neighbours that take space can overlap it.
 */
static void disjoint_after_enable(struct mv_region *r)
{
	struct mv_region *parent = r->container;
	size_t pos;

	if (!parent)
		return;
	pos = parent->by_addr_hint; /* where its last render looked */
	if (pos < parent->nr_children && parent->by_addr[pos] == r) {
		disjoint_after_insert(parent, pos);
		return;
	}
	pos = addr_insert_pos(parent, r->addr);
	while (pos > 0 && parent->by_addr[pos - 1] != r)
		pos--;
	parent->by_addr_hint = pos ? pos - 1 : 0;
	if (!pos) { /* not found (cannot happen): recompute */
		parent->disjoint_known = false;
		return;
	}
	disjoint_after_insert(parent, pos - 1);
}

int mv_region_set_enabled(struct mv_region *r, bool enabled)
{
	if (!r)
		return -EINVAL;
	if (r->enabled == enabled)
		return 0;
	mv_txn_begin(r->machine);
	record(r, MV_UNDO_ENABLED, NULL);
	r->enabled = enabled;
	if (enabled) /* disabling cannot create overlap */
		disjoint_after_enable(r);
	mv_txn_mark_dirty_self(r->machine, r, 0, r->size);
	mv_txn_mark_pending(r->machine);
	return mv_txn_commit(r->machine);
}

/* memory_region_set_address(): re-add, so it moves to the front of its
 * priority class. */
int mv_region_set_address(struct mv_region *r, uint64_t addr)
{
	struct mv_region *parent;

	if (!r)
		return -EINVAL;
	if (r->addr == addr)
		return 0;
	parent = r->container;
	if (!parent) {
		/* No transaction (QEMU), but a view root moves whole views at
		 * their next render. */
		if (mv_region_is_view_root(r))
			mv_txn_mark_dirty_all(r->machine);
		record(r, MV_UNDO_ADDR, NULL);
		r->addr = addr;
		return 0;
	}
	mv_txn_begin(r->machine);
	record(r, MV_UNDO_ADDR, parent);
	mark_child_window(r, r->addr);
	mark_child_window(r, addr);
	/* A view root renders at its own address: all of it moves. */
	if (mv_region_is_view_root(r))
		mv_txn_mark_dirty_all(r->machine);
	if (parent->enabled && r->enabled)
		mv_txn_mark_pending(r->machine);
	r->addr = addr;
	children_unlink(parent, r);
	children_link(parent, r);
	return mv_txn_commit(r->machine);
}

int mv_region_set_size(struct mv_region *r, uint64_t size)
{
	u128 s;

	if (!r)
		return -EINVAL;
	s = mv_size_from_api(size);
	if (s == r->size)
		return 0;
	/* A RAM region never outgrows the memory behind it. */
	if (r->block && (!s || s > r->block->max_length))
		return -EINVAL;
	mv_txn_begin(r->machine);
	record(r, MV_UNDO_SIZE, NULL);
	if (r->block)
		r->block->used_length =
			((uint64_t)s + r->block->page_size - 1) &
			~(r->block->page_size - 1);
	mv_txn_mark_dirty_self(r->machine, r, 0, s > r->size ? s : r->size);
	mv_txn_mark_pending(r->machine);
	r->size = s;
	if (r->container && s > r->container->max_child_size)
		r->container->max_child_size = s;
	invalidate_parent(r);
	return mv_txn_commit(r->machine);
}

int mv_region_set_alias_offset(struct mv_region *r, uint64_t offset)
{
	if (!r || r->kind != MV_REGION_ALIAS)
		return -EINVAL;
	if (r->alias_offset == offset)
		return 0;
	mv_txn_begin(r->machine);
	record(r, MV_UNDO_ALIAS_OFFSET, NULL);
	r->alias_offset = offset;
	mv_txn_mark_dirty_self(r->machine, r, 0, r->size);
	if (r->enabled)
		mv_txn_mark_pending(r->machine);
	return mv_txn_commit(r->machine);
}

/* The shared shape of the boolean attribute setters. */
static int set_flag(struct mv_region *r, bool *flag, bool value,
		    enum mv_undo_op op)
{
	if (*flag == value)
		return 0;
	mv_txn_begin(r->machine);
	record(r, op, NULL);
	*flag = value;
	mv_txn_mark_dirty_self(r->machine, r, 0, r->size);
	if (r->enabled)
		mv_txn_mark_pending(r->machine);
	return mv_txn_commit(r->machine);
}

int mv_region_set_readonly(struct mv_region *r, bool readonly)
{
	return r ? set_flag(r, &r->readonly, readonly, MV_UNDO_READONLY) :
		   -EINVAL;
}

int mv_region_set_nonvolatile(struct mv_region *r, bool nonvolatile)
{
	return r ? set_flag(r, &r->nonvolatile, nonvolatile,
			    MV_UNDO_NONVOLATILE) :
		   -EINVAL;
}

int mv_region_rom_device_set_romd(struct mv_region *r, bool romd)
{
	if (!r || r->kind != MV_REGION_ROM_DEVICE)
		return -EINVAL;
	return set_flag(r, &r->romd_mode, romd, MV_UNDO_ROMD);
}

/*
 * memory_region_set_log().  QEMU allows only the VGA client here (the
 * others follow the accelerator and global logging); so do we.
 */
int mv_region_set_log(struct mv_region *r, bool log,
		      enum mv_dirty_client client)
{
	uint8_t mask;

	if (!r || client != MV_DIRTY_VGA)
		return -EINVAL;
	mask = (uint8_t)((r->dirty_log_mask & ~(1u << client)) |
			 ((unsigned)log << client));
	if (mask == r->dirty_log_mask)
		return 0;
	mv_txn_begin(r->machine);
	record(r, MV_UNDO_LOG, NULL);
	r->dirty_log_mask = mask;
	mv_txn_mark_dirty_self(r->machine, r, 0, r->size);
	if (r->enabled)
		mv_txn_mark_pending(r->machine);
	return mv_txn_commit(r->machine);
}

uint8_t mv_region_dirty_mask(const struct mv_region *mr)
{
	uint8_t mask = mr->dirty_log_mask;

	/* Global logging (migration) covers every RAM block. */
	if (mr->machine->global_dirty_log && mr->block)
		mask |= 1u << MV_DIRTY_MIGRATION;
	return mask;
}

uint8_t mv_region_get_dirty_log_mask(const struct mv_region *mr)
{
	return mv_region_dirty_mask(mr);
}

int mv_region_set_owner(struct mv_region *r, const char *owner)
{
	char *copy = NULL;

	if (!r)
		return -EINVAL;
	if (owner) {
		copy = mv_strdup(r->machine, owner);
		if (!copy)
			return -ENOMEM;
	}
	free(r->owner);
	r->owner = copy;
	return 0;
}

/* ---- getters -------------------------------------------------------------- */

const char *mv_region_name(const struct mv_region *r)
{
	return r->name;
}

const char *mv_region_owner(const struct mv_region *r)
{
	return r->owner;
}

enum mv_region_kind mv_region_kind(const struct mv_region *r)
{
	return r->kind;
}

const char *mv_region_type(const struct mv_region *r)
{
	while (r->alias)
		r = r->alias;
	if (r->kind == MV_REGION_ROM_DEVICE && r->romd_mode)
		return "romd";
	if (r->kind == MV_REGION_RAM)
		return r->readonly ? "rom" : "ram";
	return "i/o";
}

uint64_t mv_region_size(const struct mv_region *r)
{
	return r->size >= MV_2_64 ? UINT64_MAX : (uint64_t)r->size;
}

uint64_t mv_region_addr(const struct mv_region *r)
{
	return r->addr;
}

int mv_region_priority(const struct mv_region *r)
{
	return r->priority;
}

bool mv_region_enabled(const struct mv_region *r)
{
	return r->enabled;
}

bool mv_region_readonly(const struct mv_region *r)
{
	return r->readonly;
}

struct mv_region *mv_region_container(const struct mv_region *r)
{
	return r->container;
}

struct mv_region *mv_region_alias_target(const struct mv_region *r)
{
	return r->alias;
}

uint64_t mv_region_alias_offset(const struct mv_region *r)
{
	return r->alias_offset;
}

void *mv_region_ram_ptr(const struct mv_region *r)
{
	return r->block ? r->block->host : NULL;
}

int mv_region_ram_fd(const struct mv_region *r)
{
	return r->block ? r->block->fd : -1;
}
