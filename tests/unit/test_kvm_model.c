// SPDX-License-Identifier: MIT
/*
 * The kernel model (include/memvirt/kvm_model.h): one test per rule of
 * reference kvm-memslots.md §1-2, named after the rule, with
 * mv_kvm_model_check() after every step; allocation-failure injection
 * walks the model's own error paths; a seeded random run compares the
 * model with a plain array of slots.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/kvm.h>
#include <memvirt/kvm_model.h>

#include "helpers.h"
/* The replay backends' interface (internal to src/kvm_model). */
#include "../../src/kvm_model/backend.h"

#define PAGE 0x1000ull
#define MiB 0x100000ull
#define GiB 0x40000000ull
#define LOG MV_KVM_MODEL_MEM_LOG
#define RO MV_KVM_MODEL_MEM_READONLY
#define GMEM MV_KVM_MODEL_MEM_GUEST_MEMFD
#define HVA 0x7f0000000000ull
#define MANUAL MV_KVM_MODEL_CAP_MANUAL_DIRTY_LOG_PROTECT2
#define RING MV_KVM_MODEL_CAP_DIRTY_LOG_RING

/* ---- helpers: every operation is followed by the invariant check ------ */

static void check(struct mv_kvm_model *m)
{
	const char *why = NULL;

	if (mv_kvm_model_check(m, &why))
		fail_msg("model invariant broken: %s", why);
}

static struct mv_kvm_model *model_with(const struct mv_kvm_model_params *p)
{
	struct mv_kvm_model *m;

	assert_int_equal(mv_kvm_model_new(p, &m), 0);
	check(m);
	return m;
}

static struct mv_kvm_model *model(void)
{
	struct mv_kvm_model_params p;

	mv_kvm_model_default_params(&p);
	return model_with(&p);
}

static int set(struct mv_kvm_model *m, uint32_t slot, uint32_t flags,
	       uint64_t gpa, uint64_t size, uint64_t hva)
{
	struct mv_kvm_model_region r = { slot, flags, gpa, size, hva, 0, 0 };
	int ret = mv_kvm_model_set_region(m, &r, false);

	check(m);
	return ret;
}

static int set2(struct mv_kvm_model *m, uint32_t slot, uint32_t flags,
		uint64_t gpa, uint64_t size, uint64_t hva, uint32_t fd,
		uint64_t off)
{
	struct mv_kvm_model_region r = { slot, flags, gpa, size, hva, off, fd };
	int ret = mv_kvm_model_set_region(m, &r, true);

	check(m);
	return ret;
}

static int cap(struct mv_kvm_model *m, uint32_t c, uint64_t arg)
{
	int ret = mv_kvm_model_enable_cap(m, c, 0, arg);

	check(m);
	return ret;
}

static enum mv_kvm_model_exit write_as(struct mv_kvm_model *m, unsigned vcpu,
				       uint64_t gpa)
{
	enum mv_kvm_model_exit exit;

	assert_int_equal(mv_kvm_model_guest_write(m, vcpu, gpa, &exit), 0);
	check(m);
	return exit;
}

static enum mv_kvm_model_exit write(struct mv_kvm_model *m, uint64_t gpa)
{
	return write_as(m, MV_KVM_MODEL_NO_VCPU, gpa);
}

static int get(struct mv_kvm_model *m, uint32_t slot, uint64_t *bm,
	       size_t words)
{
	int ret;

	memset(bm, 0, words * sizeof(*bm));
	ret = mv_kvm_model_get_dirty_log(m, slot, bm, words);
	check(m);
	return ret;
}

static int clear(struct mv_kvm_model *m, uint32_t slot, uint64_t first,
		 uint32_t num, const uint64_t *bm)
{
	int ret = mv_kvm_model_clear_dirty_log(m, slot, first, num, bm);

	check(m);
	return ret;
}

static unsigned popcount(const uint64_t *bm, size_t words)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < words; i++)
		n += (unsigned)__builtin_popcountll(bm[i]);
	return n;
}

/* The slot id holding @gpa in address space 0, or -1. */
static int lookup(struct mv_kvm_model *m, uint64_t gpa)
{
	struct mv_kvm_model_slot_info info;
	int ret = mv_kvm_model_lookup(m, 0, gpa, &info);

	check(m);
	if (ret == -ENOENT)
		return -1;
	assert_int_equal(ret, 0);
	return (int)info.slot;
}

static int vcpu(struct mv_kvm_model *m)
{
	unsigned i;
	int ret = mv_kvm_model_create_vcpu(m, &i);

	check(m);
	return ret ? ret : (int)i;
}

/* ---- §1.2 validation, in the kernel's order ----------------------------- */

/* Step 0: v1 knows only LOG and RO; GUEST_MEMFD through v1 is EINVAL. */
static void test_v1_rejects_guest_memfd_and_unknown_flags(void **state)
{
	struct mv_kvm_model *m = model();
	int fd;

	(void)state;
	assert_int_equal(mv_kvm_model_gmem_create(m, MiB, 0, &fd), 0);
	assert_int_equal(set(m, 0, GMEM, 0, MiB, HVA), -EINVAL);
	assert_int_equal(set(m, 0, 1u << 3, 0, MiB, HVA), -EINVAL);
	assert_int_equal(set(m, 0, LOG | RO, 0, MiB, HVA), 0);
	mv_kvm_model_free(m);
}

/* Step 1: slot ids are 0..nr_slots-1, checked on the low 16 bits first. */
static void test_slot_id_beyond_nr_slots_einval(void **state)
{
	struct mv_kvm_model *m = model();
	unsigned n = mv_kvm_model_params(m)->nr_slots;

	(void)state;
	assert_int_equal(set(m, n, 0, 0, PAGE, HVA), -EINVAL);
	assert_int_equal(set(m, 0xffff, 0, 0, PAGE, HVA), -EINVAL);
	assert_int_equal(set(m, n - 1, 0, 0, PAGE, HVA), 0);
	/* step 1 before step 2: a bad id hides bad flags */
	assert_int_equal(set(m, n, 1u << 9, 0, PAGE, HVA), -EINVAL);
	mv_kvm_model_free(m);
}

/* Step 2: unknown bits, RO without read-only memory, gmem with LOG/RO. */
static void test_invalid_flags_einval(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m;
	int fd;

	(void)state;
	mv_kvm_model_default_params(&p);
	p.readonly_mem = false;
	m = model_with(&p);
	assert_int_equal(set(m, 0, RO, 0, PAGE, HVA), -EINVAL);
	assert_int_equal(set2(m, 0, 1u << 16, 0, PAGE, HVA, 0, 0), -EINVAL);
	assert_int_equal(mv_kvm_model_gmem_create(m, MiB, 0, &fd), 0);
	assert_int_equal(set2(m, 0, GMEM | LOG, 0, PAGE, HVA, fd, 0), -EINVAL);
	assert_int_equal(set2(m, 0, GMEM | RO, 0, PAGE, HVA, fd, 0), -EINVAL);
	assert_int_equal(set2(m, 0, GMEM, 0, PAGE, HVA, fd, 0), 0);
	mv_kvm_model_free(m);

	p.readonly_mem = true;
	p.guest_memfd = false;
	m = model_with(&p);
	assert_int_equal(set2(m, 0, GMEM, 0, PAGE, HVA, 3, 0), -EINVAL);
	assert_int_equal(mv_kvm_model_gmem_create(m, MiB, 0, &fd), -ENOTTY);
	mv_kvm_model_free(m);
}

/* Steps 3-4: size and gpa must be page multiples. */
static void test_unaligned_size_or_gpa_einval(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(set(m, 0, 0, 0, PAGE + 1, HVA), -EINVAL);
	assert_int_equal(set(m, 0, 0, 0x800, PAGE, HVA), -EINVAL);
	assert_int_equal(set(m, 0, 0, 0, 0x800, HVA), -EINVAL);
	mv_kvm_model_free(m);
}

/* Step 5: hva page-aligned and hva + size <= user_ptr_max, deletes too. */
static void test_hva_unaligned_or_beyond_user_limit_einval(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t max = mv_kvm_model_params(m)->user_ptr_max;

	(void)state;
	assert_int_equal(set(m, 0, 0, 0, PAGE, HVA + 8), -EINVAL);
	assert_int_equal(set(m, 0, 0, 0, 2 * PAGE, max - PAGE), -EINVAL);
	assert_int_equal(set(m, 0, 0, 0, PAGE, ~0ull & ~(PAGE - 1)), -EINVAL);
	assert_int_equal(set(m, 0, 0, 0, PAGE, max - PAGE), 0);
	assert_int_equal(set(m, 1, 0, PAGE, PAGE, 0), 0); /* hva 0 is fine */
	/* a delete with a kernel address fails though the slot exists */
	assert_int_equal(set(m, 0, 0, 0, 0, 0xffff800000000000ull), -EINVAL);
	assert_int_equal(set(m, 0, 0, 0, 0, max), 0);
	mv_kvm_model_free(m);
}

