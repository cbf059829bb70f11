// SPDX-License-Identifier: MIT
/*
 * RAM blocks: host memory for RAM-backed regions (anonymous, memfd, file or
 * hugetlbfs, caller memory), placed in the ram_addr space by QEMU's
 * best-fit find_ram_offset() and listed largest first (reference §3.10).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "internal.h"

/* Blocks start on a bitmap word: 64 pages of 4 KiB (BITS_PER_LONG << 12). */
#define RAM_OFFSET_ALIGN (64ull << 12)

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/*
 * find_ram_offset(): the start of the smallest gap, after the end of some
 * block rounded up to RAM_OFFSET_ALIGN, that fits @size.
 */
static int find_ram_offset(const struct mv_machine *m, uint64_t size,
			   mv_ram_addr_t *out)
{
	uint64_t offset = UINT64_MAX, mingap = UINT64_MAX;
	size_t i, j;

	if (!m->nr_blocks) {
		*out = 0;
		return 0;
	}
	for (i = 0; i < m->nr_blocks; i++) {
		const struct mv_ramblock *b = m->blocks[i];
		uint64_t cand, next = UINT64_MAX;

		if (b->offset + b->max_length > UINT64_MAX - RAM_OFFSET_ALIGN)
			continue;
		cand = round_up(b->offset + b->max_length, RAM_OFFSET_ALIGN);
		for (j = 0; j < m->nr_blocks; j++)
			if (m->blocks[j]->offset >= cand &&
			    m->blocks[j]->offset < next)
				next = m->blocks[j]->offset;
		if (next - cand >= size && next - cand < mingap) {
			offset = cand;
			mingap = next - cand;
		}
	}
	if (offset == UINT64_MAX)
		return -ENOSPC;
	*out = offset;
	return 0;
}

