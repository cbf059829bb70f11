// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the access path: the input is a program for a tiny
 * interpreter that builds a topology (containers, RAM, ROM, ROM devices,
 * devices with many valid/impl/endianness settings, aliases, priorities,
 * enables, transactions) and issues accesses anywhere in the 64-bit space.
 * Checked: views stay sound after every change; devices only see offsets
 * inside their region and sizes inside their impl range; translations and
 * mappings point into the RAM given to the block; argument errors are
 * exactly the wrapping ranges.  RAM is malloc'ed (MV_RAM_PTR) so ASan sees
 * any copy outside a block.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/memory.h>

#define PAGE 0x1000ull
#define MAX_REGIONS 24
#define MAX_AS 3
#define MAX_OPS 300
#define MAX_ACCESS (3 * PAGE + 8)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, consumed front to back; reads past the end give zeros. */
struct input {
	const uint8_t *p;
	size_t n;
};

static uint64_t get(struct input *in, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bytes && in->n; i++, in->n--)
		v |= (uint64_t)*in->p++ << (i * 8);
	return v;
}

static unsigned get8(struct input *in)
{
	return (unsigned)get(in, 1);
}

/*
 * struct dev - a checking device: every call must fall inside the region
 * (@size never changes: set_size is not applied to devices) with a size in
 * the implemented range.
 */
struct dev {
	struct mv_region_ops ops;
	uint64_t size;
	unsigned refuse; /* accepts() refuses offsets with these bits */
	uint64_t calls;
};

static void dev_check(const struct dev *d, uint64_t addr, unsigned size)
{
	unsigned imin =
		d->ops.impl.min_access_size ? d->ops.impl.min_access_size : 1;
	unsigned imax =
		d->ops.impl.max_access_size ? d->ops.impl.max_access_size : 4;

	if (addr >= d->size || size < imin || size > imax) {
		fprintf(stderr,
			"device call at 0x%llx size %u (region 0x%llx, "
			"impl %u-%u)\n",
			(unsigned long long)addr, size,
			(unsigned long long)d->size, imin, imax);
		abort();
	}
}

static unsigned dev_read(void *opaque, uint64_t addr, uint64_t *data,
			 unsigned size)
{
	struct dev *d = opaque;

	dev_check(d, addr, size);
	d->calls++;
	*data = addr * 0x0101010101010101ull;
	return addr == 0x13 ? MV_MEMTX_ERROR : MV_MEMTX_OK;
}

static unsigned dev_write(void *opaque, uint64_t addr, uint64_t data,
			  unsigned size)
{
	struct dev *d = opaque;

	(void)data;
	dev_check(d, addr, size);
	d->calls++;
	return MV_MEMTX_OK;
}

static bool dev_accepts(void *opaque, uint64_t addr, unsigned size,
			bool is_write)
{
	struct dev *d = opaque;

	(void)size;
	(void)is_write;
	return !(addr & d->refuse);
}

/* valid.min, valid.max, impl.min, impl.max */
static const unsigned dev_sizes[][4] = {
	{ 1, 4, 1, 4 }, { 1, 8, 1, 8 }, { 1, 4, 1, 1 }, { 1, 4, 4, 4 },
	{ 4, 4, 4, 4 }, { 0, 0, 0, 0 }, { 1, 8, 2, 4 }, { 2, 2, 1, 8 },
	{ 1, 2, 2, 8 }, { 8, 8, 1, 2 }, { 1, 1, 8, 8 }, { 0, 8, 0, 2 },
};
#define NR_DEV_SIZES (sizeof(dev_sizes) / sizeof(dev_sizes[0]))

struct world {
	struct mv_machine *m;
	struct mv_region *r[MAX_REGIONS];
	size_t nr;
	struct mv_as *as[MAX_AS];
	size_t nr_as;
	struct dev *devs[MAX_OPS];
	size_t nr_devs;
	struct {
		uint8_t *p;
		uint64_t len;
	} ram[MAX_OPS];
	size_t nr_ram;
	unsigned txn_depth;
};

/*
 * Inside an open transaction the published views are the old ones while
 * region sizes are already new, so the check waits for the commit.
 */
static void check_views(struct world *w)
{
	char why[128];
	size_t i;

	if (w->txn_depth)
		return;
	for (i = 0; i < w->nr_as; i++) {
		struct mv_flatview *fv = mv_as_get_flatview(w->as[i]);

		if (mv_flatview_check(fv, why, sizeof(why))) {
			fprintf(stderr, "bad view of as%zu: %s\n", i, why);
			abort();
		}
		mv_flatview_unref(fv);
	}
}

static struct mv_region *pick(struct world *w, struct input *in)
{
	return w->nr ? w->r[get8(in) % w->nr] : NULL;
}

