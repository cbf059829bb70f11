// SPDX-License-Identifier: MIT
/*
 * Questions about the slot table: lookups (O(log n) through the gfn
 * tree), the ` KVM` marker of `info mtree -f`, the printed table, and the
 * invariant checker the tests call after every step.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "internal.h"

/* ---- queries ------------------------------------------------------------- */

static void slot_info(const struct mv_kvm_space *sp,
		      const struct mv_kvm_slot *s, struct mv_kvm_slot_info *i)
{
	*i = (struct mv_kvm_slot_info){
		.as_id = sp->as_id,
		.id = s->id,
		.flags = s->flags,
		.gpa = s->gpa,
		.size = s->size,
		.hva = s->hva,
		.mr = s->mr,
		.offset_within_region = s->offset_within_region,
	};
}

static struct mv_kvm_space *space_of(const struct mv_kvm *k, unsigned as_id)
{
	return as_id < MV_KVM_MAX_AS ? k->space[as_id] : NULL;
}

size_t mv_kvm_slot_count(const struct mv_kvm *k, unsigned as_id)
{
	struct mv_kvm_space *sp = space_of(k, as_id);

	return sp ? sp->nr : 0;
}

int mv_kvm_slot_at(const struct mv_kvm *k, unsigned as_id, size_t i,
		   struct mv_kvm_slot_info *info)
{
	struct mv_kvm_space *sp = space_of(k, as_id);
	struct mv_kvm_slot *s;

	if (!sp || i >= sp->nr)
		return -ENOENT;
	RB_FOREACH(s, mv_kvm_slot_tree, &sp->tree)
	{
		if (!i--) {
			slot_info(sp, s, info);
			return 0;
		}
	}
	return -ENOENT;
}

int mv_kvm_slot_lookup(const struct mv_kvm *k, unsigned as_id, mv_gpa_t gpa,
		       struct mv_kvm_slot_info *info)
{
	struct mv_kvm_space *sp = space_of(k, as_id);
	struct mv_kvm_slot *s;
	int ret = -ENOENT;

	if (!sp)
		return -ENOENT;
	pthread_mutex_lock(&sp->k->lock);
	s = mv_kvm_space_find(sp, gpa);
	if (s) {
		slot_info(sp, s, info);
		ret = 0;
	}
	pthread_mutex_unlock(&sp->k->lock);
	return ret;
}

bool mv_kvm_has_memory(const struct mv_kvm *k, const struct mv_as *as,
		       mv_gpa_t gpa, uint64_t size)
{
	struct mv_kvm_slot *s;
	bool found = false;
	unsigned i;

	for (i = 0; i < MV_KVM_MAX_AS; i++) {
		struct mv_kvm_space *sp = k->space[i];

		if (!sp || sp->as != as)
			continue;
		/* kvm_lookup_matching_slot(), size capped as QEMU does */
		if (size > k->max_slot_size)
			size = k->max_slot_size;
		pthread_mutex_lock(&sp->k->lock);
		s = mv_kvm_space_find(sp, gpa);
		found = s && s->gpa == gpa && s->size == size;
		pthread_mutex_unlock(&sp->k->lock);
	}
	return found;
}

static const char *flag_text(uint32_t flags)
{
	static const char *const text[] = { "rw", "rw,log", "ro", "ro,log" };

	return text[flags & 3];
}

static void print_size(FILE *out, uint64_t size)
{
	static const char unit[] = "KMGT";
	int u = -1;

	while (u < 3 && size >= 1024 && !(size % 1024)) {
		size /= 1024;
		u++;
	}
	if (u < 0)
		fprintf(out, "%-8" PRIu64, size);
	else
		fprintf(out, "%" PRIu64 "%c%*s", size, unit[u],
			size < 10   ? 6 :
			size < 100  ? 5 :
			size < 1000 ? 4 :
				      3,
			"");
}

int mv_kvm_print_slots(const struct mv_kvm *k, FILE *out)
{
	unsigned i;

	for (i = 0; i < MV_KVM_MAX_AS; i++) {
		struct mv_kvm_space *sp = k->space[i];
		struct mv_kvm_slot *s;

		if (!sp)
			continue;
		fprintf(out, "kvm address space %u (%s): %zu of %u slots\n", i,
			mv_as_name(sp->as), sp->nr, k->nr_slots);
		fprintf(out, "  %-5s %-37s %-8s %-6s %-14s %s\n", "slot",
			"guest-physical", "size", "flags", "host", "region");
		RB_FOREACH(s, mv_kvm_slot_tree, &sp->tree)
		{
			fprintf(out, "  %-5u %016" PRIx64 "-%016" PRIx64 " ",
				s->id, s->gpa, s->gpa + s->size - 1);
			print_size(out, s->size);
			fprintf(out, " %-6s %014" PRIxPTR " %s+0x%" PRIx64 "\n",
				flag_text(s->flags), (uintptr_t)s->hva,
				mv_region_name(s->mr), s->offset_within_region);
		}
	}
	return ferror(out) ? -EIO : 0;
}