/* Insert before the first block with a smaller max_length. */
static int blocks_insert(struct mv_machine *m, struct mv_ramblock *nb)
{
	struct mv_ramblock **a;
	size_t pos;

	a = mv_realloc(m, m->blocks, (m->nr_blocks + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	m->blocks = a;
	for (pos = 0; pos < m->nr_blocks; pos++)
		if (a[pos]->max_length < nb->max_length)
			break;
	memmove(&a[pos + 1], &a[pos], (m->nr_blocks - pos) * sizeof(*a));
	a[pos] = nb;
	m->nr_blocks++;
	return 0;
}

/* An fd for a file backend: a file, or an unlinked file in a directory. */
static int open_backing_file(const char *path, int *fd)
{
	struct stat st;

	if (!path)
		return -EINVAL;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		*fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	else
		*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	return *fd < 0 ? -errno : 0;
}

/* Page size of the file system behind @fd (hugetlbfs: the huge page). */
static uint64_t fd_page_size(int fd)
{
	struct statfs fs;

	if (fstatfs(fd, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC)
		return (uint64_t)fs.f_bsize;
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

static int backing_fd(const struct mv_ram_opts *opts, const char *idstr,
		      uint64_t len, int *fd)
{
	struct stat st;
	int ret;

	if (opts->backend == MV_RAM_MEMFD) {
		*fd = memfd_create(idstr, MFD_CLOEXEC);
		if (*fd < 0)
			return -errno;
	} else {
		ret = open_backing_file(opts->path, fd);
		if (ret)
			return ret;
	}
	if (fstat(*fd, &st) == 0 && (uint64_t)st.st_size >= len)
		return 0;
	if (ftruncate(*fd, (off_t)len) == 0)
		return 0;
	ret = -errno;
	close(*fd);
	*fd = -1;
	return ret;
}

static void populate(uint8_t *host, uint64_t len, uint64_t page_size)
{
	uint64_t off;

#ifdef MADV_POPULATE_WRITE
	if (madvise(host, len, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	for (off = 0; off < len; off += page_size)
		((volatile uint8_t *)host)[off] = host[off];
}

/* Map the host memory of @b per @opts. */
static int ramblock_map(struct mv_ramblock *b, const struct mv_ram_opts *opts)
{
	int flags = MAP_NORESERVE, ret;
	void *p;

	b->fd = -1;
	b->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	if (opts->backend == MV_RAM_PTR) {
		if (!opts->host)
			return -EINVAL;
		b->host = opts->host;
		return 0;
	}
	if (opts->backend == MV_RAM_MEMFD || opts->backend == MV_RAM_FILE) {
		ret = backing_fd(opts, b->idstr, b->max_length, &b->fd);
		if (ret)
			return ret;
		b->page_size = fd_page_size(b->fd);
		if (b->max_length % b->page_size)
			return -EINVAL;
		flags |= MAP_SHARED;
	} else {
		flags |= MAP_ANONYMOUS |
			 (opts->share ? MAP_SHARED : MAP_PRIVATE);
	}
	p = mmap(NULL, b->max_length, PROT_READ | PROT_WRITE, flags, b->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	b->host = p;
	b->mapped_length = b->max_length;
	if (opts->thp)
		madvise(p, b->max_length, MADV_HUGEPAGE);
	if (opts->prealloc)
		populate(p, b->used_length, b->page_size);
	return 0;
}

/* One bit per 4 KiB page of max_length, per client (dirty.c). */
#define DIRTY_PAGE_BITS 12
#define BITS_PER_LONG (sizeof(unsigned long) * 8)

static void ramblock_free_dirty(struct mv_ramblock *b)
{
	size_t c;

	for (c = 0; c < MV_DIRTY_NR_CLIENTS; c++) {
		free(b->dirty[c]);
		b->dirty[c] = NULL;
	}
}

/*
 * ram_block_add() marks every page dirty for every client: a new block has
 * never been sent, displayed or translated.  Bits past the last page stay
 * clear so a word-wide scan sees only real pages.
 */
static int ramblock_alloc_dirty(struct mv_machine *m, struct mv_ramblock *b)
{
	uint64_t pages = (b->max_length >> DIRTY_PAGE_BITS) +
			 !!(b->max_length & ((1ull << DIRTY_PAGE_BITS) - 1));
	uint64_t words = pages / BITS_PER_LONG + !!(pages % BITS_PER_LONG);
	size_t c;

	if (words > SIZE_MAX / sizeof(unsigned long))
		return -ENOMEM;
	for (c = 0; c < MV_DIRTY_NR_CLIENTS; c++) {
		b->dirty[c] = mv_malloc(m, words * sizeof(unsigned long));
		if (!b->dirty[c])
			goto err_free_dirty;
		memset(b->dirty[c], 0xff, words * sizeof(unsigned long));
		if (pages % BITS_PER_LONG)
			b->dirty[c][words - 1] =
				(1ul << (pages % BITS_PER_LONG)) - 1;
	}
	return 0;

err_free_dirty:
	ramblock_free_dirty(b);
	return -ENOMEM;
}

static void ramblock_unmap(struct mv_ramblock *b)
{
	if (b->mapped_length)
		munmap(b->host, b->mapped_length);
	if (b->fd >= 0)
		close(b->fd);
}

int mv_ramblock_new(struct mv_machine *m, const char *idstr, u128 size,
		    const struct mv_ram_opts *opts, struct mv_ramblock **out)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	u128 max = opts->max_size ? (u128)opts->max_size : size;
	struct mv_ramblock *b;
	int ret;

	if (!size || size > max || max >= MV_2_64 - page ||
	    opts->backend > MV_RAM_PTR)
		return -EINVAL;
	b = mv_zalloc(m, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fd = -1;
	b->idstr = mv_strdup(m, idstr);
	if (!b->idstr) {
		ret = -ENOMEM;
		goto err_free;
	}
	b->used_length = round_up((uint64_t)size, page);
	b->max_length = round_up((uint64_t)max, page);
	ret = ramblock_alloc_dirty(m, b);
	if (ret)
		goto err_free;
	ret = find_ram_offset(m, b->max_length, &b->offset);
	if (ret)
		goto err_free_dirty;
	ret = ramblock_map(b, opts);
	if (ret)
		goto err_unmap;
	ret = blocks_insert(m, b);
	if (ret)
		goto err_unmap;
	*out = b;
	return 0;

err_unmap:
	ramblock_unmap(b);
err_free_dirty:
	ramblock_free_dirty(b);
err_free:
	free(b->idstr);
	free(b);
	return ret;
}

void mv_ramblock_free(struct mv_machine *m, struct mv_ramblock *b)
{
	size_t i;

	for (i = 0; i < m->nr_blocks; i++) {
		if (m->blocks[i] == b) {
			memmove(&m->blocks[i], &m->blocks[i + 1],
				(m->nr_blocks - i - 1) * sizeof(b));
			m->nr_blocks--;
			break;
		}
	}
	ramblock_unmap(b);
	ramblock_free_dirty(b);
	free(b->idstr);
	free(b);
}

size_t mv_ramblock_count(const struct mv_machine *m)
{
	return m->nr_blocks;
}

int mv_ramblock_get(const struct mv_machine *m, size_t i,
		    struct mv_ramblock_info *info)
{
	const struct mv_ramblock *b;

	if (i >= m->nr_blocks)
		return -ENOENT;
	b = m->blocks[i];
	info->idstr = b->idstr;
	info->page_size = b->page_size;
	info->offset = b->offset;
	info->used_length = b->used_length;
	info->max_length = b->max_length;
	info->host = b->host;
	info->mr = b->mr;
	return 0;
}

/* size_to_str(): "%0.3g %sB" with binary prefixes, as QEMU prints PSize. */
static void size_to_str(uint64_t val, char *buf, size_t len)
{
	static const char *const suffixes[] = { "",   "Ki", "Mi", "Gi",
						"Ti", "Pi", "Ei" };
	unsigned i = 0;
	double v = (double)val;

	/* QEMU switches prefix once the value reaches 1000 of a unit. */
	while (i < 6 && v >= 1000.0) {
		v /= 1024.0;
		i++;
	}
	snprintf(buf, len, "%0.3g %sB", v, suffixes[i]);
}

int mv_ramblock_print(const struct mv_machine *m, FILE *out)
{
	size_t i;

	fprintf(out, "%24s %8s  %18s %18s %18s\n", "Block Name", "PSize",
		"Offset", "Used", "Total");
	for (i = 0; i < m->nr_blocks; i++) {
		const struct mv_ramblock *b = m->blocks[i];
		char psize[32];

		size_to_str(b->page_size, psize, sizeof(psize));
		fprintf(out,
			"%24s %8s  0x%016" PRIx64 " 0x%016" PRIx64
			" 0x%016" PRIx64 "\n",
			b->idstr, psize, b->offset, b->used_length,
			b->max_length);
	}
	return ferror(out) ? -EIO : 0;
}
