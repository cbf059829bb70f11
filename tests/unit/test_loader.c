// SPDX-License-Identifier: MIT
/*
 * Guest images (src/vmm/loader.c): ELF64 files built in memory, one test
 * per acceptance rule with its errno and a message naming the field; raw
 * images; loading into a micro machine (bss zeroed, ROM, MMIO, holes and
 * partly backed segments refused before anything is written); reading
 * files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <memvirt/memory.h>

#include "loader.h"

#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)

#define MAX_PH 20
#define PAYLOAD_OFF 0x1000
#define PAYLOAD_SIZE 0x400
#define TEXT_GPA 0x100000ull
#define DATA_GPA 0x101000ull
#define RAW_BASE 0x200000ull

/*
 * A small static executable: text (R X, 0x100 bytes) at 1 MiB, data (R W,
 * 0x20 bytes of data then bss up to 0x2000) at 1 MiB + 4 KiB, and a
 * PT_NOTE and a PT_GNU_STACK that the loader ignores.
 */
struct elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[MAX_PH];
	uint8_t file[PAYLOAD_OFF + PAYLOAD_SIZE];
	size_t len;
};

static void elf_init(struct elf *e)
{
	unsigned i;

	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_ident[EI_VERSION] = EV_CURRENT;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_version = EV_CURRENT;
	e->eh.e_entry = TEXT_GPA + 0x10;
	e->eh.e_phoff = sizeof(Elf64_Ehdr);
	e->eh.e_ehsize = sizeof(Elf64_Ehdr);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = 4;
	e->ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD,
				 .p_flags = PF_R | PF_X,
				 .p_offset = PAYLOAD_OFF,
				 .p_vaddr = TEXT_GPA,
				 .p_paddr = TEXT_GPA,
				 .p_filesz = 0x100,
				 .p_memsz = 0x100,
				 .p_align = 0x1000 };
	e->ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD,
				 .p_flags = PF_R | PF_W,
				 .p_offset = PAYLOAD_OFF + 0x100,
				 .p_vaddr = DATA_GPA,
				 .p_paddr = DATA_GPA,
				 .p_filesz = 0x20,
				 .p_memsz = 0x2000,
				 .p_align = 0x1000 };
	e->ph[2] = (Elf64_Phdr){ .p_type = PT_NOTE,
				 .p_offset = 0xffffffffffffull,
				 .p_filesz = 0x1000000 };
	e->ph[3] =
		(Elf64_Phdr){ .p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W };
	for (i = 0; i < PAYLOAD_SIZE; i++)
		e->file[PAYLOAD_OFF + i] = (uint8_t)(i < 0x100 ? 0x90 : i);
}

/* The file for the current headers. */
static const void *elf_bytes(struct elf *e, size_t *len)
{
	memcpy(e->file, &e->eh, sizeof(e->eh));
	memcpy(e->file + sizeof(e->eh), e->ph, sizeof(e->ph));
	*len = e->len ? e->len : sizeof(e->file);
	return e->file;
}

static int parse(struct elf *e, struct mv_image *img, struct mv_error *err)
{
	size_t len;
	const void *p = elf_bytes(e, &len);

	return mv_image_parse(p, len, MV_IMAGE_AUTO, RAW_BASE, img, err);
}

/* Parsing fails with @ret and a message containing @needle. */
static void expect_refused(struct elf *e, int ret, const char *needle)
{
	struct mv_image img;
	struct mv_error err;

	assert_int_equal(parse(e, &img, &err), ret);
	if (!strstr(err.msg, needle))
		fail_msg("message \"%s\" does not name \"%s\"", err.msg,
			 needle);
}

static void test_elf_valid(void **state)
{
	struct mv_image img;
	struct mv_error err;
	struct elf e;

	(void)state;
	elf_init(&e);
	assert_int_equal(parse(&e, &img, &err), 0);
	assert_int_equal(img.format, MV_IMAGE_ELF);
	assert_int_equal(img.entry, TEXT_GPA + 0x10);
	assert_int_equal(img.nr_segs, 2);
	assert_int_equal(img.seg[0].gpa, TEXT_GPA);
	assert_int_equal(img.seg[0].filesz, 0x100);
	assert_ptr_equal(img.seg[0].data, e.file + PAYLOAD_OFF);
	assert_int_equal(img.seg[1].gpa, DATA_GPA);
	assert_int_equal(img.seg[1].memsz, 0x2000);
	assert_int_equal(img.lowest, TEXT_GPA);
	assert_int_equal(img.highest_end, DATA_GPA + 0x2000);
}

