// SPDX-License-Identifier: MIT
/*
 * The embedded guest programs (guest/guests.h): each ELF guest is a static
 * x86-64 executable the VMM can load at 1 MiB (entry in an executable
 * PT_LOAD, every PT_LOAD in [1 MiB, 16 MiB), no interpreter, no dynamic
 * section), exit42 is its 7 raw bytes, and the bandwidth kernels the host
 * shares with the guest (guest/bw_kernels.h) compute what they claim.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "guests.h"
#include "bw_kernels.h"

#define LOAD_FIRST 0x100000ull /* 1 MiB */
#define LOAD_END 0x1000000ull  /* 16 MiB */

struct image {
	const unsigned char *data;
	const size_t *len;
};

static const struct image selftest = { mv_guest_selftest,
				       &mv_guest_selftest_len };
static const struct image dirtywriter = { mv_guest_dirtywriter,
					  &mv_guest_dirtywriter_len };
static const struct image bandwidth = { mv_guest_bandwidth,
					&mv_guest_bandwidth_len };

/* The ELF header, copied out (the byte array has no alignment). */
static Elf64_Ehdr ehdr_of(const struct image *img)
{
	Elf64_Ehdr eh;

	assert_true(*img->len >= sizeof(eh));
	memcpy(&eh, img->data, sizeof(eh));
	return eh;
}

/* Program header @i, bounds-checked against the image. */
static Elf64_Phdr phdr_of(const struct image *img, unsigned int i)
{
	Elf64_Ehdr eh = ehdr_of(img);
	Elf64_Phdr ph;
	uint64_t off = eh.e_phoff + (uint64_t)i * eh.e_phentsize;

	assert_int_equal(eh.e_phentsize, sizeof(ph));
	assert_true(i < eh.e_phnum);
	assert_true(off <= *img->len && sizeof(ph) <= *img->len - off);
	memcpy(&ph, img->data + off, sizeof(ph));
	return ph;
}

static void test_elf_is_static_x86_64_exec(void **state)
{
	const struct image *img = *state;
	Elf64_Ehdr eh = ehdr_of(img);

	assert_memory_equal(eh.e_ident, ELFMAG, SELFMAG);
	assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS64);
	assert_int_equal(eh.e_ident[EI_DATA], ELFDATA2LSB);
	assert_int_equal(eh.e_ident[EI_VERSION], EV_CURRENT);
	assert_int_equal(eh.e_machine, EM_X86_64);
	assert_int_equal(eh.e_type, ET_EXEC);
	assert_int_equal(eh.e_ehsize, sizeof(eh));
	assert_true(eh.e_phnum > 0);
}

static void test_elf_loads_between_1m_and_16m(void **state)
{
	const struct image *img = *state;
	Elf64_Ehdr eh = ehdr_of(img);
	unsigned int loads = 0;

	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = phdr_of(img, i);

		if (ph.p_type != PT_LOAD)
			continue;
		loads++;
		assert_true(ph.p_filesz <= ph.p_memsz);
		assert_true(ph.p_offset <= *img->len);
		assert_true(ph.p_filesz <= *img->len - ph.p_offset);
		assert_true(ph.p_vaddr >= LOAD_FIRST);
		assert_true(ph.p_memsz <= LOAD_END - ph.p_vaddr);
		assert_int_equal(ph.p_paddr, ph.p_vaddr); /* identity map */
	}
	assert_true(loads > 0);
}

static void test_elf_entry_in_executable_load(void **state)
{
	const struct image *img = *state;
	Elf64_Ehdr eh = ehdr_of(img);
	int found = 0;

	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = phdr_of(img, i);

		if (ph.p_type == PT_LOAD && eh.e_entry >= ph.p_vaddr &&
		    eh.e_entry - ph.p_vaddr < ph.p_filesz) {
			assert_true(ph.p_flags & PF_X);
			found = 1;
		}
	}
	assert_true(found);
}

