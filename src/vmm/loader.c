// SPDX-License-Identifier: MIT
/*
 * Guest images: ELF64 and raw parsing (the buffer is outside input: every
 * header is copied out before use and every offset checked without
 * overflow) and loading into guest RAM, refusing anything that is not
 * writable RAM.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"

__attribute__((format(printf, 3, 4))) static int
fail(struct mv_error *err, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* @off + @size lies inside a buffer of @len bytes (no overflow). */
static bool inside(uint64_t off, uint64_t size, uint64_t len)
{
	return off <= len && size <= len - off;
}

/* ---- raw ---------------------------------------------------------------- */

static int parse_raw(const void *buf, size_t len, mv_gpa_t base,
		     struct mv_image *img, struct mv_error *err)
{
	if (!len)
		return fail(err, -EINVAL, "raw image: empty");
	if (len > UINT64_MAX - base)
		return fail(err, -EINVAL,
			    "raw image: %zu bytes at 0x%" PRIx64
			    " wrap to the end of the address space",
			    len, base);
	img->format = MV_IMAGE_RAW;
	img->entry = base;
	img->nr_segs = 1;
	img->seg[0] = (struct mv_image_seg){ base, len, len, buf };
	img->lowest = base;
	img->highest_end = base + len;
	return 0;
}

/* ---- ELF ---------------------------------------------------------------- */