static void test_elf_segments_sorted_by_gpa(void **state)
{
	struct mv_image img;
	struct mv_error err;
	Elf64_Phdr t;
	struct elf e;

	(void)state;
	elf_init(&e);
	t = e.ph[0];
	e.ph[0] = e.ph[1];
	e.ph[1] = t;
	assert_int_equal(parse(&e, &img, &err), 0);
	assert_int_equal(img.seg[0].gpa, TEXT_GPA);
	assert_int_equal(img.seg[1].gpa, DATA_GPA);
}

static void test_elf_empty_load_skipped(void **state)
{
	struct mv_image img;
	struct mv_error err;
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[2] = (Elf64_Phdr){ .p_type = PT_LOAD,
				.p_paddr = TEXT_GPA,
				.p_vaddr = TEXT_GPA };
	assert_int_equal(parse(&e, &img, &err), 0);
	assert_int_equal(img.nr_segs, 2);
}

static void test_elf_too_short(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.len = 40;
	expect_refused(&e, -ENOEXEC, "shorter");
}

static void test_elf_bad_magic_when_forced(void **state)
{
	static const char text[] = "not an elf, but long enough to hold a "
				   "whole ELF64 header.........";
	struct mv_image img;
	struct mv_error err;

	(void)state;
	assert_int_equal(mv_image_parse(text, sizeof(text), MV_IMAGE_ELF, 0,
					&img, &err),
			 -ENOEXEC);
	assert_non_null(strstr(err.msg, "magic"));
}

static void test_elf_class_32_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_ident[EI_CLASS] = ELFCLASS32;
	expect_refused(&e, -ENOEXEC, "EI_CLASS] is 1");
}

static void test_elf_big_endian_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_ident[EI_DATA] = ELFDATA2MSB;
	expect_refused(&e, -ENOEXEC, "EI_DATA] is 2");
}

static void test_elf_version_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_version = 7;
	expect_refused(&e, -ENOEXEC, "version");
}

static void test_elf_machine_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_machine = EM_386;
	expect_refused(&e, -ENOEXEC, "e_machine is 3");
}

static void test_elf_type_dyn_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_type = ET_DYN;
	expect_refused(&e, -ENOEXEC, "e_type is 3");
}

static void test_elf_phentsize_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_phentsize = 32;
	expect_refused(&e, -EINVAL, "e_phentsize is 32");
}

static void test_elf_no_phdrs_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_phnum = 0;
	expect_refused(&e, -ENOEXEC, "e_phnum is 0");
}

static void test_elf_phdrs_outside_file(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_phoff = sizeof(e.file) - 100;
	expect_refused(&e, -EINVAL, "e_phoff");
	e.eh.e_phoff = UINT64_MAX - 8; /* offset + size wraps */
	expect_refused(&e, -EINVAL, "e_phoff");
}

static void test_elf_interp_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[3].p_type = PT_INTERP;
	expect_refused(&e, -ENOEXEC, "PT_INTERP");
}

static void test_elf_dynamic_refused(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[2].p_type = PT_DYNAMIC;
	expect_refused(&e, -ENOEXEC, "PT_DYNAMIC");
}

static void test_elf_filesz_over_memsz(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[1].p_filesz = 0x2001;
	expect_refused(&e, -EINVAL, "p_filesz 0x2001 > p_memsz 0x2000");
}

static void test_elf_segment_outside_file(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[1].p_filesz = PAYLOAD_SIZE;
	e.ph[1].p_memsz = PAYLOAD_SIZE;
	expect_refused(&e, -EINVAL, "p_offset 0x1100");
	elf_init(&e);
	e.ph[1].p_offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
	expect_refused(&e, -EINVAL, "past the end of the file");
}

