// SPDX-License-Identifier: MIT
/*
 * The access path (reference §3.8): address_space_rw() cut into pieces at
 * range boundaries, RAM copied directly, devices called per QEMU's
 * memory_access_size() and access_with_adjusted_size(); typed loads and
 * stores; translation and mappings for direct access.  Each access runs in
 * one RCU read-side section on one view (docs/access.md).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/*
 * struct piece - what answers at one address of a view.  @mr is NULL in a
 * hole; @addr1 is the offset in @mr (QEMU's xlat); @len counts the bytes of
 * the access from there that stay in the same range or hole (>= 1).
 */
struct piece {
	const struct mv_flat_range *fr;
	struct mv_region *mr;
	uint64_t addr1;
	uint64_t len;
};

/* The bytes of [@addr, @addr + @len) up to and including @last. */
static uint64_t clamp_len(uint64_t addr, uint64_t len, uint64_t last)
{
	return last - addr < len - 1 ? last - addr + 1 : len;
}

/*
 * flatview_translate() for @len >= 1 bytes at @addr: the view's range
 * lookup, and for a hole the next range, where the hole piece ends.
 */
static void locate(const struct mv_flatview *fv, uint64_t addr, uint64_t len,
		   struct piece *p)
{
	const struct mv_flat_range *fr = mv_flatview_lookup(fv, addr);
	size_t i;

	if (fr) {
		p->fr = fr;
		p->mr = fr->mr;
		p->addr1 = fr->offset_in_region + (addr - fr->first);
		p->len = clamp_len(addr, len, fr->last);
		return;
	}
	i = mv_flatview_index_at_or_after(fv, addr); /* first > addr */
	p->fr = NULL;
	p->mr = NULL;
	p->addr1 = addr;
	p->len = i < fv->nr ? clamp_len(addr, len, mv_fv_at(fv, i)->first - 1) :
			      len;
}

/* memory_region_is_ram(): RAM and ROM, not ROM devices. */
static bool region_is_ram(const struct mv_region *mr)
{
	return mr && mr->kind == MV_REGION_RAM && mr->block;
}

/*
 * memory_access_is_direct().  Like QEMU, a write looks at the region's own
 * readonly flag, not the one the range inherited from a readonly alias or
 * container; romd comes from the range (the region's, once committed).
 */
static bool access_is_direct(const struct piece *p, bool is_write)
{
	if (region_is_ram(p->mr))
		return !is_write ||
		       !__atomic_load_n(&p->mr->readonly, __ATOMIC_RELAXED);
	return !is_write && p->mr && p->mr->kind == MV_REGION_ROM_DEVICE &&
	       p->mr->block && p->fr->romd_mode;
}

/*
 * The ops of a piece that is not direct.  NULL stands for QEMU's
 * unassigned_mem_ops (every access refused): holes, reservations, and RAM
 * regions, whose ops QEMU leaves unassigned (so a write to ROM is refused).
 */
static const struct mv_region_ops *piece_ops(const struct piece *p)
{
	if (!p->mr || p->mr->kind == MV_REGION_RAM)
		return NULL;
	return p->mr->ops;
}

/* qemu_ram_ptr_length(): host memory of a direct piece, @len clamped. */
static uint8_t *ram_ptr(const struct piece *p, uint64_t *len)
{
	const struct mv_ramblock *b = p->mr->block;

	if (p->addr1 >= b->max_length)
		return NULL;
	if (*len > b->max_length - p->addr1)
		*len = b->max_length - p->addr1;
	return b->host + p->addr1;
}

/* ---- devices: memory_region_dispatch_read/write ----------------------- */

static uint64_t size_mask(unsigned size)
{
	return size >= 8 ? UINT64_MAX : (1ull << (size * 8)) - 1;
}

static uint64_t pow2floor(uint64_t v)
{
	return 1ull << (63 - __builtin_clzll(v));
}