static int check_ehdr(const Elf64_Ehdr *eh, size_t len, struct mv_error *err)
{
	const unsigned char *id = eh->e_ident;

	if (memcmp(id, ELFMAG, SELFMAG))
		return fail(err, -ENOEXEC, "ELF: bad magic (not an ELF file)");
	if (id[EI_CLASS] != ELFCLASS64)
		return fail(err, -ENOEXEC,
			    "ELF: e_ident[EI_CLASS] is %u, want %u (ELF64)",
			    id[EI_CLASS], ELFCLASS64);
	if (id[EI_DATA] != ELFDATA2LSB)
		return fail(err, -ENOEXEC,
			    "ELF: e_ident[EI_DATA] is %u, want %u "
			    "(little-endian)",
			    id[EI_DATA], ELFDATA2LSB);
	if (id[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
		return fail(err, -ENOEXEC,
			    "ELF: version is %u/%" PRIu32 ", want %u",
			    id[EI_VERSION], eh->e_version, EV_CURRENT);
	if (eh->e_machine != EM_X86_64)
		return fail(err, -ENOEXEC,
			    "ELF: e_machine is %u, want %u (x86-64)",
			    eh->e_machine, EM_X86_64);
	if (eh->e_type != ET_EXEC)
		return fail(err, -ENOEXEC,
			    "ELF: e_type is %u, want %u (ET_EXEC: a static "
			    "executable; ET_DYN/PIE is not supported)",
			    eh->e_type, ET_EXEC);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return fail(err, -EINVAL, "ELF: e_phentsize is %u, want %zu",
			    eh->e_phentsize, sizeof(Elf64_Phdr));
	if (eh->e_phnum == 0)
		return fail(err, -ENOEXEC,
			    "ELF: e_phnum is 0 (no program headers)");
	if (eh->e_phnum == PN_XNUM)
		return fail(err, -EINVAL,
			    "ELF: e_phnum is PN_XNUM (extended numbering is "
			    "not supported)");
	if (!inside(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr),
		    len))
		return fail(err, -EINVAL,
			    "ELF: program headers (e_phoff 0x%" PRIx64
			    ", %u entries) extend past the end of the file "
			    "(%zu bytes)",
			    eh->e_phoff, eh->e_phnum, len);
	return 0;
}

/* One PT_LOAD header, checked on its own. */
static int check_load(const Elf64_Phdr *ph, unsigned i, size_t len,
		      struct mv_error *err)
{
	if (ph->p_filesz > ph->p_memsz)
		return fail(err, -EINVAL,
			    "ELF: PT_LOAD %u: p_filesz 0x%" PRIx64
			    " > p_memsz 0x%" PRIx64,
			    i, ph->p_filesz, ph->p_memsz);
	if (!inside(ph->p_offset, ph->p_filesz, len))
		return fail(err, -EINVAL,
			    "ELF: PT_LOAD %u: p_offset 0x%" PRIx64
			    " + p_filesz 0x%" PRIx64
			    " extends past the end of the file (%zu bytes)",
			    i, ph->p_offset, ph->p_filesz, len);
	if (ph->p_memsz > UINT64_MAX - ph->p_paddr)
		return fail(err, -EINVAL,
			    "ELF: PT_LOAD %u: p_paddr 0x%" PRIx64
			    " + p_memsz 0x%" PRIx64
			    " wraps to the end of the address space",
			    i, ph->p_paddr, ph->p_memsz);
	if (ph->p_vaddr != ph->p_paddr)
		return fail(err, -EINVAL,
			    "ELF: PT_LOAD %u: p_vaddr 0x%" PRIx64
			    " != p_paddr 0x%" PRIx64
			    " (guests run on an identity map)",
			    i, ph->p_vaddr, ph->p_paddr);
	return 0;
}

/* Sort by GPA (at most 16: insertion sort), then refuse overlaps. */
static int check_overlaps(struct mv_image *img, const bool *exec,
			  bool *sorted_exec, struct mv_error *err)
{
	size_t i, j;

	for (i = 0; i < img->nr_segs; i++)
		sorted_exec[i] = exec[i];
	for (i = 1; i < img->nr_segs; i++) {
		struct mv_image_seg s = img->seg[i];
		bool x = sorted_exec[i];

		for (j = i; j && img->seg[j - 1].gpa > s.gpa; j--) {
			img->seg[j] = img->seg[j - 1];
			sorted_exec[j] = sorted_exec[j - 1];
		}
		img->seg[j] = s;
		sorted_exec[j] = x;
	}
	for (i = 1; i < img->nr_segs; i++) {
		const struct mv_image_seg *a = &img->seg[i - 1],
					  *b = &img->seg[i];

		if (b->gpa - a->gpa < a->memsz)
			return fail(err, -EINVAL,
				    "ELF: PT_LOAD segments overlap: [0x%" PRIx64
				    ", 0x%" PRIx64 "] and [0x%" PRIx64
				    ", 0x%" PRIx64 "]",
				    a->gpa, a->gpa + (a->memsz - 1), b->gpa,
				    b->gpa + (b->memsz - 1));
	}
	return 0;
}

static int check_entry(struct mv_image *img, const bool *exec,
		       struct mv_error *err)
{
	size_t i;

	if (!img->nr_segs)
		return fail(err, -ENOEXEC, "ELF: no PT_LOAD segment");
	for (i = 0; i < img->nr_segs; i++)
		if (exec[i] && img->entry >= img->seg[i].gpa &&
		    img->entry - img->seg[i].gpa < img->seg[i].memsz)
			return 0;
	return fail(err, -ENOEXEC,
		    "ELF: e_entry 0x%" PRIx64
		    " is not inside an executable PT_LOAD segment",
		    img->entry);
}

/* Collect the PT_LOAD segments; refuse what needs a dynamic loader. */
static int read_phdrs(const uint8_t *buf, size_t len, const Elf64_Ehdr *eh,
		      struct mv_image *img, bool *exec, struct mv_error *err)
{
	unsigned i;
	int ret;

	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, buf + eh->e_phoff + (uint64_t)i * sizeof(ph),
		       sizeof(ph));
		if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
			return fail(err, -ENOEXEC,
				    "ELF: program header %u is %s: dynamically "
				    "linked executables are not supported",
				    i,
				    ph.p_type == PT_INTERP ? "PT_INTERP" :
							     "PT_DYNAMIC");
		if (ph.p_type != PT_LOAD)
			continue;
		ret = check_load(&ph, i, len, err);
		if (ret)
			return ret;
		if (!ph.p_memsz)
			continue;
		if (img->nr_segs == MV_IMAGE_MAX_SEGS)
			return fail(err, -E2BIG,
				    "ELF: more than %d non-empty PT_LOAD "
				    "segments",
				    MV_IMAGE_MAX_SEGS);
		exec[img->nr_segs] = ph.p_flags & PF_X;
		img->seg[img->nr_segs++] =
			(struct mv_image_seg){ ph.p_paddr, ph.p_filesz,
					       ph.p_memsz, buf + ph.p_offset };
	}
	return 0;
}

