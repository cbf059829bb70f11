// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for guest images (src/vmm/loader.c): the input is an
 * image file.  mv_image_parse() (AUTO) must either refuse it with a
 * message or return segments that are sorted, disjoint, inside the input
 * and hold the entry point; mv_image_load() then copies them into a micro
 * machine (created once per process) or refuses with a message, and what
 * it loaded must read back.  Finally the software page walker runs over
 * whatever the image left in guest RAM.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/memory.h>

#include "boot.h"
#include "loader.h"

#define RAM_SIZE (16ull << 20)
#define RAW_BASE 0x100000ull

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mv_machine *machine;
static struct mv_as *mem;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mv_error err;

	(void)argc;
	(void)argv;
	if (mv_machine_preset("micro", RAM_SIZE, &machine, &err)) {
		fprintf(stderr, "fuzz_image: %s\n", err.msg);
		abort();
	}
	mem = mv_machine_find_as(machine, "memory");
	if (!mem)
		abort();
	return 0;
}

static void check(bool ok, const char *what, const struct mv_image *img)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_image: %s (format %d, %zu segments)\n", what,
		img->format, img->nr_segs);
	abort();
}

/* The parse contract of loader.h. */
static void check_image(const struct mv_image *img, const uint8_t *data,
			size_t size)
{
	bool entry_in = false;
	size_t i;

	check(img->nr_segs >= 1 && img->nr_segs <= MV_IMAGE_MAX_SEGS,
	      "segment count", img);
	for (i = 0; i < img->nr_segs; i++) {
		const struct mv_image_seg *s = &img->seg[i];
		const uint8_t *p = s->data;

		check(s->memsz && s->filesz <= s->memsz, "sizes", img);
		check(s->memsz <= UINT64_MAX - s->gpa, "wrap", img);
		check(!s->filesz || (p >= data && s->filesz <= size &&
				     (size_t)(p - data) <= size - s->filesz),
		      "data outside the input", img);
		check(!i || s->gpa - img->seg[i - 1].gpa >=
				      img->seg[i - 1].memsz,
		      "order or overlap", img);
		check(s->gpa >= img->lowest &&
			      s->gpa + s->memsz <= img->highest_end,
		      "bounds", img);
		entry_in = entry_in || (img->entry >= s->gpa &&
					img->entry - s->gpa < s->memsz);
	}
	check(entry_in, "entry outside the segments", img);
}

/* Loaded segments read back (the first bytes of each). */
static void check_loaded(const struct mv_image *img)
{
	uint8_t buf[64];
	size_t i;

	for (i = 0; i < img->nr_segs; i++) {
		const struct mv_image_seg *s = &img->seg[i];
		uint64_t n = s->filesz < sizeof(buf) ? s->filesz : sizeof(buf);

		check(mv_as_read(mem, s->gpa, buf, n) == 0, "read back", img);
		check(!memcmp(buf, s->data, n), "contents", img);
	}
}

/* Walk guest RAM as page tables, rooted where the input says. */
static void walk_some(const uint8_t *data, size_t size)
{
	struct mv_x86_walk w;
	uint64_t v[2] = { 0, 0 };
	char why[128];

	memcpy(v, data, size < sizeof(v) ? size : sizeof(v));
	if (!mv_x86_walk(mem, v[0] % RAM_SIZE, v[1], &w, why, sizeof(why)) &&
	    (w.gpa & (w.page_size - 1)) != (v[1] & (w.page_size - 1)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mv_image img;
	struct mv_error err;
	int ret;

	ret = mv_image_parse(data, size, MV_IMAGE_AUTO, RAW_BASE, &img, &err);
	if (ret) {
		check(ret < 0 && err.msg[0], "refusal without a message", &img);
		return 0;
	}
	check_image(&img, data, size);
	ret = mv_image_load(mem, &img, &err);
	if (ret)
		check(ret < 0 && err.msg[0], "load refused without a message",
		      &img);
	else
		check_loaded(&img);
	walk_some(data, size);
	return 0;
}