/* memory_access_size(): the size of the next device access, 1..8. */
static unsigned access_size(const struct mv_region_ops *ops, uint64_t l,
			    uint64_t addr)
{
	uint64_t max = ops->valid.max_access_size ? ops->valid.max_access_size :
						    4;

	if (max > 8) /* MemOp sizes end at 8 */
		max = 8;
	if (!ops->impl.unaligned) {
		uint64_t align = addr & -addr;

		if (align && align < max)
			max = align;
	}
	return (unsigned)pow2floor(l < max ? l : max);
}

/* memory_region_access_valid(); a missing callback refuses too. */
static bool access_valid(const struct mv_region *mr,
			 const struct mv_region_ops *ops, uint64_t addr,
			 unsigned size, bool is_write)
{
	if (is_write ? !ops->write : !ops->read)
		return false;
	if (ops->accepts && !ops->accepts(mr->opaque, addr, size, is_write))
		return false;
	if (!ops->valid.unaligned && (addr & (size - 1)))
		return false;
	if (!ops->valid.max_access_size)
		return true;
	return size <= ops->valid.max_access_size &&
	       size >= ops->valid.min_access_size;
}

static uint64_t bswap(uint64_t v, unsigned size)
{
	switch (size) {
	case 2:
		return __builtin_bswap16((uint16_t)v);
	case 4:
		return __builtin_bswap32((uint32_t)v);
	case 8:
		return __builtin_bswap64(v);
	default:
		return v;
	}
}

/*
 * adjust_endianness(): the value travels in @op_big order; a device whose
 * endianness differs gets it swapped.  Native is little on our hosts.
 */
static uint64_t adjust_endianness(const struct mv_region_ops *ops, uint64_t v,
				  unsigned size, bool op_big)
{
	return op_big != (ops->endianness == MV_ENDIAN_BIG) ? bswap(v, size) :
							      v;
}

/* memory_region_shift_read/write_access(): shift may be negative. */
static uint64_t shift_in(uint64_t tmp, int shift)
{
	return shift >= 0 ? tmp << shift : tmp >> -shift;
}

static uint64_t shift_out(uint64_t v, int shift)
{
	return shift >= 0 ? v >> shift : v << -shift;
}

/*
 * access_with_adjusted_size(): @size bytes as calls of impl.min..impl.max
 * bytes (0 meaning 1 and 4), each at addr + i with its part of the value
 *
 *   little/native device:  shift = i * 8
 *   big device:            shift = (size - access_size - i) * 8
 *
 * masked to the access size; results OR-ed.  No unaligned splitting
 * (QEMU's FIXME).
 */
static unsigned access_adjusted(const struct mv_region *mr,
				const struct mv_region_ops *ops, uint64_t addr,
				uint64_t *value, unsigned size, bool is_write)
{
	unsigned imin = ops->impl.min_access_size ? ops->impl.min_access_size :
						    1;
	unsigned imax = ops->impl.max_access_size ? ops->impl.max_access_size :
						    4;
	bool big = ops->endianness == MV_ENDIAN_BIG;
	unsigned n, i, r = MV_MEMTX_OK;
	uint64_t mask;

	imin = imin > 8 ? 8 : imin;
	imax = imax > 8 ? 8 : imax;
	n = size < imax ? size : imax;
	n = n > imin ? n : imin;
	mask = size_mask(n);
	for (i = 0; i < size; i += n) {
		int shift = big ? ((int)size - (int)n - (int)i) * 8 :
				  (int)i * 8;
		uint64_t tmp = 0;

		if (is_write) {
			tmp = shift_out(*value, shift) & mask;
			r |= ops->write(mr->opaque, addr + i, tmp, n);
		} else {
			r |= ops->read(mr->opaque, addr + i, &tmp, n);
			*value |= shift_in(tmp & mask, shift);
		}
	}
	return r;
}

