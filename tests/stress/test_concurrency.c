// SPDX-License-Identifier: MIT
/*
 * Lock-free readers against one writer: reader threads read, write,
 * translate and map random guest addresses while the writer toggles, moves and
 * resizes regions for a fixed number of commits.  Every access must see
 * the old or the new mapping, never a mixture or freed memory (run under
 * ASan and TSan by make check).
 *
 * Layout of the address space "memory" (all RAM filled with a tag byte):
 *
 *   0x00000  [ low: 64 KiB of 0xB0, priority 0             ]
 *   0x00000  [ top: alias of hi, moved/resized/toggled, prio 1 ]
 *   0x40000  [ scratch: 64 KiB RAM the readers write and read back ]
 *
 * "hi" is 64 KiB of 0xA1.  A read of one byte below 0x10000 may see 0xA1
 * (top), 0xB0 (low); between 0x10000 and 0x40000, 0xA1 (top moved there)
 * or a hole (0, decode error).  Nothing else is possible.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/memory.h>

#define READERS 3
#define COMMITS 3000
#define SPACE 0x40000
#define SCRATCH 0x40000
#define SCRATCH_SIZE 0x10000

struct ctx {
	struct mv_machine *m;
	struct mv_as *as;
	atomic_bool stop;
	atomic_long errors;
	atomic_long reads;
};

struct reader {
	pthread_t thread;
	struct ctx *c;
	unsigned id;
	uint64_t rng;
	struct mv_mapping held; /* held.fv: none held */
	unsigned long held_age;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void bad(struct ctx *c, const char *what, uint64_t addr, uint64_t v)
{
	if (atomic_fetch_add(&c->errors, 1) < 10)
		fprintf(stderr, "reader: %s at 0x%" PRIx64 ": 0x%" PRIx64 "\n",
			what, addr, v);
}

/* One byte through mv_as_read: a tag the layout allows there. */
static void check_read(struct ctx *c, uint64_t addr)
{
	uint8_t b = 0x55;
	int ret = mv_as_read(c->as, addr, &b, 1);

	if (ret < 0)
		bad(c, "read failed", addr, (uint64_t)-ret);
	else if (ret & MV_MEMTX_DECODE_ERROR)
		b == 0 ? (void)0 : bad(c, "hole read not 0", addr, b);
	else if (b != 0xA1 && !(addr < 0x10000 && b == 0xB0))
		bad(c, "unexpected byte", addr, b);
}

/* The same through a translation: the host memory must stay mapped. */
static void check_translate(struct ctx *c, uint64_t addr)
{
	uint64_t len;
	void *hva;
	uint8_t b;

	if (mv_as_translate(c->as, addr, false, &hva, &len))
		return; /* a hole right now */
	b = *(volatile uint8_t *)hva;
	if (b != 0xA1 && b != 0xB0)
		bad(c, "translated byte", addr, b);
}

/*
 * The same through a mapping, which holds its view (and so the RAM): the
 * reader keeps it for HOLD accesses, across commits, so that its release
 * is often the view's last reference, queued for the writer (lock-free)
 * from this thread.
 */
#define HOLD 20000

static void check_map(struct ctx *c, struct reader *r, uint64_t addr)
{
	uint8_t b;

	if (r->held.fv) {
		b = *(volatile uint8_t *)r->held.hva;
		if (b != 0xA1 && b != 0xB0)
			bad(c, "held mapping's byte", r->held.gpa, b);
		if (++r->held_age < HOLD)
			return;
		mv_as_unmap(&r->held, 0);
	}
	r->held_age = 0;
	if (mv_as_map(c->as, addr, 1, false, &r->held))
		r->held.fv = NULL; /* a hole right now */
}

/* Write a reader's own word of scratch RAM and read it back. */
static void check_write(struct ctx *c, struct reader *r, uint64_t v)
{
	uint64_t addr = SCRATCH + r->id * 8, got = 0;

	if (mv_as_store(c->as, addr, 8, MV_ENDIAN_LITTLE, v) ||
	    mv_as_load(c->as, addr, 8, MV_ENDIAN_LITTLE, &got) || got != v)
		bad(c, "scratch readback", addr, got);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct ctx *c = r->c;
	long n = 0;

	while (!atomic_load(&c->stop)) {
		uint64_t x = rnd(&r->rng);
		uint64_t addr = x % SPACE;

		switch (x >> 60) {
		case 0:
			check_write(c, r, x);
			break;
		case 1:
		case 2:
			check_translate(c, addr);
			break;
		case 3:
			check_map(c, r, addr);
			break;
		default:
			check_read(c, addr);
		}
		n++;
	}
	if (r->held.fv)
		mv_as_unmap(&r->held, 0);
	atomic_fetch_add(&c->reads, n);
	return NULL;
}

static struct mv_region *ram(struct mv_machine *m, const char *name,
			     uint64_t size, uint8_t tag)
{
	struct mv_region *r;

	if (mv_region_new_ram(m, name, size, NULL, &r))
		abort();
	memset(mv_region_ram_ptr(r), tag, size);
	return r;
}

/* The writer: toggle, move and resize the top alias, COMMITS times. */
static int writer(struct mv_region *top)
{
	uint64_t rng = 42;
	int i, ret = 0;

	for (i = 0; i < COMMITS && !ret; i++) {
		uint64_t x = rnd(&rng);

		switch (x % 3) {
		case 0:
			ret = mv_region_set_enabled(top,
						    !mv_region_enabled(top));
			break;
		case 1:
			ret = mv_region_set_address(top,
						    (x >> 8) % 0x30 * 0x1000);
			break;
		default:
			ret = mv_region_set_size(top,
						 ((x >> 8) % 16 + 1) * 0x1000);
		}
	}
	return ret;
}

int main(void)
{
	struct mv_region *sys, *low, *hi, *top, *scratch;
	struct reader r[READERS];
	struct ctx c = { 0 };
	int i, ret;

	if (mv_machine_new(&c.m) ||
	    mv_region_new_container(c.m, "sys", UINT64_MAX, &sys))
		return 1;
	low = ram(c.m, "low", 0x10000, 0xB0);
	hi = ram(c.m, "hi", 0x10000, 0xA1);
	scratch = ram(c.m, "scratch", SCRATCH_SIZE, 0);
	if (mv_region_new_alias(c.m, "top", hi, 0, 0x10000, &top) ||
	    mv_region_add_subregion(sys, 0, low) ||
	    mv_region_add_subregion_overlap(sys, 0, top, 1) ||
	    mv_region_add_subregion(sys, SCRATCH, scratch) ||
	    mv_as_new(c.m, "memory", sys, &c.as))
		return 1;
	for (i = 0; i < READERS; i++) {
		r[i] = (struct reader){ .c = &c,
					.id = (unsigned)i,
					.rng = 0x9e3779b97f4a7c15ull *
					       (i + 1) };
		if (pthread_create(&r[i].thread, NULL, reader_main, &r[i]))
			return 1;
	}
	ret = writer(top);
	atomic_store(&c.stop, true);
	for (i = 0; i < READERS; i++)
		pthread_join(r[i].thread, NULL);
	printf("%d commits, %ld accesses, %ld errors\n", COMMITS,
	       atomic_load(&c.reads), atomic_load(&c.errors));
	mv_region_unref(top);
	mv_region_unref(scratch);
	mv_region_unref(hi);
	mv_region_unref(low);
	mv_region_unref(sys);
	mv_machine_free(c.m);
	if (ret) {
		fprintf(stderr, "writer: %s\n", strerror(-ret));
		return 1;
	}
	return atomic_load(&c.errors) ? 1 : 0;
}