static int parse_elf(const void *buf, size_t len, struct mv_image *img,
		     struct mv_error *err)
{
	bool exec[MV_IMAGE_MAX_SEGS], sorted_exec[MV_IMAGE_MAX_SEGS];
	Elf64_Ehdr eh;
	size_t i;
	int ret;

	if (len < sizeof(eh))
		return fail(err, -ENOEXEC,
			    "ELF: file is %zu bytes, shorter than the ELF64 "
			    "header (%zu)",
			    len, sizeof(eh));
	memcpy(&eh, buf, sizeof(eh));
	ret = check_ehdr(&eh, len, err);
	if (!ret)
		ret = read_phdrs(buf, len, &eh, img, exec, err);
	if (!ret)
		ret = check_overlaps(img, exec, sorted_exec, err);
	img->entry = eh.e_entry;
	if (!ret)
		ret = check_entry(img, sorted_exec, err);
	if (ret)
		return ret;
	img->format = MV_IMAGE_ELF;
	img->lowest = img->seg[0].gpa;
	for (i = 0; i < img->nr_segs; i++)
		if (img->seg[i].gpa + img->seg[i].memsz > img->highest_end)
			img->highest_end = img->seg[i].gpa + img->seg[i].memsz;
	return 0;
}

int mv_image_parse(const void *buf, size_t len, enum mv_image_format fmt,
		   mv_gpa_t raw_base, struct mv_image *img,
		   struct mv_error *err)
{
	if (err)
		err->msg[0] = 0;
	if (!img || (!buf && len))
		return fail(err, -EINVAL, "image: NULL argument");
	memset(img, 0, sizeof(*img));
	if (fmt == MV_IMAGE_AUTO)
		fmt = len >= SELFMAG && !memcmp(buf, ELFMAG, SELFMAG) ?
			      MV_IMAGE_ELF :
			      MV_IMAGE_RAW;
	switch (fmt) {
	case MV_IMAGE_RAW:
		return parse_raw(buf, len, raw_base, img, err);
	case MV_IMAGE_ELF:
		return parse_elf(buf, len, img, err);
	default:
		return fail(err, -EINVAL, "image: unknown format %d", fmt);
	}
}

/* ---- loading ------------------------------------------------------------ */

static const char *kind_at(struct mv_as *mem, mv_gpa_t gpa, char *name,
			   size_t len)
{
	struct mv_flatview *fv = mv_as_get_flatview(mem);
	const struct mv_flat_range *fr = fv ? mv_flatview_lookup(fv, gpa) :
					      NULL;

	if (!fr)
		snprintf(name, len, "nothing (a hole)");
	else
		snprintf(name, len, "%s \"%s\"",
			 mv_region_kind(fr->mr) == MV_REGION_IO ? "device" :
			 mv_region_kind(fr->mr) == MV_REGION_ROM_DEVICE ?
								  "ROM device" :
			 fr->readonly ? "ROM" :
					"RAM",
			 mv_region_name(fr->mr) ? mv_region_name(fr->mr) : "");
	if (fv)
		mv_flatview_unref(fv);
	return name;
}

/* Segment @i must be writable RAM from end to end. */
static int check_seg(struct mv_as *mem, const struct mv_image_seg *s, size_t i,
		     struct mv_error *err)
{
	mv_gpa_t gpa = s->gpa;
	uint64_t left = s->memsz;
	char what[160];