static void test_elf_gpa_wraps(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[1].p_paddr = e.ph[1].p_vaddr = UINT64_MAX - 0x1000;
	expect_refused(&e, -EINVAL, "wraps");
}

static void test_elf_vaddr_differs_from_paddr(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[1].p_vaddr = 0xffffffff80101000ull;
	expect_refused(&e, -EINVAL, "p_vaddr");
}

static void test_elf_overlapping_segments(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[1].p_paddr = e.ph[1].p_vaddr = TEXT_GPA + 0xff;
	expect_refused(&e, -EINVAL, "overlap");
	/* touching is fine */
	elf_init(&e);
	e.ph[1].p_paddr = e.ph[1].p_vaddr = TEXT_GPA + 0x100;
	{
		struct mv_image img;
		struct mv_error err;

		assert_int_equal(parse(&e, &img, &err), 0);
	}
	/* a segment inside another */
	elf_init(&e);
	e.ph[0].p_memsz = 0x10000;
	expect_refused(&e, -EINVAL, "overlap");
}

/* @n PT_LOADs of 0x10 bytes each, 4 KiB apart, the first executable. */
static void many_loads(struct elf *e, unsigned n)
{
	unsigned i;

	elf_init(e);
	e->eh.e_phnum = (Elf64_Half)n;
	e->eh.e_entry = TEXT_GPA;
	for (i = 0; i < n; i++)
		e->ph[i] = (Elf64_Phdr){ .p_type = PT_LOAD,
					 .p_flags = i ? PF_R : PF_R | PF_X,
					 .p_offset = PAYLOAD_OFF,
					 .p_vaddr = TEXT_GPA + i * 0x1000ull,
					 .p_paddr = TEXT_GPA + i * 0x1000ull,
					 .p_filesz = 0x10,
					 .p_memsz = 0x10 };
}

static void test_elf_at_most_16_loads(void **state)
{
	struct mv_image img;
	struct mv_error err;
	struct elf e;

	(void)state;
	many_loads(&e, 16);
	assert_int_equal(parse(&e, &img, &err), 0);
	assert_int_equal(img.nr_segs, 16);
	many_loads(&e, 17);
	expect_refused(&e, -E2BIG, "more than 16");
}

static void test_elf_entry_outside_loads(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_entry = TEXT_GPA + 0x100; /* one past the text */
	expect_refused(&e, -ENOEXEC, "e_entry 0x100100");
}

static void test_elf_entry_in_data_segment(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.eh.e_entry = DATA_GPA + 0x40; /* in the bss */
	expect_refused(&e, -ENOEXEC, "executable");
}

static void test_elf_without_load(void **state)
{
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[0].p_type = PT_NOTE;
	e.ph[1].p_type = PT_NOTE;
	expect_refused(&e, -ENOEXEC, "no PT_LOAD");
}

static void test_raw_images(void **state)
{
	static const uint8_t blob[] = { 0xb0, 0x2a, 0xe6, 0xf4, 0xf4 };
	struct mv_image img;
	struct mv_error err;
	struct elf e;
	size_t len;
	const void *p;

	(void)state;
	assert_int_equal(mv_image_parse(blob, sizeof(blob), MV_IMAGE_AUTO,
					RAW_BASE, &img, &err),
			 0);
	assert_int_equal(img.format, MV_IMAGE_RAW);
	assert_int_equal(img.entry, RAW_BASE);
	assert_int_equal(img.nr_segs, 1);
	assert_int_equal(img.seg[0].gpa, RAW_BASE);
	assert_int_equal(img.seg[0].filesz, sizeof(blob));
	assert_int_equal(img.seg[0].memsz, sizeof(blob));
	assert_ptr_equal(img.seg[0].data, blob);
	assert_int_equal(img.highest_end, RAW_BASE + sizeof(blob));

	/* an ELF file forced raw is just bytes */
	elf_init(&e);
	p = elf_bytes(&e, &len);
	assert_int_equal(
		mv_image_parse(p, len, MV_IMAGE_RAW, RAW_BASE, &img, &err), 0);
	assert_int_equal(img.format, MV_IMAGE_RAW);
	assert_int_equal(img.seg[0].filesz, len);

	assert_int_equal(mv_image_parse(blob, 0, MV_IMAGE_AUTO, RAW_BASE, &img,
					&err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "empty"));
	assert_int_equal(mv_image_parse(blob, sizeof(blob), MV_IMAGE_RAW,
					UINT64_MAX - 2, &img, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "wrap"));
	assert_int_equal(mv_image_parse(blob, sizeof(blob), MV_IMAGE_RAW,
					UINT64_MAX - 5, &img, &err),
			 0);
	assert_int_equal(img.highest_end, UINT64_MAX);
	assert_int_equal(mv_image_parse(blob, sizeof(blob), MV_IMAGE_RAW,
					UINT64_MAX - 4, &img, &err),
			 -EINVAL);
	assert_int_equal(mv_image_parse(blob, sizeof(blob),
					(enum mv_image_format)7, 0, &img, &err),
			 -EINVAL);
	assert_int_equal(mv_image_parse(blob, sizeof(blob), MV_IMAGE_RAW, 0,
					NULL, &err),
			 -EINVAL);
}