/* Small sizes, some not page multiples. */
static uint64_t small_size(struct input *in)
{
	static const uint64_t sizes[] = {
		1,	  2,	3,	  8,	    0x40,     0x123,
		PAGE - 1, PAGE, PAGE + 1, 2 * PAGE, 3 * PAGE, 4 * PAGE
	};

	return sizes[get8(in) % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* An offset or address: small, anywhere, or near 2^64. */
static uint64_t any_addr(struct input *in)
{
	switch (get8(in) % 4) {
	case 0:
		return get(in, 2);
	case 1:
		return get(in, 3) << 4;
	case 2:
		return get(in, 8);
	default:
		return 0 - get(in, 2);
	}
}

static void track(struct world *w, struct mv_region *r)
{
	w->r[w->nr++] = r;
}

/* RAM the fuzzer owns, page-rounded like the block, so ASan bounds it. */
static int new_ram(struct world *w, struct input *in, unsigned kind,
		   struct mv_region **out)
{
	uint64_t size = small_size(in);
	uint64_t len = (size + PAGE - 1) & ~(PAGE - 1);
	struct mv_ram_opts opts = { .backend = MV_RAM_PTR };
	struct dev *d = NULL;
	int ret;

	opts.host = malloc(len);
	if (!opts.host)
		return -1;
	memset(opts.host, 0xa5, len);
	w->ram[w->nr_ram].p = opts.host;
	w->ram[w->nr_ram++].len = len;
	if (kind == 0)
		return mv_region_new_ram(w->m, "ram", size, &opts, out);
	if (kind == 1)
		return mv_region_new_rom(w->m, "rom", size, &opts, out);
	d = calloc(1, sizeof(*d));
	if (!d)
		return -1;
	w->devs[w->nr_devs++] = d;
	d->size = size;
	d->ops = (struct mv_region_ops){ .read = dev_read,
					 .write = dev_write,
					 .accepts = dev_accepts,
					 .valid = { 1, 8, false },
					 .impl = { 1, 8, false } };
	ret = mv_region_new_rom_device(w->m, "romd", size, &d->ops, d, &opts,
				       out);
	return ret;
}

static int new_dev(struct world *w, struct input *in, struct mv_region **out)
{
	unsigned cfg = get8(in), flags = get8(in);
	const unsigned *s = dev_sizes[cfg % NR_DEV_SIZES];
	struct dev *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	w->devs[w->nr_devs++] = d;
	d->size = small_size(in);
	d->refuse = flags & 0x80 ? 0x10 : 0;
	d->ops = (struct mv_region_ops){
		.read = dev_read,
		.write = dev_write,
		.accepts = flags & 0x40 ? dev_accepts : NULL,
		.endianness = (enum mv_endian)(flags % 3),
		.valid = { s[0], s[1], (flags & 4) != 0 },
		.impl = { s[2], s[3], (flags & 8) != 0 },
	};
	if (flags & 0x20)
		return mv_region_new_io(w->m, "dev", d->size,
					flags & 0x10 ? &mv_zero_ops :
						       &mv_unassigned_io_ops,
					NULL, out);
	return mv_region_new_io(w->m, "dev", d->size, &d->ops, d, out);
}

/* Create a region of the kind @op says and link it somewhere. */
static void op_new(struct world *w, struct input *in, unsigned op)
{
	struct mv_region *r = NULL, *parent, *target;
	uint64_t off, size;
	int ret, prio;

	if (w->nr >= MAX_REGIONS)
		return;
	switch (op) {
	case 0:
		ret = mv_region_new_container(w->m, "c", any_addr(in) | 1, &r);
		break;
	case 1:
	case 2:
	case 3:
		ret = new_ram(w, in, op - 1, &r);
		break;
	case 4:
		ret = new_dev(w, in, &r);
		break;
	case 5:
		target = pick(w, in);
		off = get8(in) & 1 ? get(in, 2) : any_addr(in);
		size = small_size(in);
		size *= 1 + get8(in) % 3;
		ret = target ? mv_region_new_alias(w->m, "al", target, off,
						   size, &r) :
			       -1;
		break;
	default:
		ret = mv_region_new_reservation(w->m, "resv", small_size(in),
						&r);
	}
	if (ret || !r)
		return;
	track(w, r);
	parent = pick(w, in);
	off = any_addr(in);
	prio = (int)(get8(in) % 5) - 2;
	if (parent != r)
		mv_region_add_subregion_overlap(parent, off, r, prio);
}

static bool is_dev(const struct mv_region *r)
{
	return mv_region_kind(r) == MV_REGION_IO ||
	       mv_region_kind(r) == MV_REGION_ROM_DEVICE;
}

/* One change of the topology. */
static void op_change(struct world *w, struct input *in, unsigned op)
{
	struct mv_region *r = pick(w, in);

	if (!r)
		return;
	switch (op) {
	case 0:
		mv_region_set_enabled(r, !mv_region_enabled(r));
		break;
	case 1:
		mv_region_set_address(r, any_addr(in));
		break;
	case 2:
		if (mv_region_container(r))
			mv_region_del_subregion(mv_region_container(r), r);
		break;
	case 3:
		mv_region_rom_device_set_romd(r, get8(in) & 1);
		break;
	case 4:
		mv_region_set_readonly(r, get8(in) & 1);
		break;
	case 5:
		if (!is_dev(r))
			mv_region_set_size(r, small_size(in));
		break;
	case 6:
		mv_region_set_alias_offset(r, any_addr(in));
		break;
	case 7:
		if (w->txn_depth < 3) {
			mv_txn_begin(w->m);
			w->txn_depth++;
		}
		break;
	case 8:
		if (w->txn_depth) {
			mv_txn_commit(w->m);
			w->txn_depth--;
		}
		break;
	default:
		if (w->nr_as < MAX_AS &&
		    !mv_as_new(w->m, w->nr_as == 1 ? "as1" : "as2", r,
			       &w->as[w->nr_as]))
			w->nr_as++;
	}
}

/* [@hva, @hva + @len) must lie in RAM the fuzzer gave to a block. */
static void check_host(const struct world *w, const void *hva, uint64_t len)
{
	const uint8_t *p = hva;
	size_t i;

	for (i = 0; i < w->nr_ram; i++)
		if (p >= w->ram[i].p && len <= w->ram[i].len &&
		    (uint64_t)(p - w->ram[i].p) <= w->ram[i].len - len)
			return;
	fprintf(stderr, "host range %p+0x%llx outside every block\n", hva,
		(unsigned long long)len);
	abort();
}

static uint64_t access_len(struct input *in)
{
	unsigned k = get8(in);

	if (k < 200)
		return 1 + k % 8;
	if (k < 250)
		return get(in, 2) % MAX_ACCESS + 1;
	return k == 250 ? 0 : UINT64_MAX - get8(in);
}

static void expect_ret(int ret, bool wraps)
{
	if (wraps ? ret != -22 : ret < 0) {
		fprintf(stderr, "access returned %d (wraps: %d)\n", ret, wraps);
		abort();
	}
}

static bool wraps(uint64_t addr, uint64_t len)
{
	return len && len - 1 > UINT64_MAX - addr;
}

/* One access of a random kind. */
static void op_access(struct world *w, struct input *in)
{
	static uint8_t buf[MAX_ACCESS];
	struct mv_as *as = w->as[get8(in) % w->nr_as];
	unsigned kind = get8(in) % 5, size = 1u << (get8(in) % 4);
	enum mv_endian e = (enum mv_endian)(get8(in) % 3);
	uint64_t addr = any_addr(in), len, val = get(in, 8);
	struct mv_mapping map;
	void *hva;

	switch (kind) {
	case 0:
	case 1:
		len = access_len(in);
		if (len > MAX_ACCESS && !wraps(addr, len))
			return; /* would overrun our buffer */
		expect_ret(mv_as_rw(as, addr, buf, len, kind,
				    get8(in) & 1 ? MV_ATTR_MEMORY : 0),
			   wraps(addr, len));
		break;
	case 2:
		expect_ret(get8(in) & 1 ? mv_as_load(as, addr, size, e, &val) :
					  mv_as_store(as, addr, size, e, val),
			   wraps(addr, size));
		break;
	case 3:
		if (!mv_as_translate(as, addr, get8(in) & 1, &hva, &len))
			check_host(w, hva, len);
		break;
	default:
		len = get(in, 2) + 1;
		if (mv_as_map(as, addr, len, get8(in) & 1, &map))
			break;
		check_host(w, map.hva, map.len);
		if (map.is_write)
			memset(map.hva, 0x5a, map.len);
		mv_as_unmap(&map, get(in, 2));
	}
}

static void world_free(struct world *w)
{
	size_t i;

	while (w->txn_depth--)
		mv_txn_commit(w->m);
	for (i = 0; i < w->nr; i++)
		mv_region_unref(w->r[i]);
	mv_machine_free(w->m);
	for (i = 0; i < w->nr_devs; i++)
		free(w->devs[i]);
	for (i = 0; i < w->nr_ram; i++)
		free(w->ram[i].p);
}

/*
 * The first byte: bit 0 an x86-style io root instead of the 2^64
 * container, bit 1 full renders (QEMU's way) instead of incremental ones.
 */
static int world_init(struct world *w, struct input *in)
{
	unsigned opts = get8(in);
	struct mv_region *root = NULL;
	int ret;

	if (mv_machine_new(&w->m))
		return -1;
	mv_machine_set_full_render(w->m, opts & 2);
	if (opts & 1)
		ret = mv_region_new_io(w->m, "io", 0x10000,
				       &mv_unassigned_io_ops, NULL, &root);
	else
		ret = mv_region_new_container(w->m, "sys", UINT64_MAX, &root);
	if (ret)
		return -1;
	track(w, root);
	if (mv_as_new(w->m, "as0", root, &w->as[0]))
		return -1;
	w->nr_as = 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct world w;
	unsigned ops;

	memset(&w, 0, sizeof(w));
	if (world_init(&w, &in))
		goto out;
	for (ops = 0; in.n && ops < MAX_OPS; ops++) {
		unsigned op = get8(&in);

		if (op < 0x40) {
			op_new(&w, &in, op % 7);
		} else if (op < 0x80) {
			op_change(&w, &in, op % 10);
		} else {
			op_access(&w, &in);
			continue;
		}
		check_views(&w);
	}
out:
	world_free(&w);
	return 0;
}
