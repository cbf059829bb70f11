/* SPDX-License-Identifier: MIT */
/*
 * Guest images: static ELF64 x86-64 executables and raw blobs, parsed
 * from a buffer (outside input: every field is checked) and copied into
 * guest RAM.  Internal to src/vmm.
 */
#ifndef MEMVIRT_VMM_LOADER_H
#define MEMVIRT_VMM_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "memvirt/memory.h"
#include "memvirt/types.h"

#define MV_IMAGE_MAX_SEGS 16
#define MV_IMAGE_MAX_FILE (1ull << 30) /* mv_image_read_file() refuses more */

enum mv_image_format {
	MV_IMAGE_AUTO,
	MV_IMAGE_RAW,
	MV_IMAGE_ELF
};

/*
 * struct mv_image_seg - bytes to place at @gpa: @filesz from @data, then
 * zeros up to @memsz.  0 < @memsz, @filesz <= @memsz, @gpa + @memsz <
 * 2^64 (so an exclusive end always fits in 64 bits).
 */
struct mv_image_seg {
	mv_gpa_t gpa;
	uint64_t filesz, memsz;
	const void *data;
};

/*
 * struct mv_image - a parsed image.  @seg[0..nr_segs) sorted by GPA,
 * non-overlapping, pointing into the parsed buffer (borrowed); [lowest,
 * highest_end) spans them all.  @format is RAW or ELF, never AUTO.
 */
struct mv_image {
	enum mv_image_format format;
	mv_gva_t entry;
	size_t nr_segs;
	struct mv_image_seg seg[MV_IMAGE_MAX_SEGS];
	mv_gpa_t lowest, highest_end;
};

/**
 * mv_image_parse() - parse @buf as a guest image.
 * @buf, @len: the image; borrowed, the segments point into it.
 * @fmt:       AUTO picks ELF when @buf starts with the ELF magic, else RAW.
 * @raw_base:  RAW: the GPA of the single segment and the entry point.
 * @img:       out.
 * @err:       receives a message naming the field and its values.
 *
 * ELF rules: ELF64, little-endian, x86-64, ET_EXEC, PT_LOAD segments (at
 * most 16, p_paddr as GPA, equal to p_vaddr since the guest runs on an
 * identity map, empty ones skipped), PT_NOTE, PT_GNU_STACK and other
 * types ignored, PT_INTERP and PT_DYNAMIC refused; headers and p_offset +
 * p_filesz inside the file, p_filesz <= p_memsz, p_paddr + p_memsz
 * below 2^64, no two segments overlapping, entry inside an executable
 * PT_LOAD.
 * Return: 0; -ENOEXEC (not something we run: magic, class, byte order,
 * machine, type, version, interpreter, dynamic, no PT_LOAD, entry),
 * -EINVAL (malformed: sizes, offsets, overlaps, wraps, empty image,
 * NULL arguments), -E2BIG (more than 16 PT_LOAD).
 */
int mv_image_parse(const void *buf, size_t len, enum mv_image_format fmt,
		   mv_gpa_t raw_base, struct mv_image *img,
		   struct mv_error *err);

/**
 * mv_image_load() - copy @img's segments into guest RAM through @mem and
 * zero each memsz - filesz tail.  Every segment is checked to be writable
 * RAM before anything is written (ROM, ROM devices, MMIO and holes are
 * refused, not silently dropped), so a refused image leaves memory as it
 * was.  Written pages are marked dirty.
 * Return: 0, -EFAULT (not RAM: a hole or a device), -EACCES (read-only
 * memory: ROM, ROM device), -EINVAL (NULL arguments); @err says which
 * segment and address.
 */
int mv_image_load(struct mv_as *mem, const struct mv_image *img,
		  struct mv_error *err);

/**
 * mv_image_read_file() - read the regular file @path into *@buf, a
 * malloc'd buffer the caller frees (also for an empty file); *@len its
 * size.
 * Return: 0, -EFBIG (over MV_IMAGE_MAX_FILE), -EINVAL (not a regular
 * file, NULL arguments), -ENOMEM, or the errno of open/read; @err says
 * which file and why.
 */
int mv_image_read_file(const char *path, void **buf, size_t *len,
		       struct mv_error *err);

#endif /* MEMVIRT_VMM_LOADER_H */