/* ---- loading ------------------------------------------------------------ */

static struct mv_machine *micro(struct mv_as **mem)
{
	struct mv_machine *m;
	struct mv_error err;

	assert_int_equal(mv_machine_preset("micro", 64 * MiB, &m, &err), 0);
	*mem = mv_machine_find_as(m, "memory");
	assert_non_null(*mem);
	return m;
}

static void test_load_copies_and_zeroes_bss(void **state)
{
	struct mv_image img;
	struct mv_error err;
	struct mv_as *mem;
	struct mv_machine *m = micro(&mem);
	uint8_t buf[0x2000], junk[0x3000];
	struct elf e;
	unsigned i;

	(void)state;
	memset(junk, 0xff, sizeof(junk));
	assert_int_equal(mv_as_write(mem, DATA_GPA, junk, sizeof(junk)), 0);
	elf_init(&e);
	assert_int_equal(parse(&e, &img, &err), 0);
	assert_int_equal(mv_image_load(mem, &img, &err), 0);
	assert_int_equal(mv_as_read(mem, TEXT_GPA, buf, 0x100), 0);
	assert_memory_equal(buf, e.file + PAYLOAD_OFF, 0x100);
	assert_int_equal(mv_as_read(mem, DATA_GPA, buf, 0x2000), 0);
	assert_memory_equal(buf, e.file + PAYLOAD_OFF + 0x100, 0x20);
	for (i = 0x20; i < 0x2000; i++)
		if (buf[i])
			fail_msg("bss byte 0x%x is 0x%x", i, buf[i]);
	/* memsz ends the segment: the byte after it is untouched */
	assert_int_equal(mv_as_read(mem, DATA_GPA + 0x2000, buf, 1), 0);
	assert_int_equal(buf[0], 0xff);
	mv_machine_free(m);
}

/* A raw image at @gpa is refused with @ret and @needle in the message. */
static void expect_load_refused(uint64_t gpa, uint64_t size, int ret,
				const char *needle)
{
	static uint8_t blob[0x3000];
	struct mv_image img;
	struct mv_error err;
	struct mv_as *mem;
	struct mv_machine *m = micro(&mem);

	memset(blob, 0x5a, sizeof(blob));
	assert_int_equal(
		mv_image_parse(blob, size, MV_IMAGE_RAW, gpa, &img, &err), 0);
	assert_int_equal(mv_image_load(mem, &img, &err), ret);
	if (!strstr(err.msg, needle))
		fail_msg("message \"%s\" does not name \"%s\"", err.msg,
			 needle);
	mv_machine_free(m);
}

static void test_load_refuses_rom(void **state)
{
	(void)state;
	expect_load_refused(4 * GiB - 0x10000, 0x100, -EACCES, "ROM \"rom\"");
}

static void test_load_refuses_mmio(void **state)
{
	(void)state;
	expect_load_refused(0xfe000000, 0x10, -EFAULT, "device \"mmio\"");
}