/* memory_region_dispatch_read(): refused reads give 0, a decode error. */
static unsigned dev_read(const struct mv_region *mr,
			 const struct mv_region_ops *ops, uint64_t addr,
			 uint64_t *val, unsigned size, bool op_big)
{
	unsigned r;

	*val = 0;
	if (!ops || !access_valid(mr, ops, addr, size, false))
		return MV_MEMTX_DECODE_ERROR;
	r = access_adjusted(mr, ops, addr, val, size, false);
	*val = adjust_endianness(ops, *val & size_mask(size), size, op_big);
	return r;
}

static unsigned dev_write(const struct mv_region *mr,
			  const struct mv_region_ops *ops, uint64_t addr,
			  uint64_t val, unsigned size, bool op_big)
{
	if (!ops || !access_valid(mr, ops, addr, size, true))
		return MV_MEMTX_DECODE_ERROR;
	val = adjust_endianness(ops, val & size_mask(size), size, op_big);
	return access_adjusted(mr, ops, addr, &val, size, true);
}

/* ---- buffers: flatview_read/write_continue ---------------------------- */

static uint64_t bytes_to_val(const uint8_t *b, unsigned size, bool big)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < size; i++)
		v |= (uint64_t)b[big ? i : size - 1 - i]
		     << ((size - 1 - i) * 8);
	return v;
}

static void val_to_bytes(uint8_t *b, unsigned size, uint64_t v, bool big)
{
	unsigned i;

	for (i = 0; i < size; i++)
		b[big ? size - 1 - i : i] = (uint8_t)(v >> (i * 8));
}

/* A direct piece: memcpy, and a write dirties the pages for all clients. */
static unsigned ram_rw(const struct piece *p, uint8_t *buf, bool is_write,
		       uint64_t *done)
{
	uint64_t n = p->len;
	uint8_t *host = ram_ptr(p, &n);

	if (!host) { /* a range past its block: views forbid it */
		*done = p->len;
		if (!is_write)
			memset(buf, 0, p->len);
		return MV_MEMTX_DECODE_ERROR;
	}
	*done = n;
	if (!is_write) {
		memcpy(buf, host, n);
		return MV_MEMTX_OK;
	}
	memcpy(host, buf, n);
	mv_region_set_dirty_mask(p->mr, p->addr1, n, p->fr->dirty_log_mask);
	return MV_MEMTX_OK;
}

/* One piece of a buffer access; *done receives the bytes it took. */
static unsigned piece_rw(const struct piece *p, uint8_t *buf, bool is_write,
			 uint64_t *done)
{
	const struct mv_region_ops *ops;
	unsigned size, r;
	uint64_t val;

	if (access_is_direct(p, is_write))
		return ram_rw(p, buf, is_write, done);
	ops = piece_ops(p);
	if (!ops) { /* unassigned_mem_ops: refused whatever the size */
		*done = p->len;
		if (!is_write)
			memset(buf, 0, p->len);
		return MV_MEMTX_DECODE_ERROR;
	}
	size = access_size(ops, p->len, p->addr1);
	*done = size;
	if (is_write)
		return dev_write(p->mr, ops, p->addr1,
				 bytes_to_val(buf, size, false), size, false);
	r = dev_read(p->mr, ops, p->addr1, &val, size, false);
	val_to_bytes(buf, size, val, false);
	return r;
}

/*
 * The loop of flatview_read/write(): @len >= 1 and [@addr, @addr + @len)
 * does not wrap.  With MV_ATTR_MEMORY a non-RAM piece is an access error
 * (flatview_access_allowed()); on the first piece QEMU refuses the whole
 * access at once.  Refused bytes read as 0.
 */