/* ---- the invariant checker ----------------------------------------------- */

static int fail(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

/* The tree, the id array and the id bitmap agree; no overlap. */
static int check_table(const struct mv_kvm_space *sp, char *why, size_t len)
{
	struct mv_kvm_slot *s, *prev = NULL;
	size_t n = 0, ids = 0;
	unsigned i;

	RB_FOREACH(s, mv_kvm_slot_tree, (struct mv_kvm_slot_tree *)&sp->tree)
	{
		if (prev && prev->gpa + prev->size > s->gpa)
			return fail(why, len, "slots %u and %u overlap",
				    prev->id, s->id);
		if (s->id >= sp->k->nr_slots || sp->by_id[s->id] != s)
			return fail(why, len, "slot %u not at its id", s->id);
		if (!(sp->id_used[s->id / 64] >> (s->id % 64) & 1))
			return fail(why, len, "slot %u id not taken", s->id);
		if (!s->size || s->gpa % sp->k->page_size ||
		    s->size % sp->k->page_size)
			return fail(why, len, "slot %u unaligned", s->id);
		if (!(s->flags & KVM_MEM_LOG_DIRTY_PAGES) != !s->bitmap)
			return fail(why, len, "slot %u bitmap/LOG mismatch",
				    s->id);
		prev = s;
		n++;
	}
	for (i = 0; i < sp->k->nr_slots; i++)
		ids += sp->id_used[i / 64] >> (i % 64) & 1;
	if (n != sp->nr || ids != n)
		return fail(why, len,
			    "%zu slots in the tree, %zu counted, %zu ids", n,
			    sp->nr, ids);
	return 0;
}

/* Each range of the current view has exactly its expected slots. */
static int check_view(const struct mv_kvm_space *sp, char *why, size_t len)
{
	struct mv_flatview *fv = mv_as_get_flatview(sp->as);
	size_t nr, i, want = 0;
	const struct mv_flat_range *r = mv_flatview_ranges(fv, &nr);
	int ret = 0;

	for (i = 0; i < nr && !ret; i++) {
		struct mv_section sec = {
			.as = sp->as,
			.mr = r[i].mr,
			.offset_within_region = r[i].offset_in_region,
			.first = r[i].first,
			.last = r[i].last,
			.dirty_log_mask = r[i].dirty_log_mask,
			.readonly = r[i].readonly,
			.romd_mode = r[i].romd_mode,
		};
		struct mv_kvm_slot t, c;
		uint32_t flags;

		if (!mv_kvm_section_flags(sp->k, &sec, &flags) ||
		    !mv_kvm_section_align(sp->k, &sec, &t))
			continue;
		while (t.size && !ret) {
			struct mv_kvm_slot *s;

			c = mv_kvm_next_chunk(sp->k, &t);
			s = mv_kvm_space_find((struct mv_kvm_space *)sp, c.gpa);
			want++;
			if (!s || s->gpa != c.gpa || s->size != c.size ||
			    s->hva != c.hva || s->mr != c.mr ||
			    s->flags != flags)
				ret = fail(
					why, len,
					"range %016" PRIx64 "-%016" PRIx64
					" (%s) lacks its slot at %016" PRIx64,
					r[i].first, r[i].last,
					mv_region_name(r[i].mr), c.gpa);
		}
	}
	if (!ret && want != sp->nr)
		ret = fail(why, len, "%zu slots, the view needs %zu", sp->nr,
			   want);
	mv_flatview_unref(fv);
	return ret;
}

int mv_kvm_slots_check(const struct mv_kvm *k, char *why, size_t len)
{
	unsigned i;
	int ret = 0;

	for (i = 0; i < MV_KVM_MAX_AS && !ret; i++) {
		struct mv_kvm_space *sp = k->space[i];

		if (!sp)
			continue;
		pthread_mutex_lock((pthread_mutex_t *)&k->lock);
		ret = check_table(sp, why, len);
		if (!ret && !sp->nr_queue)
			ret = check_view(sp, why, len);
		pthread_mutex_unlock((pthread_mutex_t *)&k->lock);
	}
	return ret;
}