/* Step 6: gmem offsets page-aligned, offset + size not wrapping. */
static void test_gmem_offset_unaligned_or_wrapping_einval(void **state)
{
	struct mv_kvm_model *m = model();
	int fd;

	(void)state;
	assert_int_equal(mv_kvm_model_gmem_create(m, MiB, 0, &fd), 0);
	assert_int_equal(set2(m, 0, GMEM, 0, PAGE, HVA, fd, 1), -EINVAL);
	assert_int_equal(set2(m, 0, GMEM, 0, PAGE, HVA, fd, 4095), -EINVAL);
	assert_int_equal(set2(m, 0, GMEM, 0, PAGE, HVA, fd, ~0ull & ~4095ull),
			 -EINVAL);
	/* without the flag the offset is not looked at */
	assert_int_equal(set2(m, 0, 0, 0, PAGE, HVA, fd, 1), 0);
	mv_kvm_model_free(m);
}

/* Step 7: as_id below nr_as. */
static void test_as_id_beyond_nr_as_einval(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(set(m, 1u << 16, 0, 0, PAGE, HVA), -EINVAL);
	mv_kvm_model_free(m);
	mv_kvm_model_default_params(&p);
	p.nr_as = 2;
	m = model_with(&p);
	assert_int_equal(set(m, 1u << 16, 0, 0, PAGE, HVA), 0);
	assert_int_equal(set(m, 2u << 16, 0, 0, PAGE, HVA), -EINVAL);
	mv_kvm_model_free(m);
}

/* Step 8: gpa + size must not wrap (2^64 - 4096 + 4096 does). */
static void test_gpa_wrap_einval(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(set(m, 0, 0, 0ull - PAGE, PAGE, HVA), -EINVAL);
	assert_int_equal(set(m, 0, 0, 0ull - PAGE, 2 * PAGE, HVA), -EINVAL);
	mv_kvm_model_free(m);
}

/* Step 9: npages <= KVM_MEM_MAX_NR_PAGES (2^31 - 1). */
static void test_npages_beyond_max_einval(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t max = mv_kvm_model_params(m)->max_npages;

	(void)state;
	assert_int_equal(set(m, 0, 0, 0, (max + 1) * PAGE,
			     HVA - (max + 1) * PAGE),
			 -EINVAL);
	assert_int_equal(set(m, 0, 0, 0, max * PAGE, 0), 0);
	assert_int_equal(mv_kvm_model_nr_pages(m), max);
	mv_kvm_model_free(m);
}

/* Step 10: deleting a missing slot is EINVAL; a delete checks no fields. */
static void test_delete_missing_slot_einval(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(set(m, 3, 0, 0, 0, 0), -EINVAL);
	assert_int_equal(set(m, 3, LOG, 16 * PAGE, PAGE, HVA), 0);
	/* gpa, hva and flags of a delete are never compared with the slot */
	assert_int_equal(set(m, 3, RO, 0x1000000, 0, 0x2000), 0);
	assert_int_equal(lookup(m, 16 * PAGE), -1);
	assert_int_equal(set(m, 3, 0, 0, 0, 0), -EINVAL);
	mv_kvm_model_free(m);
}

/* Step 11: resizing, changing the hva or READONLY is EINVAL. */
static void test_modify_rejects_resize_hva_and_readonly_change(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(set(m, 0, 0, MiB, MiB, HVA), 0);
	assert_int_equal(set(m, 0, 0, MiB, 2 * MiB, HVA), -EINVAL);
	assert_int_equal(set(m, 0, 0, MiB, MiB, HVA + MiB), -EINVAL);
	assert_int_equal(set(m, 0, RO, MiB, MiB, HVA), -EINVAL);
	/* MOVE with a LOG change in the same call is fine */
	assert_int_equal(set(m, 0, LOG, 4 * MiB, MiB, HVA), 0);
	assert_int_equal(lookup(m, 4 * MiB), 0);
	mv_kvm_model_free(m);
}

/* Step 11: guest_memfd slots are immutable, only deletable. */
static void test_gmem_slot_immutable_except_delete(void **state)
{
	struct mv_kvm_model *m = model();
	int fd;

	(void)state;
	assert_int_equal(mv_kvm_model_gmem_create(m, MiB, 0, &fd), 0);
	assert_int_equal(set2(m, 0, GMEM, 0, MiB, HVA, fd, 0), 0);
	assert_int_equal(set2(m, 0, GMEM, 0, MiB, HVA, fd, 0), -EINVAL);
	assert_int_equal(set2(m, 0, 0, 0, MiB, HVA, fd, 0), -EINVAL);
	assert_int_equal(set2(m, 0, 0, 2 * MiB, MiB, HVA, fd, 0), -EINVAL);
	assert_int_equal(set2(m, 0, 0, 0, 0, 0, 0, 0), 0);
	/* the binding went with the slot */
	assert_int_equal(set2(m, 1, GMEM, 0, MiB, HVA, fd, 0), 0);
	mv_kvm_model_free(m);
}