	while (left) {
		uint64_t n = 0;
		void *hva;
		int ret = mv_as_translate(mem, gpa, true, &hva, &n);

		if (ret || !n)
			return fail(err, ret == -EACCES ? -EACCES : -EFAULT,
				    "image segment %zu [0x%" PRIx64
				    ", 0x%" PRIx64 "]: 0x%" PRIx64
				    " is %s, not writable RAM",
				    i, s->gpa, s->gpa + (s->memsz - 1), gpa,
				    kind_at(mem, gpa, what, sizeof(what)));
		if (n >= left)
			break;
		gpa += n;
		left -= n;
	}
	return 0;
}

/* Copy @len bytes of @data (zeros if NULL) to RAM checked by check_seg(). */
static int copy_in(struct mv_as *mem, mv_gpa_t gpa, const uint8_t *data,
		   uint64_t len)
{
	while (len) {
		struct mv_mapping map;
		int ret = mv_as_map(mem, gpa, len, true, &map);

		if (ret)
			return ret;
		if (!map.len) {
			mv_as_unmap(&map, 0);
			return -EFAULT;
		}
		if (data) {
			memcpy(map.hva, data, map.len);
			data += map.len;
		} else {
			memset(map.hva, 0, map.len);
		}
		gpa += map.len;
		len -= map.len;
		mv_as_unmap(&map, map.len);
	}
	return 0;
}

int mv_image_load(struct mv_as *mem, const struct mv_image *img,
		  struct mv_error *err)
{
	size_t i;
	int ret;

	if (err)
		err->msg[0] = 0;
	if (!mem || !img || img->nr_segs > MV_IMAGE_MAX_SEGS)
		return fail(err, -EINVAL, "image: bad argument");
	for (i = 0; i < img->nr_segs; i++) {
		ret = check_seg(mem, &img->seg[i], i, err);
		if (ret)
			return ret;
	}
	for (i = 0; i < img->nr_segs; i++) {
		const struct mv_image_seg *s = &img->seg[i];

		ret = copy_in(mem, s->gpa, s->data, s->filesz);
		if (!ret)
			ret = copy_in(mem, s->gpa + s->filesz, NULL,
				      s->memsz - s->filesz);
		if (ret)
			return fail(err, ret,
				    "image segment %zu at 0x%" PRIx64
				    ": memory changed while loading (%s)",
				    i, s->gpa, strerror(-ret));
	}
	return 0;
}

/* ---- files -------------------------------------------------------------- */

static int read_all(int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shrank while we read it */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mv_image_read_file(const char *path, void **buf, size_t *len,
		       struct mv_error *err)
{
	struct stat st;
	uint8_t *p;
	int fd, ret;

	if (err)
		err->msg[0] = 0;
	if (!path || !buf || !len)
		return fail(err, -EINVAL, "image: NULL argument");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		return fail(err, ret, "%s: %s", path, strerror(-ret));
	}
	if (fstat(fd, &st)) {
		ret = fail(err, -errno, "%s: %s", path, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = fail(err, -EINVAL, "%s: not a regular file", path);
		goto out_close;
	}
	if ((uint64_t)st.st_size > MV_IMAGE_MAX_FILE) {
		ret = fail(err, -EFBIG,
			   "%s: %" PRIu64 " bytes, images are limited to "
			   "1 GiB",
			   path, (uint64_t)st.st_size);
		goto out_close;
	}
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!p) {
		ret = fail(err, -ENOMEM, "%s: out of memory", path);
		goto out_close;
	}
	ret = read_all(fd, p, (size_t)st.st_size);
	if (ret) {
		free(p);
		fail(err, ret, "%s: read failed: %s", path, strerror(-ret));
		goto out_close;
	}
	*buf = p;
	*len = (size_t)st.st_size;
out_close:
	close(fd);
	return ret;
}
