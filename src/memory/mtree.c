// SPDX-License-Identifier: MIT
/*
 * `info mtree` text exactly as QEMU 7.2 prints it (reference §2.1, §2.2):
 * the tree view with its alias-target blocks, and the flat views.  QEMU
 * emits blocks in hash-table order; we emit them sorted by their text and
 * number flat views in that order, which equals QEMU's output after the
 * normalisation of reference §2.5.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mtree.h"

#define INDENT "  "

/* A growable list of distinct regions: the alias-target print queue. */
struct mr_queue {
	struct mv_region **mr;
	size_t nr, cap;
};

static int queue_add(struct mv_machine *m, struct mr_queue *q,
		     struct mv_region *mr)
{
	size_t i;

	for (i = 0; i < q->nr; i++)
		if (q->mr[i] == mr)
			return 0;
	if (q->nr == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct mv_region **a = mv_realloc(m, q->mr, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		q->mr = a;
		q->cap = cap;
	}
	q->mr[q->nr++] = mr;
	return 0;
}

int mv_blocks_add(struct mv_machine *m, struct mv_blocks *b, char *text)
{
	if (b->nr == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		char **a = mv_realloc(m, b->text, cap * sizeof(*a));

		if (!a) {
			free(text);
			return -ENOMEM;
		}
		b->text = a;
		b->cap = cap;
	}
	b->text[b->nr++] = text;
	return 0;
}

void mv_blocks_free(struct mv_blocks *b)
{
	size_t i;

	for (i = 0; i < b->nr; i++)
		free(b->text[i]);
	free(b->text);
}

static int cmp_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void mv_blocks_sort(struct mv_blocks *b)
{
	qsort(b->text, b->nr, sizeof(*b->text), cmp_text);
}

/* ---- tree view ------------------------------------------------------------ */

static void print_owner(FILE *f, const struct mv_region *mr, unsigned flags)
{
	if (flags & MV_MTREE_OWNER)
		fprintf(f, mr->owner ? " owner:{%s}" : " orphan", mr->owner);
}

/* Children in print order: address ascending, then priority descending,
 * ties in list order (QEMU's insertion sort). */
struct print_key {
	struct mv_region *mr;
	size_t list_pos;
};

static int cmp_print(const void *a, const void *b)
{
	const struct print_key *x = a, *y = b;

	if (x->mr->addr != y->mr->addr)
		return x->mr->addr < y->mr->addr ? -1 : 1;
	if (x->mr->priority != y->mr->priority)
		return x->mr->priority > y->mr->priority ? -1 : 1;
	return x->list_pos < y->list_pos ? -1 : 1;
}

static void print_line(FILE *f, const struct mv_region *mr, unsigned level,
		       uint64_t start, uint64_t end, unsigned flags)
{
	unsigned i;

	for (i = 0; i < level; i++)
		fputs(INDENT, f);
	fprintf(f, "%016" PRIx64 "-%016" PRIx64 " (prio %d, %s%s): ", start,
		end, mr->priority, mr->nonvolatile ? "nv-" : "",
		mv_region_type(mr));
	if (mr->alias)
		fprintf(f, "alias %s @%s %016" PRIx64 "-%016" PRIx64, mr->name,
			mr->alias->name, mr->alias_offset,
			mr->alias_offset + mv_size_last(mr->size));
	else
		fputs(mr->name, f);
	if (!mr->enabled)
		fputs(" [disabled]", f);
	print_owner(f, mr, flags);
	fputc('\n', f);
}

static int print_mr(struct mv_machine *m, FILE *f, struct mv_region *mr,
		    unsigned level, uint64_t base, struct mr_queue *q,
		    unsigned flags)
{
	uint64_t start = base + mr->addr;
	uint64_t end = start + mv_size_last(mr->size);
	struct print_key *keys;
	size_t i;
	int ret = 0;

	if (level > 1024)
		return -E2BIG;
	if (start < base || end < start)
		fputs("[DETECTED OVERFLOW!] ", f);
	if (mr->alias) {
		ret = queue_add(m, q, mr->alias);
		if (ret)
			return ret;
	}
	if (mr->enabled || (flags & MV_MTREE_DISABLED))
		print_line(f, mr, level, start, end, flags);
	if (!mr->nr_children)
		return 0;
	keys = mv_malloc(m, mr->nr_children * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (i = 0; i < mr->nr_children; i++)
		keys[i] = (struct print_key){
			mr->children[mr->nr_children - 1 - i], i
		};
	qsort(keys, mr->nr_children, sizeof(*keys), cmp_print);
	for (i = 0; i < mr->nr_children && !ret; i++)
		ret = print_mr(m, f, keys[i].mr, level + 1, start, q, flags);
	free(keys);
	return ret;
}

/* Open a memstream for one block; mv_block_close() hands its text over. */
int mv_block_open(struct mv_block *blk)
{
	blk->text = NULL;
	blk->len = 0;
	blk->f = open_memstream(&blk->text, &blk->len);
	return blk->f ? 0 : -ENOMEM;
}

int mv_block_close(struct mv_machine *m, struct mv_block *blk,
		   struct mv_blocks *out, int ret)
{
	if (fclose(blk->f) && !ret)
		ret = -ENOMEM;
	if (ret) {
		free(blk->text);
		return ret;
	}
	return mv_blocks_add(m, out, blk->text);
}

static int cmp_as_name(const void *a, const void *b)
{
	const struct mv_as *x = *(struct mv_as *const *)a;
	const struct mv_as *y = *(struct mv_as *const *)b;

	return strcmp(x->name, y->name);
}

/* One block per distinct AS root: its AS names sorted, then the tree. */
static int tree_as_blocks(struct mv_machine *m, struct mv_blocks *out,
			  struct mr_queue *q, unsigned flags)
{
	struct mv_as *as, *other, **group = NULL;
	size_t nr_as = 0, n, i;
	int ret = 0;

	for (as = m->as_head; as; as = as->next)
		nr_as++;
	group = mv_malloc(m, (nr_as ? nr_as : 1) * sizeof(*group));
	if (!group)
		return -ENOMEM;
	for (as = m->as_head; as && !ret; as = as->next) {
		struct mv_block blk;

		for (other = m->as_head; other != as; other = other->next)
			if (other->root == as->root)
				break;
		if (other != as)
			continue; /* printed with the first AS of its root */
		n = 0;
		for (other = as; other; other = other->next)
			if (other->root == as->root)
				group[n++] = other;
		qsort(group, n, sizeof(*group), cmp_as_name);
		ret = mv_block_open(&blk);
		if (ret)
			break;
		for (i = 0; i < n; i++)
			fprintf(blk.f, "address-space: %s\n", group[i]->name);
		ret = print_mr(m, blk.f, as->root, 1, 0, q, flags);
		ret = mv_block_close(m, &blk, out, ret);
	}
	free(group);
	return ret;
}

static int tree_blocks(struct mv_machine *m, struct mv_blocks *out,
		       unsigned flags)
{
	struct mr_queue q = { 0 };
	size_t i;
	int ret = tree_as_blocks(m, out, &q, flags);

	/* The queue grows while its blocks print targets of their own. */
	for (i = 0; i < q.nr && !ret; i++) {
		struct mv_block blk;

		ret = mv_block_open(&blk);
		if (ret)
			break;
		fprintf(blk.f, "memory-region: %s\n", q.mr[i]->name);
		ret = print_mr(m, blk.f, q.mr[i], 1, 0, &q, flags);
		ret = mv_block_close(m, &blk, out, ret);
	}
	free(q.mr);
	return ret;
}

/* ---- flat views ------------------------------------------------------------ */

void mv_print_flat_range(FILE *f, const struct mv_flat_range *r, unsigned flags)
{
	fprintf(f, INDENT "%016" PRIx64 "-%016" PRIx64 " (prio %d, %s%s): %s",
		r->first, r->last, r->mr->priority, r->nonvolatile ? "nv-" : "",
		r->readonly ? "rom" : mv_region_type(r->mr), r->mr->name);
	if (r->offset_in_region)
		fprintf(f, " @%016" PRIx64, r->offset_in_region);
	print_owner(f, r->mr, flags);
}

/* kvm_accel_has_memory() per address space of the view: " KVM". */
static void print_accel(FILE *f, struct mv_machine *m,
			const struct mv_flatview *fv,
			const struct mv_flat_range *r,
			const struct mv_mtree_accel *ac)
{
	struct mv_as *as;

	for (as = m->as_head; ac && as; as = as->next)
		if (as->view == fv && ac->has_memory(ac->opaque, as, r->first,
						     r->last - r->first + 1))
			fprintf(f, " %s", ac->name);
}

static void print_view(FILE *f, struct mv_machine *m, struct mv_as *first,
		       unsigned flags, const struct mv_mtree_accel *ac)
{
	const struct mv_flatview *fv = first->view;
	struct mv_as *as;
	size_t i;

	for (as = first; as; as = as->next) {
		if (as->view != fv)
			continue;
		fprintf(f, " AS \"%s\", root: %s", as->name, as->root->name);
		if (as->root->alias)
			fprintf(f, ", alias %s", as->root->alias->name);
		fputc('\n', f);
	}
	fprintf(f, " Root memory region: %s\n",
		fv->root ? fv->root->name : "(none)");
	if (!fv->nr)
		fputs(INDENT "No rendered FlatView\n", f);
	for (i = 0; i < fv->nr; i++) {
		mv_print_flat_range(f, mv_fv_at(fv, i), flags);
		print_accel(f, m, fv, mv_fv_at(fv, i), ac);
		fputc('\n', f);
	}
}

static int flat_blocks(struct mv_machine *m, struct mv_blocks *out,
		       unsigned flags, const struct mv_mtree_accel *ac)
{
	struct mv_as *as, *other;
	int ret = 0;

	for (as = m->as_head; as && !ret; as = as->next) {
		struct mv_block blk;

		for (other = m->as_head; other != as; other = other->next)
			if (other->view == as->view)
				break;
		if (other != as)
			continue;
		ret = mv_block_open(&blk);
		if (ret)
			break;
		print_view(blk.f, m, as, flags, ac);
		ret = mv_block_close(m, &blk, out, 0);
	}
	return ret;
}

int mv_mtree_print(struct mv_machine *m, FILE *out, unsigned flags)
{
	return mv_mtree_print_accel(m, out, flags, NULL);
}

int mv_mtree_print_accel(struct mv_machine *m, FILE *out, unsigned flags,
			 const struct mv_mtree_accel *ac)
{
	struct mv_blocks blocks = { 0 };
	bool flat = flags & MV_MTREE_FLAT;
	size_t i;
	int ret;

	ret = flat ? flat_blocks(m, &blocks, flags, ac) :
		     tree_blocks(m, &blocks, flags);
	if (!ret) {
		mv_blocks_sort(&blocks);
		for (i = 0; i < blocks.nr; i++) {
			if (flat)
				fprintf(out, "FlatView #%zu\n", i);
			fprintf(out, "%s\n", blocks.text[i]);
		}
		if (ferror(out))
			ret = -EIO;
	}
	mv_blocks_free(&blocks);
	return ret;
}