static unsigned fv_rw(const struct mv_flatview *fv, uint64_t addr, uint8_t *buf,
		      uint64_t len, bool is_write, unsigned attrs)
{
	unsigned res = MV_MEMTX_OK;
	bool first = true;

	while (len) {
		struct piece p;
		uint64_t n;

		locate(fv, addr, len, &p);
		if ((attrs & MV_ATTR_MEMORY) && !region_is_ram(p.mr)) {
			n = first ? len : p.len;
			if (!is_write)
				memset(buf, 0, n);
			res |= MV_MEMTX_ACCESS_ERROR;
		} else {
			res |= piece_rw(&p, buf, is_write, &n);
		}
		first = false;
		buf += n;
		addr += n;
		len -= n;
	}
	return res;
}

/* [@addr, @addr + @len) ends at or before 2^64; @len >= 1. */
static bool span_fits(uint64_t addr, uint64_t len)
{
	return len - 1 <= UINT64_MAX - addr;
}

int mv_as_rw(struct mv_as *as, mv_gpa_t addr, void *buf, uint64_t len,
	     bool is_write, unsigned attrs)
{
	struct mv_flatview *fv;
	unsigned res;

	if (!as || (attrs & ~MV_ATTR_MEMORY))
		return -EINVAL;
	if (!len)
		return 0;
	if (!buf || !span_fits(addr, len))
		return -EINVAL;
	fv = mv_as_read_begin(as);
	res = fv_rw(fv, addr, buf, len, is_write, attrs);
	mv_as_read_end();
	return (int)res;
}

int mv_as_read(struct mv_as *as, mv_gpa_t addr, void *buf, uint64_t len)
{
	return mv_as_rw(as, addr, buf, len, false, 0);
}

int mv_as_write(struct mv_as *as, mv_gpa_t addr, const void *buf, uint64_t len)
{
	/* The write path only reads @buf. */
	return mv_as_rw(as, addr, (void *)(uintptr_t)buf, len, true, 0);
}

/* ---- typed accesses: address_space_ld/st* ----------------------------- */

static bool typed_args_ok(struct mv_as *as, mv_gpa_t addr, unsigned size,
			  enum mv_endian e)
{
	return as && (size == 1 || size == 2 || size == 4 || size == 8) &&
	       (unsigned)e <= MV_ENDIAN_BIG && span_fits(addr, size);
}

/*
 * One access of @size bytes: RAM directly, a device in a single dispatch
 * in @big order (so a device that refuses the size refuses it, rather
 * than seeing it split).  An access straddling two ranges, where QEMU
 * would dispatch it whole to the first one, goes through the buffer path.
 */
static unsigned fv_load(const struct mv_flatview *fv, uint64_t addr,
			unsigned size, bool big, uint64_t *val)
{
	uint8_t bytes[8];
	uint64_t n = size;
	struct piece p;
	unsigned r;

	locate(fv, addr, size, &p);
	if (p.len == size && access_is_direct(&p, false)) {
		const uint8_t *host = ram_ptr(&p, &n);

		if (host && n == size) {
			*val = bytes_to_val(host, size, big);
			return MV_MEMTX_OK;
		}
	} else if (p.len == size) {
		return dev_read(p.mr, piece_ops(&p), p.addr1, val, size, big);
	}
	r = fv_rw(fv, addr, bytes, size, false, 0);
	*val = bytes_to_val(bytes, size, big);
	return r;
}

static unsigned fv_store(const struct mv_flatview *fv, uint64_t addr,
			 unsigned size, bool big, uint64_t val)
{
	uint8_t bytes[8];
	uint64_t n = size;
	struct piece p;

	locate(fv, addr, size, &p);
	if (p.len == size && access_is_direct(&p, true)) {
		uint8_t *host = ram_ptr(&p, &n);

		if (host && n == size) {
			val_to_bytes(host, size, val, big);
			mv_region_set_dirty_mask(p.mr, p.addr1, size,
						 p.fr->dirty_log_mask);
			return MV_MEMTX_OK;
		}
	} else if (p.len == size) {
		return dev_write(p.mr, piece_ops(&p), p.addr1, val, size, big);
	}
	val_to_bytes(bytes, size, val, big);
	return fv_rw(fv, addr, bytes, size, true, 0);
}