static void test_elf_no_interp_no_dynamic(void **state)
{
	const struct image *img = *state;
	Elf64_Ehdr eh = ehdr_of(img);

	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = phdr_of(img, i);

		assert_int_not_equal(ph.p_type, PT_INTERP);
		assert_int_not_equal(ph.p_type, PT_DYNAMIC);
		/* No segment both writable and executable. */
		if (ph.p_type == PT_LOAD)
			assert_false((ph.p_flags & PF_W) &&
				     (ph.p_flags & PF_X));
	}
}

static void test_exit42_raw_bytes(void **state)
{
	static const unsigned char want[] = { 0xb0, 0x2a, 0xe6, 0xf4,
					      0xf4, 0xeb, 0xfd };

	(void)state;
	assert_int_equal(mv_guest_exit42_len, sizeof(want));
	assert_memory_equal(mv_guest_exit42, want, sizeof(want));
}

/* Sattolo's shuffle visits every node once before coming back. */
static void test_bw_chase_is_one_cycle(void **state)
{
	enum {
		STRIDE = MV_BW_CHASE_ALIGN,
		NODES = 1000
	};
	unsigned char *buf = aligned_alloc(64, NODES * STRIDE);
	char *seen = calloc(NODES, 1);
	uint64_t base = (uintptr_t)buf, p = base;

	(void)state;
	assert_non_null(buf);
	assert_non_null(seen);
	assert_int_equal(mv_bw_chase_init(buf, NODES * STRIDE, STRIDE, base, 7),
			 NODES);
	for (unsigned int i = 0; i < NODES; i++) {
		uint64_t k = (p - base) / STRIDE;

		assert_true(p >= base && (p - base) % STRIDE == 0);
		assert_true(k < NODES);
		assert_false(seen[k]);
		seen[k] = 1;
		p = mv_bw_chase((void *)(uintptr_t)p, 1);
	}
	assert_int_equal(p, base);
	assert_int_equal(mv_bw_chase(buf, NODES), base);
	free(seen);
	free(buf);
}

/* write fills, read sums, copy duplicates the first half. */
static void test_bw_kernels_compute(void **state)
{
	enum {
		QWORDS = 512
	};
	uint64_t *buf = calloc(QWORDS, 8), cycles, v = 3;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(
		mv_bw_run(MV_BW_WRITE, buf, QWORDS * 8, 2, &cycles, &v), 0);
	assert_int_equal(buf[0], 3);
	assert_int_equal(buf[QWORDS - 1], 3);
	assert_int_equal(mv_bw_run(MV_BW_READ, buf, QWORDS * 8, 2, &cycles, &v),
			 0);
	assert_int_equal(v, 2 * 3 * QWORDS);
	for (unsigned int i = 0; i < QWORDS; i++)
		buf[i] = i;
	assert_int_equal(mv_bw_run(MV_BW_COPY, buf, QWORDS * 8, 1, &cycles, &v),
			 0);
	for (unsigned int i = 0; i < QWORDS / 2; i++)
		assert_int_equal(buf[QWORDS / 2 + i], i);
	assert_int_equal(mv_bw_run(0, buf, QWORDS * 8, 1, &cycles, &v), -1);
	free(buf);
}

int main(void)
{
	/* One test per rule and ELF guest, named "rule(guest)". */
	// clang-format off
#define T(f, img) { #f "(" #img ")", f, NULL, NULL, (void *)&img }
#define ELF_TESTS(img) \
	T(test_elf_is_static_x86_64_exec, img), \
	T(test_elf_loads_between_1m_and_16m, img), \
	T(test_elf_entry_in_executable_load, img), \
	T(test_elf_no_interp_no_dynamic, img)
	// clang-format on
	const struct CMUnitTest tests[] = {
		ELF_TESTS(selftest),
		ELF_TESTS(dirtywriter),
		ELF_TESTS(bandwidth),
		cmocka_unit_test(test_exit42_raw_bytes),
		cmocka_unit_test(test_bw_chase_is_one_cycle),
		cmocka_unit_test(test_bw_kernels_compute),
	};
#undef ELF_TESTS
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