/* Step 11: an identical call does nothing, not even a generation bump. */
static void test_identical_call_is_noop_without_generation_bump(void **state)
{
	struct mv_kvm_model *m = model();
	struct mv_kvm_model_stats st;
	uint64_t gen;

	(void)state;
	assert_int_equal(set(m, 0, LOG, 0, MiB, HVA), 0);
	gen = mv_kvm_model_generation(m, 0);
	assert_int_equal(write(m, PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(set(m, 0, LOG, 0, MiB, HVA), 0);
	assert_int_equal(mv_kvm_model_generation(m, 0), gen);
	mv_kvm_model_get_stats(m, &st);
	assert_int_equal(st.updates, 1);
	mv_kvm_model_free(m);
}

/* Step 12: EEXIST for CREATE/MOVE over another id of the same space. */
static void test_overlap_eexist_only_against_other_ids(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m = model();
	uint64_t maxg = mv_kvm_model_params(m)->max_gfn;

	(void)state;
	assert_int_equal(set(m, 0, 0, 4 * MiB, 4 * MiB, HVA), 0);
	assert_int_equal(set(m, 1, 0, 7 * MiB, 2 * MiB, HVA), -EEXIST);
	assert_int_equal(set(m, 1, 0, 2 * MiB, 4 * MiB, HVA), -EEXIST);
	assert_int_equal(set(m, 1, 0, 5 * MiB, PAGE, HVA), -EEXIST);
	assert_int_equal(set(m, 1, 0, 0, 16 * MiB, HVA), -EEXIST);
	/* adjacent both sides, and the same hva (aliases are allowed) */
	assert_int_equal(set(m, 1, 0, 8 * MiB, MiB, HVA), 0);
	assert_int_equal(set(m, 2, 0, 3 * MiB, MiB, HVA), 0);
	/* a move over its own old range */
	assert_int_equal(set(m, 0, 0, 4 * MiB + PAGE, 4 * MiB, HVA), -EEXIST);
	assert_int_equal(set(m, 1, 0, 8 * MiB + PAGE, MiB, HVA), 0);
	assert_int_equal(set(m, 1, 0, 8 * MiB + 2 * PAGE, MiB, HVA), 0);
	/* a move onto another slot */
	assert_int_equal(set(m, 2, 0, 4 * MiB, MiB, HVA), -EEXIST);
	/* the overlap check comes before the max-gfn check */
	assert_int_equal(set(m, 5, 0, (maxg + 1) * PAGE - PAGE, 2 * PAGE, HVA),
			 -EINVAL);
	assert_int_equal(set(m, 5, 0, (maxg + 1) * PAGE - PAGE, PAGE, HVA), 0);
	assert_int_equal(set(m, 6, 0, (maxg + 1) * PAGE - PAGE, 2 * PAGE, HVA),
			 -EEXIST);
	mv_kvm_model_free(m);

	mv_kvm_model_default_params(&p);
	p.nr_as = 2;
	m = model_with(&p);
	assert_int_equal(set(m, 0, 0, 0, MiB, HVA), 0);
	assert_int_equal(set(m, 1u << 16 | 1, 0, 0, MiB, HVA), 0);
	mv_kvm_model_free(m);
}

/* §1.2 step 14: CREATE or MOVE past the max gfn is EINVAL. */
static void test_last_gfn_beyond_max_gfn_einval(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t end = (mv_kvm_model_params(m)->max_gfn + 1) * PAGE;

	(void)state;
	assert_int_equal(set(m, 0, 0, end, PAGE, HVA), -EINVAL);
	assert_int_equal(set(m, 0, 0, end - MiB, MiB, HVA), 0);
	assert_int_equal(set(m, 1, 0, 0, MiB, HVA), 0);
	assert_int_equal(set(m, 1, 0, end, MiB, HVA), -EINVAL);
	assert_int_equal(lookup(m, 0), 1); /* the failed move reverted */
	mv_kvm_model_free(m);
}

/* Step 13: kvm_gmem_bind's errors: EBADF, EINVAL, EEXIST. */
static void test_gmem_bind_rules(void **state)
{
	struct mv_kvm_model *m = model();
	int fd, fd2;

	(void)state;
	assert_int_equal(mv_kvm_model_gmem_create(m, 0, 0, &fd), -EINVAL);
	assert_int_equal(mv_kvm_model_gmem_create(m, 100, 0, &fd), -EINVAL);
	assert_int_equal(mv_kvm_model_gmem_create(m, MiB, 1, &fd), -EINVAL);
	assert_int_equal(mv_kvm_model_gmem_create(m, 4 * MiB, 0, &fd), 0);
	assert_int_equal(mv_kvm_model_gmem_create(m, MiB, 0, &fd2), 0);
	assert_int_equal(set2(m, 0, GMEM, 0, MiB, HVA, ~0u, 0), -EBADF);
	assert_int_equal(set2(m, 0, GMEM, 0, MiB, HVA, 7, 0), -EINVAL);
	assert_int_equal(set2(m, 0, GMEM, 0, MiB, HVA, fd, 4 * MiB), -EINVAL);
	assert_int_equal(set2(m, 0, GMEM, 0, 2 * MiB, HVA, fd, 3 * MiB),
			 -EINVAL);
	assert_int_equal(set2(m, 0, GMEM, 0, MiB, HVA, fd, MiB), 0);
	/* overlapping offsets without a GPA overlap: EINVAL (kvm_gmem_bind) */
	assert_int_equal(set2(m, 1, GMEM, 8 * MiB, MiB, HVA, fd, MiB + PAGE),
			 -EINVAL);
	assert_int_equal(set2(m, 1, GMEM, 8 * MiB, MiB, HVA, fd, 0), 0);
	assert_int_equal(set2(m, 2, GMEM, 16 * MiB, MiB, HVA, fd2, 0), 0);
	/* a GPA overlap is EEXIST before the binding is looked at */
	assert_int_equal(set2(m, 3, GMEM, 0, MiB, HVA, fd, 2 * MiB), -EEXIST);
	/* closing the file drops the bindings; the slots stay */
	assert_int_equal(mv_kvm_model_gmem_close(m, fd), 0);
	check(m);
	assert_int_equal(mv_kvm_model_gmem_close(m, fd), -EBADF);
	assert_int_equal(lookup(m, 0), 0);
	assert_int_equal(set2(m, 3, GMEM, 32 * MiB, MiB, HVA, fd, 0), -EINVAL);
	mv_kvm_model_free(m);
}

/* ---- §1.3 change kinds and generations --------------------------------- */

/* +nr_as per swap: CREATE/FLAGS_ONLY one swap, MOVE/DELETE two. */
static void test_generation_bumps_per_swap_by_nr_as(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m;

	(void)state;
	mv_kvm_model_default_params(&p);
	p.nr_as = 2;
	m = model_with(&p);
	assert_int_equal(mv_kvm_model_generation(m, 0), 0);
	assert_int_equal(mv_kvm_model_generation(m, 1), 1);
	assert_int_equal(set(m, 0, 0, 0, MiB, HVA), 0); /* CREATE */
	assert_int_equal(mv_kvm_model_generation(m, 0), 2);
	assert_int_equal(set(m, 0, LOG, 0, MiB, HVA), 0); /* FLAGS_ONLY */
	assert_int_equal(mv_kvm_model_generation(m, 0), 4);
	assert_int_equal(set(m, 0, LOG, MiB, MiB, HVA), 0); /* MOVE */
	assert_int_equal(mv_kvm_model_generation(m, 0), 8);
	assert_int_equal(set(m, 0, 0, 0, 0, 0), 0); /* DELETE */
	assert_int_equal(mv_kvm_model_generation(m, 0), 12);
	assert_int_equal(mv_kvm_model_generation(m, 1), 1);
	assert_int_equal(set(m, 1u << 16, 0, 0, MiB, HVA), 0);
	assert_int_equal(mv_kvm_model_generation(m, 1), 3);
	mv_kvm_model_free(m);
}

struct hook_log {
	unsigned swaps, invalid;
	bool saw_in_progress, window_is_hole, window_write_mmio;
	bool update_refused;
	uint64_t gpa;
};

static void hook(struct mv_kvm_model *m, enum mv_kvm_model_stage stage,
		 unsigned as_id, void *opaque)
{
	struct hook_log *h = opaque;
	struct mv_kvm_model_region r = { 9, 0, 0, PAGE, HVA, 0, 0 };
	struct mv_kvm_model_slot_info info;
	enum mv_kvm_model_exit exit;

	if (stage == MV_KVM_MODEL_STAGE_SWAP) {
		h->swaps++;
		h->saw_in_progress = mv_kvm_model_generation(m, as_id) &
				     MV_KVM_MODEL_GEN_IN_PROGRESS;
		h->update_refused = mv_kvm_model_set_region(m, &r, false) ==
				    -EBUSY;
		return;
	}
	h->invalid++;
	h->window_is_hole = mv_kvm_model_lookup(m, as_id, h->gpa, &info) ==
			    -ENOENT;
	h->window_write_mmio = !mv_kvm_model_guest_write(m, 0, h->gpa, &exit) &&
			       exit == MV_KVM_MODEL_EXIT_MMIO;
}

/*
 * Bit 63 is set while a set is being published; a DELETE or MOVE first
 * installs an INVALID copy, during which the range is a hole (MMIO).
 */
static void test_update_in_progress_bit_and_invalid_window(void **state)
{
	struct mv_kvm_model *m = model();
	struct hook_log h = { .gpa = MiB + PAGE };

	(void)state;
	assert_int_equal(vcpu(m), 0);
	mv_kvm_model_set_hook(m, hook, &h);
	assert_int_equal(set(m, 0, 0, MiB, MiB, HVA), 0);
	assert_int_equal(h.swaps, 1);
	assert_true(h.saw_in_progress);
	assert_true(h.update_refused);
	assert_int_equal(h.invalid, 0);
	assert_int_equal(write_as(m, 0, h.gpa), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(set(m, 0, 0, 4 * MiB, MiB, HVA), 0);
	assert_int_equal(h.swaps, 3);
	assert_int_equal(h.invalid, 1);
	assert_true(h.window_is_hole);
	assert_true(h.window_write_mmio);
	assert_false(mv_kvm_model_generation(m, 0) &
		     MV_KVM_MODEL_GEN_IN_PROGRESS);
	mv_kvm_model_set_hook(m, NULL, NULL);
	mv_kvm_model_free(m);
}

/* nr_memslot_pages follows CREATE and DELETE only. */
static void test_nr_pages_counts_every_slot(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(set(m, 0, 0, 0, MiB, HVA), 0);
	assert_int_equal(set(m, 1, 0, MiB, 2 * MiB, HVA), 0);
	assert_int_equal(set(m, 1, LOG, 8 * MiB, 2 * MiB, HVA), 0);
	assert_int_equal(mv_kvm_model_nr_pages(m), 768);
	assert_int_equal(set(m, 0, 0, 0, 0, 0), 0);
	assert_int_equal(mv_kvm_model_nr_pages(m), 512);
	mv_kvm_model_free(m);
}

/* ---- §1.4 lookups ---------------------------------------------------------- */

/* A hole gives no slot, never a neighbour; the cache serves repeats. */
static void test_lookup_hole_gives_no_slot_never_neighbour(void **state)
{
	struct mv_kvm_model *m = model();
	struct mv_kvm_model_stats st;

	(void)state;
	assert_int_equal(set(m, 0, 0, MiB, MiB, HVA), 0);
	assert_int_equal(set(m, 1, 0, 3 * MiB, MiB, HVA), 0);
	assert_int_equal(lookup(m, 0), -1);
	assert_int_equal(lookup(m, MiB - 1), -1);
	assert_int_equal(lookup(m, MiB), 0);
	assert_int_equal(lookup(m, 2 * MiB - 1), 0);
	assert_int_equal(lookup(m, 2 * MiB), -1);
	assert_int_equal(lookup(m, 3 * MiB - 1), -1);
	assert_int_equal(lookup(m, 3 * MiB), 1);
	assert_int_equal(lookup(m, 4 * MiB), -1);
	assert_int_equal(lookup(m, ~0ull), -1);
	mv_kvm_model_get_stats(m, &st);
	assert_int_equal(lookup(m, 3 * MiB + PAGE), 1);
	{
		struct mv_kvm_model_stats st2;

		mv_kvm_model_get_stats(m, &st2);
		assert_int_equal(st2.cache_hits, st.cache_hits + 1);
	}
	mv_kvm_model_free(m);
}

/* A vCPU's cache is dropped when the generation changes. */
static void test_vcpu_cache_dropped_on_generation_change(void **state)
{
	struct mv_kvm_model *m = model();
	struct mv_kvm_model_slot_info info;
	struct mv_kvm_model_stats a, b;

	(void)state;
	assert_int_equal(vcpu(m), 0);
	assert_int_equal(set(m, 0, 0, 0, MiB, HVA), 0);
	assert_int_equal(mv_kvm_model_vcpu_lookup(m, 0, PAGE, &info), 0);
	mv_kvm_model_get_stats(m, &a);
	assert_int_equal(mv_kvm_model_vcpu_lookup(m, 0, 2 * PAGE, &info), 0);
	mv_kvm_model_get_stats(m, &b);
	assert_int_equal(b.cache_hits, a.cache_hits + 1);
	assert_int_equal(set(m, 0, 0, 0, 0, 0), 0);
	assert_int_equal(mv_kvm_model_vcpu_lookup(m, 0, PAGE, &info), -ENOENT);
	assert_int_equal(mv_kvm_model_vcpu_lookup(m, 1, PAGE, &info), -EINVAL);
	mv_kvm_model_free(m);
}

struct hva_hits {
	uint32_t ids[64];
	size_t n;
};

static int collect(const struct mv_kvm_model_slot_info *s, void *opaque)
{
	struct hva_hits *h = opaque;

	if (h->n < 64)
		h->ids[h->n] = s->slot;
	h->n++;
	return 0;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* hva -> slots: every slot meeting the range, aliases included. */
static void test_hva_lookup_finds_every_overlapping_slot(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t seed = 0x1234567887654321ull, hva[48], size[48];
	unsigned i, t;

	(void)state;
	for (i = 0; i < 48; i++) {
		hva[i] = HVA + (rnd(&seed) % 256) * PAGE;
		size[i] = (1 + rnd(&seed) % 32) * PAGE;
		assert_int_equal(set(m, i, 0, i * 64 * PAGE, size[i], hva[i]),
				 0);
	}
	for (i = 0; i < 48; i += 3) /* holes in the tree */
		assert_int_equal(set(m, i, 0, 0, 0, 0), 0);
	for (t = 0; t < 500; t++) {
		uint64_t first = HVA + (rnd(&seed) % 300) * PAGE,
			 last = first + rnd(&seed) % (16 * PAGE);
		struct hva_hits h = { .n = 0 };
		size_t want = 0;

		assert_int_equal(mv_kvm_model_hva_for_each(m, 0, first, last,
							   collect, &h),
				 0);
		for (i = 0; i < 48; i++)
			if (i % 3 && hva[i] <= last &&
			    first <= hva[i] + size[i] - 1)
				want++;
		assert_int_equal(h.n, want);
		for (i = 0; i < h.n && i < 64; i++) {
			unsigned id = h.ids[i];

			assert_true(hva[id] <= last &&
				    first <= hva[id] + size[id] - 1);
		}
	}
	mv_kvm_model_free(m);
}

/* ---- allocation failures ----------------------------------------------- */

static void expect_same_slots(const struct mv_kvm_model_slot_info *a,
			      const struct mv_kvm_model_slot_info *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		assert_int_equal(a[i].slot, b[i].slot);
		assert_int_equal(a[i].flags, b[i].flags);
		assert_int_equal(a[i].gpa, b[i].gpa);
		assert_int_equal(a[i].size, b[i].size);
		assert_int_equal(a[i].hva, b[i].hva);
	}
}

/* Fail each allocation of @op in turn: -ENOMEM, and the table unchanged. */
static void walk_alloc_failures(struct mv_kvm_model *m, uint32_t slot,
				uint32_t flags, uint64_t gpa, uint64_t size,
				uint64_t hva)
{
	struct mv_kvm_model_slot_info before[8], after[8];
	size_t nb, na;
	unsigned long n;
	int ret;

	for (n = 1;; n++) {
		nb = mv_kvm_model_slots(m, before, 8);
		mv_kvm_model_fail_alloc(m, n);
		ret = set(m, slot, flags, gpa, size, hva);
		mv_kvm_model_fail_alloc(m, 0);
		if (!ret)
			break;
		assert_int_equal(ret, -ENOMEM);
		na = mv_kvm_model_slots(m, after, 8);
		assert_int_equal(na, nb);
		expect_same_slots(before, after, nb);
		assert_true(n < 10);
	}
	assert_true(n > 1);
}

/* Every ENOMEM point of CREATE, FLAGS_ONLY, MOVE and DELETE reverts. */
static void test_alloc_failure_at_every_point_reverts(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t bm[4];

	(void)state;
	assert_int_equal(cap(m, MANUAL, 3), 0);
	walk_alloc_failures(m, 0, LOG, 0, 100 * PAGE, HVA); /* CREATE */
	assert_int_equal(get(m, 0, bm, 4), 0);
	assert_int_equal(popcount(bm, 4), 100);
	walk_alloc_failures(m, 0, 0, 0, 100 * PAGE, HVA);     /* LOG off */
	walk_alloc_failures(m, 0, LOG, 0, 100 * PAGE, HVA);   /* LOG on */
	walk_alloc_failures(m, 0, LOG, MiB, 100 * PAGE, HVA); /* MOVE */
	walk_alloc_failures(m, 0, 0, 0, 0, 0);		      /* DELETE */
	assert_int_equal(mv_kvm_model_slots(m, NULL, 0), 0);
	mv_kvm_model_free(m);
}

/* ---- §2.1-2.2 dirty bitmaps ----------------------------------------------- */

/* Classic GET snapshots and clears; many writes to a page set one bit. */
static void test_classic_get_snapshots_and_clears(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t bm[2];

	(void)state;
	assert_int_equal(set(m, 1, LOG, GiB, 100 * PAGE, HVA), 0);
	assert_int_equal(write(m, GiB), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write(m, GiB + 8), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write(m, GiB + 63 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write(m, GiB + 64 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write(m, GiB + 99 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(get(m, 1, bm, 2), 0);
	assert_int_equal(bm[0], 1ull | 1ull << 63);
	assert_int_equal(bm[1], 1ull | 1ull << 35);
	assert_int_equal(get(m, 1, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 0);
	mv_kvm_model_free(m);
}

/* GET errors: ENOENT (no slot, LOG off), EINVAL (ids), EFAULT (room). */
static void test_get_dirty_log_errors(void **state)
{
	struct mv_kvm_model *m = model();
	unsigned n = mv_kvm_model_params(m)->nr_slots;
	uint64_t bm[2];

	(void)state;
	assert_int_equal(get(m, 0, bm, 2), -ENOENT);
	assert_int_equal(set(m, 0, 0, 0, 100 * PAGE, HVA), 0);
	assert_int_equal(get(m, 0, bm, 2), -ENOENT);
	assert_int_equal(get(m, n, bm, 2), -EINVAL);
	assert_int_equal(get(m, 1u << 16, bm, 2), -EINVAL);
	assert_int_equal(set(m, 0, LOG, 0, 100 * PAGE, HVA), 0);
	assert_int_equal(get(m, 0, bm, 1), -EFAULT);
	assert_int_equal(get(m, 0, bm, 2), 0);
	mv_kvm_model_free(m);
}

/* ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2): {0, 1, 3}; 2 and flags: EINVAL. */
static void test_manual_protect_arg_rules(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(cap(m, MANUAL, 2), -EINVAL);
	assert_int_equal(cap(m, MANUAL, 4), -EINVAL);
	assert_int_equal(cap(m, MANUAL, 5), -EINVAL);
	assert_int_equal(mv_kvm_model_enable_cap(m, MANUAL, 1, 1), -EINVAL);
	assert_int_equal(set(m, 0, LOG, 0, MiB, HVA), 0); /* slots may exist */
	assert_int_equal(cap(m, MANUAL, 3), 0);
	assert_int_equal(cap(m, MANUAL, 1), 0);
	assert_int_equal(cap(m, MANUAL, 0), 0);
	assert_int_equal(cap(m, 12345, 0), -EINVAL);
	mv_kvm_model_free(m);

	mv_kvm_model_default_params(&p);
	p.manual_protect = MV_KVM_MODEL_MANUAL_ENABLE;
	m = model_with(&p);
	assert_int_equal(cap(m, MANUAL, 3), -EINVAL);
	assert_int_equal(cap(m, MANUAL, 1), 0);
	mv_kvm_model_free(m);
	p.manual_protect = 0;
	m = model_with(&p);
	assert_int_equal(cap(m, MANUAL, 1), -EINVAL);
	mv_kvm_model_free(m);
}

/* With manual protect GET copies; CLEAR clears what its bitmap names. */
static void test_manual_get_copies_and_clear_clears(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t bm[2], mask[2] = { 1ull << 5, 0 };

	(void)state;
	assert_int_equal(cap(m, MANUAL, 1), 0);
	assert_int_equal(set(m, 0, LOG, 0, 128 * PAGE, HVA), 0);
	assert_int_equal(write(m, 5 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write(m, 70 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(get(m, 0, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 2);
	assert_int_equal(get(m, 0, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 2);
	assert_int_equal(clear(m, 0, 0, 64, mask), 0);
	assert_int_equal(get(m, 0, bm, 2), 0);
	assert_int_equal(bm[0], 0);
	assert_int_equal(bm[1], 1ull << 6);
	mask[0] = 1ull << 6;
	assert_int_equal(clear(m, 0, 64, 64, mask), 0);
	assert_int_equal(get(m, 0, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 0);
	mv_kvm_model_free(m);
}

/* CLEAR windows: first%64, first>npages, num>npages-first, num%64. */
static void test_clear_window_rules(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t ones[4] = { ~0ull, ~0ull, ~0ull, ~0ull }, bm[2];

	(void)state;
	/* first % 64 comes before the slot lookup */
	assert_int_equal(clear(m, 0, 1, 64, ones), -EINVAL);
	assert_int_equal(clear(m, 0, 0, 64, ones), -ENOENT);
	assert_int_equal(cap(m, MANUAL, 3), 0);
	assert_int_equal(set(m, 0, LOG, 0, 100 * PAGE, HVA), 0);
	assert_int_equal(set(m, 1, LOG, MiB, 3 * PAGE, HVA), 0);
	assert_int_equal(clear(m, 0, 128, 0, ones), -EINVAL);
	assert_int_equal(clear(m, 0, 64, 64, ones), -EINVAL);
	assert_int_equal(clear(m, 0, 0, 101, ones), -EINVAL);
	assert_int_equal(clear(m, 0, 0, 65, ones), -EINVAL);
	assert_int_equal(clear(m, 0, 0, 0, NULL), 0);
	assert_int_equal(clear(m, 0, 64, 0, NULL), 0);
	/* odd-sized windows reaching the end: 36 of 100, 3 of 3 */
	assert_int_equal(clear(m, 0, 64, 36, ones), 0);
	assert_int_equal(get(m, 0, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 64);
	assert_int_equal(clear(m, 1, 0, 3, ones), 0);
	assert_int_equal(get(m, 1, bm, 1), 0);
	assert_int_equal(bm[0], 0);
	/* bits past the slot in the user bitmap are ignored */
	assert_int_equal(clear(m, 0, 0, 100, ones), 0);
	assert_int_equal(get(m, 0, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 0);
	mv_kvm_model_free(m);
}

/* INITIALLY_SET: a new LOG slot, or LOG back on, starts all ones. */
static void test_initially_set_starts_all_ones(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t bm[2];

	(void)state;
	assert_int_equal(cap(m, MANUAL, 3), 0);
	assert_int_equal(set(m, 0, LOG, 0, 100 * PAGE, HVA), 0);
	assert_int_equal(get(m, 0, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 100);
	assert_int_equal(clear(m, 0, 0, 100, bm), 0);
	assert_int_equal(set(m, 0, 0, 0, 100 * PAGE, HVA), 0);
	assert_int_equal(set(m, 0, LOG, 0, 100 * PAGE, HVA), 0);
	assert_int_equal(get(m, 0, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 100);
	/* without INITIALLY_SET, a new slot starts clean */
	assert_int_equal(cap(m, MANUAL, 1), 0);
	assert_int_equal(set(m, 1, LOG, MiB, 100 * PAGE, HVA), 0);
	assert_int_equal(get(m, 1, bm, 2), 0);
	assert_int_equal(popcount(bm, 2), 0);
	mv_kvm_model_free(m);
}

/* MOVE keeps the bitmap, relative to the slot. */
static void test_dirty_bits_survive_move(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t bm[1];

	(void)state;
	assert_int_equal(set(m, 0, LOG, 0, 16 * PAGE, HVA), 0);
	assert_int_equal(write(m, 3 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(set(m, 0, LOG, GiB, 16 * PAGE, HVA), 0);
	assert_int_equal(write(m, GiB + 5 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write(m, 3 * PAGE), MV_KVM_MODEL_EXIT_MMIO);
	assert_int_equal(get(m, 0, bm, 1), 0);
	assert_int_equal(bm[0], 1ull << 3 | 1ull << 5);
	mv_kvm_model_free(m);
}

/* LOG off frees the bitmap (ENOENT); back on starts clean. */
static void test_log_off_and_on_resets_bits(void **state)
{
	struct mv_kvm_model *m = model();
	uint64_t bm[1];

	(void)state;
	assert_int_equal(set(m, 0, LOG, 0, 16 * PAGE, HVA), 0);
	assert_int_equal(write(m, 3 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(set(m, 0, 0, 0, 16 * PAGE, HVA), 0);
	assert_int_equal(get(m, 0, bm, 1), -ENOENT);
	assert_int_equal(write(m, 4 * PAGE), MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(set(m, 0, LOG, 0, 16 * PAGE, HVA), 0);
	assert_int_equal(get(m, 0, bm, 1), 0);
	assert_int_equal(bm[0], 0);
	mv_kvm_model_free(m);
}

/* Stores to a read-only slot, a hole or a logless slot log nothing. */
static void test_readonly_slot_and_hole_writes_exit_to_mmio(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(set(m, 0, RO | LOG, 0, 16 * PAGE, HVA), 0);
	assert_int_equal(write(m, PAGE), MV_KVM_MODEL_EXIT_MMIO);
	assert_int_equal(write(m, 16 * PAGE), MV_KVM_MODEL_EXIT_MMIO);
	assert_int_equal(set(m, 1, 0, MiB, PAGE, HVA), 0);
	assert_int_equal(write(m, MiB), MV_KVM_MODEL_EXIT_NONE);
	mv_kvm_model_free(m);
}

/* ---- §2.3 the dirty ring --------------------------------------------------- */

/* ENABLE_CAP(DIRTY_LOG_RING): power of 2, >= 4096 and rsvd*16, <= max. */
static void test_ring_enable_cap_arg_rules(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m = model();
	uint32_t max = mv_kvm_model_params(m)->ring_max_bytes;

	(void)state;
	assert_int_equal(cap(m, RING, 0), -EINVAL);
	assert_int_equal(cap(m, RING, 12288), -EINVAL);
	assert_int_equal(cap(m, RING, 2048), -EINVAL);
	assert_int_equal(cap(m, RING, 2ull * max), -E2BIG);
	assert_int_equal(set(m, 0, LOG, 0, MiB, HVA), 0); /* slots may exist */
	assert_int_equal(cap(m, RING, 4096), 0);
	assert_int_equal(cap(m, RING, 8192), -EINVAL); /* only once */
	mv_kvm_model_free(m);

	m = model();
	assert_int_equal(vcpu(m), 0);
	assert_int_equal(cap(m, RING, 4096), -EINVAL); /* after a vCPU */
	mv_kvm_model_free(m);

	mv_kvm_model_default_params(&p);
	p.ring_rsvd_entries = 64 + 512; /* Intel PML */
	m = model_with(&p);
	assert_int_equal(cap(m, RING, 8192), -EINVAL);
	assert_int_equal(cap(m, RING, 16384), 0);
	mv_kvm_model_free(m);
	p.ring_max_bytes = 0;
	m = model_with(&p);
	assert_int_equal(cap(m, RING, 16384), -EINVAL);
	mv_kvm_model_free(m);
}

static struct mv_kvm_model *ring_model(uint32_t bytes)
{
	struct mv_kvm_model *m = model();

	assert_int_equal(cap(m, RING, bytes), 0);
	assert_int_equal(vcpu(m), 0);
	assert_int_equal(set(m, 2, LOG, GiB, 1024 * PAGE, HVA), 0);
	return m;
}

static int harvest(struct mv_kvm_model *m, unsigned v,
		   struct mv_kvm_model_dirty_gfn *e, size_t max)
{
	int n = mv_kvm_model_ring_harvest(m, v, e, max);

	check(m);
	return n;
}

static int reset(struct mv_kvm_model *m)
{
	int n = mv_kvm_model_reset_rings(m);

	check(m);
	return n;
}

/* One entry per first store after a protect, in write order. */
static void test_ring_entries_in_write_order_once_per_epoch(void **state)
{
	struct mv_kvm_model *m = ring_model(65536);
	struct mv_kvm_model_dirty_gfn e[8];
	uint64_t bm[16];

	(void)state;
	assert_int_equal(write_as(m, 0, GiB + 7 * PAGE),
			 MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write_as(m, 0, GiB + 2 * PAGE),
			 MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write_as(m, 0, GiB + 7 * PAGE),
			 MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 2);
	assert_int_equal(harvest(m, 0, e, 8), 2);
	assert_int_equal(e[0].slot, 2);
	assert_int_equal(e[0].offset, 7);
	assert_int_equal(e[1].offset, 2);
	assert_int_equal(e[0].flags, MV_KVM_MODEL_GFN_DIRTY);
	/* not yet reset: the page is still writable, nothing new */
	assert_int_equal(write_as(m, 0, GiB + 7 * PAGE),
			 MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(harvest(m, 0, e, 8), 0);
	assert_int_equal(reset(m), 2);
	assert_int_equal(write_as(m, 0, GiB + 7 * PAGE),
			 MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(harvest(m, 0, e, 8), 1);
	/* the bitmap ioctls are off while the ring is on */
	assert_int_equal(get(m, 2, bm, 16), -ENXIO);
	assert_int_equal(clear(m, 2, 0, 64, bm), -ENXIO);
	assert_int_equal(clear(m, 2, 1, 64, bm), -ENXIO);
	/* a store without a vCPU has no ring to go to */
	{
		enum mv_kvm_model_exit x;

		assert_int_equal(mv_kvm_model_guest_write(
					 m, MV_KVM_MODEL_NO_VCPU, GiB, &x),
				 -EINVAL);
	}
	mv_kvm_model_free(m);
}

/* RESET returns the count reset and stops at the first unharvested. */
static void test_ring_reset_counts_and_stops_at_unharvested(void **state)
{
	struct mv_kvm_model *m = ring_model(65536);
	struct mv_kvm_model_dirty_gfn e[8];
	unsigned i;

	(void)state;
	for (i = 0; i < 5; i++)
		assert_int_equal(write_as(m, 0, GiB + i * PAGE),
				 MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(reset(m), 0);
	assert_int_equal(harvest(m, 0, e, 3), 3);
	assert_int_equal(reset(m), 3);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 2);
	/* pages 0-2 were re-protected, 3-4 were not */
	assert_int_equal(write_as(m, 0, GiB + 0 * PAGE),
			 MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(write_as(m, 0, GiB + 4 * PAGE),
			 MV_KVM_MODEL_EXIT_NONE);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 3);
	assert_int_equal(harvest(m, 0, e, 8), 3);
	assert_int_equal(e[2].offset, 0);
	assert_int_equal(reset(m), 3);
	assert_int_equal(reset(m), 0);
	mv_kvm_model_free(m);
}

/* RESET without a ring is EINVAL. */
static void test_ring_reset_without_ring_einval(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(reset(m), -EINVAL);
	assert_int_equal(harvest(m, 0, NULL, 0), -EINVAL);
	mv_kvm_model_free(m);
}

/*
 * Soft full at size - rsvd: the store that fills it is logged but exits
 * (RING_FULL) and keeps exiting until a reset; the retried store logs its
 * page again -- one duplicate per full exit.
 */
static void test_ring_soft_full_exit_and_duplicate_after_reset(void **state)
{
	struct mv_kvm_model *m = ring_model(4096); /* 256 entries, 192 usable */
	static struct mv_kvm_model_dirty_gfn e[256];
	unsigned page = 0, entries = 0, fulls = 0, total = 500;
	bool seen[500] = { false };
	unsigned i;
	int n;

	(void)state;
	while (page < total) {
		enum mv_kvm_model_exit x =
			write_as(m, 0, GiB + (uint64_t)page * PAGE);

		if (x == MV_KVM_MODEL_EXIT_NONE) {
			page++;
			continue;
		}
		assert_int_equal(x, MV_KVM_MODEL_EXIT_RING_FULL);
		fulls++;
		assert_int_equal(mv_kvm_model_ring_used(m, 0), 192);
		/* still full: the vCPU exits again, logging nothing */
		assert_int_equal(write_as(m, 0, GiB),
				 MV_KVM_MODEL_EXIT_RING_FULL);
		n = harvest(m, 0, e, 256);
		assert_int_equal(reset(m), n);
		for (i = 0; i < (unsigned)n; i++)
			seen[e[i].offset] = true;
		entries += (unsigned)n;
	}
	n = harvest(m, 0, e, 256);
	for (i = 0; i < (unsigned)n; i++)
		seen[e[i].offset] = true;
	entries += (unsigned)n;
	for (i = 0; i < total; i++)
		assert_true(seen[i]);
	assert_int_equal(fulls, 2);
	assert_int_equal(entries, total + fulls);
	mv_kvm_model_free(m);
}

/*
 * The u32 parameter of kvm_vm_ioctl_enable_dirty_log_ring() truncates
 * args[0]: 2^32 is 0 (EINVAL, not E2BIG), 2^32 + 4096 is a 4 KiB ring.
 */
static void test_ring_cap_arg_truncated_to_u32(void **state)
{
	struct mv_kvm_model *m = model();
	uint32_t nr = 0;

	(void)state;
	assert_int_equal(cap(m, RING, 1ull << 32), -EINVAL);
	assert_int_equal(cap(m, RING, (1ull << 33) | (1ull << 20)), 0);
	assert_int_equal(vcpu(m), 0);
	assert_non_null(mv_kvm_model_ring(m, 0, &nr));
	assert_int_equal(nr, (1u << 20) / 16);
	mv_kvm_model_free(m);
}

/* Entries the next reset_rings() would reset, after harvesting them. */
static int harvest_and_reset(struct mv_kvm_model *m)
{
	struct mv_kvm_model_dirty_gfn e[64];

	while (harvest(m, 0, e, 64) > 0)
		;
	return reset(m);
}

/* Two LOG slots (2, 3) and a plain one (4) on a ring VM, a page of 2 logged. */
static struct mv_kvm_model *zap_model(const struct mv_kvm_model_params *p)
{
	struct mv_kvm_model *m = model_with(p);

	assert_int_equal(cap(m, RING, 65536), 0);
	assert_int_equal(vcpu(m), 0);
	assert_int_equal(set(m, 2, LOG, GiB, 64 * PAGE, HVA), 0);
	assert_int_equal(set(m, 3, LOG, 2 * GiB, 64 * PAGE, HVA), 0);
	assert_int_equal(set(m, 4, 0, 3 * GiB, 64 * PAGE, HVA), 0);
	write_as(m, 0, GiB);
	write_as(m, 0, 2 * GiB);
	assert_int_equal(harvest_and_reset(m), 2);
	write_as(m, 0, GiB); /* re-protected by the reset: logged again */
	write_as(m, 0, GiB + PAGE);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 2);
	return m;
}

/*
 * x86 (KVM_X86_QUIRK_SLOT_ZAP_ALL): a DELETE or MOVE of any slot, even a
 * MOVE refused after the INVALID step, zaps every SPTE, so the next store
 * to any page of any LOG slot faults and logs again.
 */
static void test_delete_or_move_zaps_every_spte(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m;

	(void)state;
	mv_kvm_model_default_params(&p);
	assert_true(p.slot_zap_all);
	m = zap_model(&p);
	assert_int_equal(set(m, 4, 0, 0, 0, 0), 0); /* DELETE another slot */
	write_as(m, 0, GiB);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 3);
	assert_int_equal(set(m, 3, LOG, 4 * GiB, 64 * PAGE, HVA), 0); /* MOVE */
	write_as(m, 0, GiB);
	write_as(m, 0, GiB + PAGE);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 5);
	/* a MOVE past the max gfn fails after its INVALID step: zapped */
	assert_int_equal(set(m, 3, LOG, (p.max_gfn + 1) << 12, 64 * PAGE, HVA),
			 -EINVAL);
	write_as(m, 0, GiB);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 6);
	/* a MOVE refused for an overlap never got there: nothing zapped */
	assert_int_equal(set(m, 3, LOG, GiB, 64 * PAGE, HVA), -EEXIST);
	write_as(m, 0, GiB);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 6);
	mv_kvm_model_free(m);

	p.slot_zap_all = false; /* the quirk off: only the slot's SPTEs go */
	m = zap_model(&p);
	assert_int_equal(set(m, 4, 0, 0, 0, 0), 0);
	write_as(m, 0, GiB);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 2);
	assert_int_equal(set(m, 2, LOG, 4 * GiB, 64 * PAGE, HVA), 0);
	write_as(m, 0, 4 * GiB); /* the moved slot's own pages fault */
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 3);
	mv_kvm_model_free(m);
}

/* A CREATE or a flags change of another slot zaps nothing. */
static void test_create_and_flags_change_zap_nothing(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m;

	(void)state;
	mv_kvm_model_default_params(&p);
	m = zap_model(&p);
	assert_int_equal(set(m, 5, 0, 5 * GiB, 64 * PAGE, HVA), 0);
	assert_int_equal(set(m, 5, LOG, 5 * GiB, 64 * PAGE, HVA), 0);
	assert_int_equal(set(m, 4, LOG, 3 * GiB, 64 * PAGE, HVA), 0);
	write_as(m, 0, GiB);
	write_as(m, 0, GiB + PAGE);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 2);
	mv_kvm_model_free(m);
}

/*
 * LOG turned on write-protects the slot, so pages written while it was
 * off log on their next store -- but not with MANUAL_PROTECT2's
 * INITIALLY_SET (kvm_mmu_slot_apply_flags()): their SPTEs stay writable.
 */
static void test_log_on_protects_unless_initially_set(void **state)
{
	unsigned arg;

	(void)state;
	for (arg = 1; arg <= 3; arg += 2) {
		struct mv_kvm_model *m = model();
		int want = arg == 3 ? 1 : 2;

		assert_int_equal(cap(m, RING, 65536), 0);
		assert_int_equal(cap(m, MANUAL, arg), 0);
		assert_int_equal(vcpu(m), 0);
		assert_int_equal(set(m, 2, 0, GiB, 64 * PAGE, HVA), 0);
		write_as(m, 0, GiB); /* not logged, but now writable */
		assert_int_equal(mv_kvm_model_ring_used(m, 0), 0);
		assert_int_equal(set(m, 2, LOG, GiB, 64 * PAGE, HVA), 0);
		write_as(m, 0, GiB);
		write_as(m, 0, GiB + PAGE); /* never written: faults */
		assert_int_equal(mv_kvm_model_ring_used(m, 0), want);
		/* LOG off keeps the SPTEs; on again protects as before */
		assert_int_equal(set(m, 2, 0, GiB, 64 * PAGE, HVA), 0);
		assert_int_equal(set(m, 2, LOG, GiB, 64 * PAGE, HVA), 0);
		write_as(m, 0, GiB + PAGE);
		assert_int_equal(mv_kvm_model_ring_used(m, 0),
				 arg == 3 ? want : want + 1);
		mv_kvm_model_free(m);
	}
}

/* RESET re-protects an entry's page even when its slot stopped logging. */
static void test_reset_protects_pages_of_non_log_slots(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(cap(m, RING, 65536), 0);
	assert_int_equal(cap(m, MANUAL, 3), 0);
	assert_int_equal(vcpu(m), 0);
	assert_int_equal(set(m, 2, LOG, GiB, 64 * PAGE, HVA), 0);
	write_as(m, 0, GiB);
	write_as(m, 0, GiB + PAGE);
	assert_int_equal(set(m, 2, 0, GiB, 64 * PAGE, HVA), 0);
	assert_int_equal(harvest_and_reset(m), 2);
	assert_int_equal(set(m, 2, LOG, GiB, 64 * PAGE, HVA), 0);
	write_as(m, 0, GiB); /* protected by the reset: faults */
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 1);
	mv_kvm_model_free(m);
}

/*
 * kvm_dirty_ring_reset() protects runs of one slot's entries within 64
 * pages as one mask, and kvm_reset_dirty_gfn() skips a whole mask whose
 * highest page is past the slot's end (a slot deleted, made again smaller).
 */
static void test_reset_batch_past_slot_end_protects_nothing(void **state)
{
	struct mv_kvm_model *m = model();

	(void)state;
	assert_int_equal(cap(m, RING, 65536), 0);
	assert_int_equal(vcpu(m), 0);
	assert_int_equal(set(m, 5, LOG, GiB, 64 * PAGE, HVA), 0);
	write_as(m, 0, GiB + 30 * PAGE);
	assert_int_equal(set(m, 5, 0, 0, 0, 0), 0);
	assert_int_equal(set(m, 5, LOG, GiB, 10 * PAGE, HVA), 0);
	write_as(m, 0, GiB + 3 * PAGE);
	assert_int_equal(harvest_and_reset(m), 2); /* offsets 30, 3: one mask */
	write_as(m, 0, GiB + 3 * PAGE);		   /* still writable */
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 0);
	/* within the slot, backwards and forwards, every page is protected */
	write_as(m, 0, GiB + 4 * PAGE);
	write_as(m, 0, GiB + 1 * PAGE);
	write_as(m, 0, GiB + 9 * PAGE);
	assert_int_equal(harvest_and_reset(m), 3);
	write_as(m, 0, GiB + 4 * PAGE);
	write_as(m, 0, GiB + 1 * PAGE);
	write_as(m, 0, GiB + 9 * PAGE);
	assert_int_equal(mv_kvm_model_ring_used(m, 0), 3);
	mv_kvm_model_free(m);
}

/* ---- random operations against a plain array ---------------------------- */

struct ref_slot {
	bool used;
	uint32_t flags;
	uint64_t gfn, npages, hva;
};

/* The rules of §1.2 for a small address space, written the slow way. */
static int ref_set(struct ref_slot *ref, unsigned id, uint32_t flags,
		   uint64_t gfn, uint64_t npages, uint64_t hva)
{
	struct ref_slot *s = &ref[id];
	unsigned i;

	if (!npages) {
		if (!s->used)
			return -EINVAL;
		s->used = false;
		return 0;
	}
	if (s->used) {
		if (hva != s->hva || npages != s->npages ||
		    (flags ^ s->flags) & RO)
			return -EINVAL;
		if (gfn == s->gfn)
			goto out;
	}
	for (i = 0; i < 16; i++)
		if (i != id && ref[i].used &&
		    gfn < ref[i].gfn + ref[i].npages &&
		    ref[i].gfn < gfn + npages)
			return -EEXIST;
out:
	*s = (struct ref_slot){ true, flags, gfn, npages, hva };
	return 0;
}

/* 4000 seeded random operations: results, table and lookups agree. */
static void test_random_operations_match_reference(void **state)
{
	struct mv_kvm_model_params p;
	struct mv_kvm_model *m;
	struct ref_slot ref[16] = { { false, 0, 0, 0, 0 } };
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned t, i;

	(void)state;
	mv_kvm_model_default_params(&p);
	p.nr_slots = 16; /* a small id table keeps the checks cheap */
	m = model_with(&p);
	for (t = 0; t < 4000; t++) {
		unsigned id = (unsigned)(rnd(&seed) % 16);
		uint32_t flags = (uint32_t)(rnd(&seed) % 4);
		uint64_t gfn = rnd(&seed) % 64, npages = rnd(&seed) % 8,
			 hva = HVA + (rnd(&seed) % 4) * MiB;
		int want, got;

		if (ref[id].used && rnd(&seed) % 2) { /* modify more often */
			hva = ref[id].hva;
			npages = rnd(&seed) % 8 ? ref[id].npages : 0;
			flags = (flags & LOG) | (ref[id].flags & RO);
		}
		want = ref_set(ref, id, flags, gfn, npages, hva);
		got = set(m, id, flags, gfn * PAGE, npages * PAGE, hva);
		if (want != got)
			fail_msg(
				"op %u: slot %u gfn %lu npages %lu: %d, want %d",
				t, id, (unsigned long)gfn,
				(unsigned long)npages, got, want);
		for (i = 0; i < 4; i++) {
			uint64_t g = rnd(&seed) % 80;
			int holder = -1;
			unsigned k;

			for (k = 0; k < 16; k++)
				if (ref[k].used && g >= ref[k].gfn &&
				    g < ref[k].gfn + ref[k].npages)
					holder = (int)k;
			assert_int_equal(lookup(m, g * PAGE), holder);
		}
	}
	mv_kvm_model_free(m);
}

/* ---- the model as a backend and as the fake kernel ----------------------- */

/* mv_backend_model_new(): the replay operations map onto the model. */
static void test_backend_model_runs_replay_operations(void **state)
{
	struct mv_backend_limits l;
	struct mv_backend *b;
	struct mv_region2 r = { .slot = 1,
				.flags = LOG,
				.guest_phys_addr = GiB,
				.memory_size = 128 * PAGE,
				.userspace_addr = HVA };
	struct mv_backend_slot slots[4];
	uint64_t bm[2], result;
	bool found;
	int fd;

	(void)state;
	mv_backend_default_limits(&l);
	assert_int_equal(l.nr_slots, 32764);
	assert_int_equal(l.max_gfn, (1ull << 40) - 1);
	assert_int_equal(mv_backend_model_new(&l, &b), 0);
	assert_int_equal(b->ops->set_region(b, &r, false), 0);
	assert_int_equal(b->ops->guest_write(b, GiB + 3 * PAGE), 0);
	assert_int_equal(b->ops->guest_write(b, 0), -EFAULT);
	assert_int_equal(b->ops->get_dirty_log(b, 1, bm, 2, &result), 0);
	assert_int_equal(result, 1);
	assert_int_equal(b->ops->lookup(b, GiB + PAGE, &result, &found), 0);
	assert_true(found);
	assert_int_equal(result, 1);
	assert_int_equal(b->ops->lookup(b, 0, &result, &found), 0);
	assert_false(found);
	assert_int_equal(b->ops->slots(b, slots, 4), 1);
	assert_int_equal(slots[0].gpa, GiB);
	assert_int_equal(b->ops->gmem_create(b, MiB, &fd), 0);
	/* a fresh VM: the old guest_memfd belongs to another VM */
	assert_int_equal(b->ops->vm(b), 0);
	assert_int_equal(b->ops->slots(b, slots, 4), 0);
	r.flags = GMEM;
	r.guest_memfd = (uint32_t)fd;
	r.memory_size = PAGE;
	assert_int_equal(b->ops->set_region(b, &r, true), -EINVAL);
	assert_int_equal(b->ops->enable_cap(b, RING, 4096), 0);
	assert_int_equal(b->ops->create_vcpu(b), 0);
	r.flags = LOG;
	assert_int_equal(b->ops->set_region(b, &r, true), 0);
	assert_int_equal(b->ops->guest_write(b, GiB), 0);
	assert_int_equal(b->ops->reset_rings(b, &result), 0);
	assert_int_equal(result, 1);
	b->ops->free(b);
}

/* The fake kernel: REGION2 and guest_memfd through the ioctl seam. */
static void test_fake_kernel_serves_region2_and_gmem(void **state)
{
	struct mv_kvm_sys *s;
	struct {
		uint64_t size, flags, reserved[6];
	} g = { MiB, 0, { 0 } };
	struct mv_region2 r = { .slot = 0,
				.flags = GMEM,
				.memory_size = MiB,
				.userspace_addr = HVA };
	long dev, vm, gfd;

	(void)state;
	assert_int_equal(mv_kvm_sys_fake_new(&s), 0);
	dev = mv_kvm_open_dev(s, "/dev/kvm");
	assert_true(dev >= 0);
	vm = mv_kvm_ioctl(s, (int)dev, KVM_CREATE_VM, NULL);
	assert_true(vm >= 0);
	assert_int_equal(mv_kvm_ioctl(s, (int)vm, KVM_CHECK_EXTENSION,
				      (void *)(long)KVM_CAP_NR_MEMSLOTS),
			 32764);
	gfd = mv_kvm_ioctl(s, (int)vm, _IOWR(KVMIO, 0xd4, g), &g);
	assert_true(gfd >= 0);
	r.guest_memfd = (uint32_t)dev; /* not a guest_memfd */
	assert_int_equal(mv_kvm_ioctl(s, (int)vm,
				      _IOW(KVMIO, 0x49, struct mv_region2), &r),
			 -EINVAL);
	r.guest_memfd = ~0u;
	assert_int_equal(mv_kvm_ioctl(s, (int)vm,
				      _IOW(KVMIO, 0x49, struct mv_region2), &r),
			 -EBADF);
	r.guest_memfd = (uint32_t)gfd;
	assert_int_equal(mv_kvm_ioctl(s, (int)vm,
				      _IOW(KVMIO, 0x49, struct mv_region2), &r),
			 0);
	assert_int_equal(mv_kvm_sys_fake_guest_write(s, (int)vm, PAGE), 0);
	assert_int_equal(mv_kvm_sys_fake_guest_write(s, (int)vm, 2 * MiB),
			 -EFAULT);
	assert_int_equal(mv_kvm_ioctl(s, (int)vm, KVM_RESET_DIRTY_RINGS, NULL),
			 -EINVAL);
	assert_int_equal(mv_kvm_close_fd(s, (int)vm), 0);
	assert_int_equal(mv_kvm_close_fd(s, (int)gfd), 0);
	assert_int_equal(mv_kvm_close_fd(s, (int)dev), 0);
	mv_kvm_sys_fake_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_rejects_guest_memfd_and_unknown_flags),
		cmocka_unit_test(test_slot_id_beyond_nr_slots_einval),
		cmocka_unit_test(test_invalid_flags_einval),
		cmocka_unit_test(test_unaligned_size_or_gpa_einval),
		cmocka_unit_test(
			test_hva_unaligned_or_beyond_user_limit_einval),
		cmocka_unit_test(test_gmem_offset_unaligned_or_wrapping_einval),
		cmocka_unit_test(test_as_id_beyond_nr_as_einval),
		cmocka_unit_test(test_gpa_wrap_einval),
		cmocka_unit_test(test_npages_beyond_max_einval),
		cmocka_unit_test(test_delete_missing_slot_einval),
		cmocka_unit_test(
			test_modify_rejects_resize_hva_and_readonly_change),
		cmocka_unit_test(test_gmem_slot_immutable_except_delete),
		cmocka_unit_test(
			test_identical_call_is_noop_without_generation_bump),
		cmocka_unit_test(test_overlap_eexist_only_against_other_ids),
		cmocka_unit_test(test_last_gfn_beyond_max_gfn_einval),
		cmocka_unit_test(test_gmem_bind_rules),
		cmocka_unit_test(test_generation_bumps_per_swap_by_nr_as),
		cmocka_unit_test(
			test_update_in_progress_bit_and_invalid_window),
		cmocka_unit_test(test_nr_pages_counts_every_slot),
		cmocka_unit_test(
			test_lookup_hole_gives_no_slot_never_neighbour),
		cmocka_unit_test(test_vcpu_cache_dropped_on_generation_change),
		cmocka_unit_test(test_hva_lookup_finds_every_overlapping_slot),
		cmocka_unit_test(test_alloc_failure_at_every_point_reverts),
		cmocka_unit_test(test_classic_get_snapshots_and_clears),
		cmocka_unit_test(test_get_dirty_log_errors),
		cmocka_unit_test(test_manual_protect_arg_rules),
		cmocka_unit_test(test_manual_get_copies_and_clear_clears),
		cmocka_unit_test(test_clear_window_rules),
		cmocka_unit_test(test_initially_set_starts_all_ones),
		cmocka_unit_test(test_dirty_bits_survive_move),
		cmocka_unit_test(test_log_off_and_on_resets_bits),
		cmocka_unit_test(
			test_readonly_slot_and_hole_writes_exit_to_mmio),
		cmocka_unit_test(test_ring_enable_cap_arg_rules),
		cmocka_unit_test(
			test_ring_entries_in_write_order_once_per_epoch),
		cmocka_unit_test(
			test_ring_reset_counts_and_stops_at_unharvested),
		cmocka_unit_test(test_ring_reset_without_ring_einval),
		cmocka_unit_test(
			test_ring_soft_full_exit_and_duplicate_after_reset),
		cmocka_unit_test(test_ring_cap_arg_truncated_to_u32),
		cmocka_unit_test(test_delete_or_move_zaps_every_spte),
		cmocka_unit_test(test_create_and_flags_change_zap_nothing),
		cmocka_unit_test(test_log_on_protects_unless_initially_set),
		cmocka_unit_test(test_reset_protects_pages_of_non_log_slots),
		cmocka_unit_test(
			test_reset_batch_past_slot_end_protects_nothing),
		cmocka_unit_test(test_random_operations_match_reference),
		cmocka_unit_test(test_backend_model_runs_replay_operations),
		cmocka_unit_test(test_fake_kernel_serves_region2_and_gmem),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