static void test_load_refuses_hole(void **state)
{
	(void)state;
	expect_load_refused(0x10000000, 0x10, -EFAULT, "hole");
	/* partly RAM: the end of RAM is named */
	expect_load_refused(64 * MiB - 0x1000, 0x2000, -EFAULT,
			    "0x4000000 is nothing");
}

/* Nothing is written when a later segment is refused. */
static void test_load_checks_all_before_writing(void **state)
{
	struct mv_image img;
	struct mv_error err;
	struct mv_as *mem;
	struct mv_machine *m = micro(&mem);
	uint8_t b = 0;
	struct elf e;

	(void)state;
	elf_init(&e);
	e.ph[1].p_paddr = e.ph[1].p_vaddr = 0xfe000000; /* MMIO */
	assert_int_equal(parse(&e, &img, &err), 0);
	assert_int_equal(mv_image_load(mem, &img, &err), -EFAULT);
	assert_non_null(strstr(err.msg, "segment 1"));
	assert_int_equal(mv_as_read(mem, TEXT_GPA, &b, 1), 0);
	assert_int_equal(b, 0);
	assert_int_equal(mv_image_load(NULL, &img, &err), -EINVAL);
	mv_machine_free(m);
}

/* ---- files -------------------------------------------------------------- */

static void test_read_file(void **state)
{
	char path[] = "/tmp/memvirt-test-loader-XXXXXX";
	static const char text[] = "hello, guest";
	struct mv_error err;
	size_t len;
	void *buf;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text)), sizeof(text));
	assert_int_equal(mv_image_read_file(path, &buf, &len, &err), 0);
	assert_int_equal(len, sizeof(text));
	assert_memory_equal(buf, text, sizeof(text));
	free(buf);

	/* 1 GiB + 1 (sparse): refused before reading */
	assert_int_equal(ftruncate(fd, (off_t)(GiB + 1)), 0);
	assert_int_equal(mv_image_read_file(path, &buf, &len, &err), -EFBIG);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "1 GiB"));
	close(fd);
	unlink(path);

	assert_int_equal(mv_image_read_file(path, &buf, &len, &err), -ENOENT);
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(mv_image_read_file("/tmp", &buf, &len, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_valid),
		cmocka_unit_test(test_elf_segments_sorted_by_gpa),
		cmocka_unit_test(test_elf_empty_load_skipped),
		cmocka_unit_test(test_elf_too_short),
		cmocka_unit_test(test_elf_bad_magic_when_forced),
		cmocka_unit_test(test_elf_class_32_refused),
		cmocka_unit_test(test_elf_big_endian_refused),
		cmocka_unit_test(test_elf_version_refused),
		cmocka_unit_test(test_elf_machine_refused),
		cmocka_unit_test(test_elf_type_dyn_refused),
		cmocka_unit_test(test_elf_phentsize_refused),
		cmocka_unit_test(test_elf_no_phdrs_refused),
		cmocka_unit_test(test_elf_phdrs_outside_file),
		cmocka_unit_test(test_elf_interp_refused),
		cmocka_unit_test(test_elf_dynamic_refused),
		cmocka_unit_test(test_elf_filesz_over_memsz),
		cmocka_unit_test(test_elf_segment_outside_file),
		cmocka_unit_test(test_elf_gpa_wraps),
		cmocka_unit_test(test_elf_vaddr_differs_from_paddr),
		cmocka_unit_test(test_elf_overlapping_segments),
		cmocka_unit_test(test_elf_at_most_16_loads),
		cmocka_unit_test(test_elf_entry_outside_loads),
		cmocka_unit_test(test_elf_entry_in_data_segment),
		cmocka_unit_test(test_elf_without_load),
		cmocka_unit_test(test_raw_images),
		cmocka_unit_test(test_load_copies_and_zeroes_bss),
		cmocka_unit_test(test_load_refuses_rom),
		cmocka_unit_test(test_load_refuses_mmio),
		cmocka_unit_test(test_load_refuses_hole),
		cmocka_unit_test(test_load_checks_all_before_writing),
		cmocka_unit_test(test_read_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