int mv_as_load(struct mv_as *as, mv_gpa_t addr, unsigned size, enum mv_endian e,
	       uint64_t *val)
{
	struct mv_flatview *fv;
	unsigned res;

	if (!val || !typed_args_ok(as, addr, size, e))
		return -EINVAL;
	fv = mv_as_read_begin(as);
	res = fv_load(fv, addr, size, e == MV_ENDIAN_BIG, val);
	mv_as_read_end();
	return (int)res;
}

int mv_as_store(struct mv_as *as, mv_gpa_t addr, unsigned size,
		enum mv_endian e, uint64_t val)
{
	struct mv_flatview *fv;
	unsigned res;

	if (!typed_args_ok(as, addr, size, e))
		return -EINVAL;
	fv = mv_as_read_begin(as);
	res = fv_store(fv, addr, size, e == MV_ENDIAN_BIG,
		       val & size_mask(size));
	mv_as_read_end();
	return (int)res;
}

/* ---- translation and mappings ----------------------------------------- */

/*
 * The host memory at @addr for direct access and the bytes contiguous in
 * its range.  -EACCES for RAM-backed memory the access may not touch
 * directly (ROM or ROM-device writes), -ENOENT otherwise.
 */
static int fv_translate(const struct mv_flatview *fv, uint64_t addr,
			bool is_write, struct piece *p, uint8_t **host)
{
	uint64_t n;

	locate(fv, addr, UINT64_MAX, p);
	if (!p->mr)
		return -ENOENT;
	if (!access_is_direct(p, is_write))
		return is_write && p->mr->block ? -EACCES : -ENOENT;
	n = p->len;
	*host = ram_ptr(p, &n);
	if (!*host)
		return -ENOENT;
	p->len = n;
	return 0;
}

int mv_as_translate(struct mv_as *as, mv_gpa_t addr, bool is_write, void **hva,
		    uint64_t *len)
{
	struct mv_flatview *fv;
	struct piece p;
	uint8_t *host;
	int ret;

	if (!as || !hva)
		return -EINVAL;
	fv = mv_as_read_begin(as);
	ret = fv_translate(fv, addr, is_write, &p, &host);
	mv_as_read_end();
	if (ret)
		return ret;
	*hva = host;
	if (len)
		*len = p.len;
	return 0;
}

/*
 * address_space_map() without bounce buffers: only direct memory maps.
 * The view reference is taken inside the read-side section, where the
 * address space's own reference keeps the count above zero.
 */
int mv_as_map(struct mv_as *as, mv_gpa_t addr, uint64_t len, bool is_write,
	      struct mv_mapping *map)
{
	struct mv_flatview *fv;
	struct piece p;
	uint8_t *host;
	int ret;

	if (!as || !map || !len)
		return -EINVAL;
	*map = (struct mv_mapping){ .gpa = addr, .is_write = is_write };
	fv = mv_as_read_begin(as);
	ret = fv_translate(fv, addr, is_write, &p, &host);
	if (!ret) {
		mv_flatview_ref(fv);
		map->fv = fv;
		map->hva = host;
		map->len = p.len < len ? p.len : len;
	}
	mv_as_read_end();
	return ret;
}

/*
 * address_space_unmap(): a write mapping dirties what was written.  The
 * view may be the last reference: dropped deferred, as this can run on
 * any thread.
 */
void mv_as_unmap(struct mv_mapping *map, uint64_t access_len)
{
	const struct mv_flat_range *fr;

	if (!map || !map->fv)
		return;
	if (map->is_write && access_len) {
		fr = mv_flatview_lookup(map->fv, map->gpa);
		if (access_len > map->len)
			access_len = map->len;
		if (fr)
			mv_region_set_dirty_mask(
				fr->mr,
				fr->offset_in_region + (map->gpa - fr->first),
				access_len, fr->dirty_log_mask);
	}
	mv_flatview_unref_deferred(map->fv);
	map->fv = NULL;
}
