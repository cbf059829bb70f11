/* SPDX-License-Identifier: MIT */
/*
 * The memory model: a tree of regions rendered into flat views per address
 * space, exactly as QEMU 7.2 renders them (shared/reference/qemu-memory.md
 * §3.1-3.4, §3.10).
 *
 * Invariants (pinned by tests/unit/test_rules.c, one test per rule):
 *  - Everything hangs off a struct mv_machine; there is no global state.
 *  - Siblings are kept in QEMU's list order: priority descending, and among
 *    equal priorities the most recently added first.  Rendering walks that
 *    order and a terminating region only fills gaps, so the first region
 *    rendered at an address wins.
 *  - An alias renders its target shifted so that alias offset O appears at
 *    the alias' own address; the target's own address is cancelled out.
 *  - A region that terminates (RAM, ROM, ROM device, MMIO) and has children
 *    is the background of the addresses its children leave free.
 *  - readonly and nonvolatile are inherited down the render (OR).
 *  - A flat view is sorted, non-overlapping and maximally merged with
 *    QEMU's can_merge rule; mv_flatview_check() verifies it.
 *  - A published flat view is immutable and holds a reference on each
 *    region it names, so a region stays valid until every view naming it
 *    has been released.
 *  - Address spaces whose root leads (memory_region_get_flatview_root) to
 *    the same region share one flat view; a root with nothing enabled gives
 *    the machine's shared empty view.
 *  - Changes made inside mv_txn_begin()/mv_txn_commit() pairs (nestable)
 *    are rendered once per distinct root at the outermost commit, and not
 *    at all when QEMU's update_pending rules say nothing changed.  The new
 *    view equals a full render (QEMU re-renders everything); we re-render
 *    only the windows the changes touched and copy the rest.
 *  - A change that would make the region graph cyclic (through children
 *    or alias targets) is refused with -ELOOP.
 *
 * Sizes are uint64_t where UINT64_MAX means 2^64 (MV_SIZE_2_64).
 * Every function returns 0 or a negative errno unless documented otherwise.
 * Context: one writer at a time per machine (the caller serialises).
 */
#ifndef MEMVIRT_MEMORY_H
#define MEMVIRT_MEMORY_H

#include <stdio.h>

#include <memvirt/types.h>

struct mv_machine;
struct mv_region;
struct mv_as;
struct mv_flatview;

/* ---- machine -------------------------------------------------------- */

/**
 * mv_machine_new() - create an empty machine context.
 * @out: receives the machine; the caller owns it (mv_machine_free()).
 *
 * Return: 0, or -ENOMEM.
 */
int mv_machine_new(struct mv_machine **out);

/**
 * mv_machine_free() - destroy a machine: its address spaces, views and the
 * regions it registered.  Regions the caller still holds references on stay
 * valid until unreferenced.  NULL is allowed.
 */
void mv_machine_free(struct mv_machine *m);

/**
 * mv_machine_reclaim() - wait for the RCU grace period of every view the
 * machine retired and release them (their regions, RAM blocks).  Commits
 * release what is ready on their own; this is for a writer that wants the
 * memory back now.  Context: writer, not inside a read-side section.
 */
void mv_machine_reclaim(struct mv_machine *m);

/**
 * mv_machine_fail_alloc_after() - fault injection for tests: the (n+1)-th
 * allocation from now on made through this machine fails with -ENOMEM (and
 * every one after it, until reset).  n < 0 turns injection off.
 */
void mv_machine_fail_alloc_after(struct mv_machine *m, long n);

/**
 * mv_machine_set_full_render() - render every view in full at each commit
 * (QEMU's way) instead of re-rendering only the windows that changed.  The
 * views are identical either way; tests compare the two.
 */
void mv_machine_set_full_render(struct mv_machine *m, bool full);

/**
 * struct mv_machine_stats - counters tests use to pin the commit rules.
 * @renders: flat views rendered since the machine was created.
 * @commits: outermost commits that rendered something.
 * @patched: of the renders, views built from the one before by replacing
 *	one chunk of its ranges (a change inside one chunk, the common
 *	one-region commit); the others build their chunks in general.
 */
struct mv_machine_stats {
	uint64_t renders;
	uint64_t commits;
	uint64_t patched;
};
void mv_machine_get_stats(const struct mv_machine *m,
			  struct mv_machine_stats *st);

/**
 * mv_machine_register_region() - give the machine a reference on @r under
 * the unique key @id so mv_machine_find_region() finds it; the machine drops
 * that reference in mv_machine_free().  Machine files and presets use it.
 *
 * Return: 0, -EEXIST if @id is taken, -ENOMEM.
 */
int mv_machine_register_region(struct mv_machine *m, const char *id,
			       struct mv_region *r);
/* Borrowed pointer, or NULL. */
struct mv_region *mv_machine_find_region(const struct mv_machine *m,
					 const char *id);
/* Borrowed pointer to the address space called @name, or NULL. */
struct mv_as *mv_machine_find_as(const struct mv_machine *m, const char *name);
/* Address spaces in creation order: the count, and the @i-th (or NULL). */
size_t mv_machine_as_count(const struct mv_machine *m);
struct mv_as *mv_machine_as_get(const struct mv_machine *m, size_t i);

/* The machine's name (machine files, presets); @name is copied. */
int mv_machine_set_name(struct mv_machine *m, const char *name);
/* Borrowed, or NULL if unnamed. */
const char *mv_machine_name(const struct mv_machine *m);

/* ---- regions -------------------------------------------------------- */

enum mv_region_kind {
	MV_REGION_CONTAINER,
	MV_REGION_RAM,	      /* RAM; ROM is RAM with readonly set */
	MV_REGION_ROM_DEVICE, /* RAM for reads in romd mode, ops for writes */
	MV_REGION_IO,	      /* MMIO or port I/O through an ops table */
	MV_REGION_ALIAS,
};

enum mv_endian {
	MV_ENDIAN_NATIVE,
	MV_ENDIAN_LITTLE,
	MV_ENDIAN_BIG,
};

/* MEMTX-style result bits of an access. */
#define MV_MEMTX_OK 0u
#define MV_MEMTX_ERROR (1u << 0)
#define MV_MEMTX_DECODE_ERROR (1u << 1)
#define MV_MEMTX_ACCESS_ERROR (1u << 2)

/**
 * struct mv_region_ops - callbacks of an MMIO, port-I/O or ROM device region
 * (QEMU's MemoryRegionOps).  @read and @write return MEMTX bits.
 * @valid: what the device accepts (max_access_size 0 means 4, as in QEMU);
 * @accepts, when set, may refuse an access.  @impl: what the callbacks
 * implement; larger accesses are split (impl.min 0 means 1, max 0 means 4).
 */
struct mv_region_ops {
	unsigned (*read)(void *opaque, uint64_t addr, uint64_t *data,
			 unsigned size);
	unsigned (*write)(void *opaque, uint64_t addr, uint64_t data,
			  unsigned size);
	bool (*accepts)(void *opaque, uint64_t addr, unsigned size,
			bool is_write);
	enum mv_endian endianness;
	struct {
		unsigned min_access_size;
		unsigned max_access_size;
		bool unaligned;
	} valid, impl;
};

enum mv_ram_backend {
	MV_RAM_ANON,  /* anonymous mmap (private unless @share) */
	MV_RAM_MEMFD, /* memfd, always shared, fd shareable with peers */
	MV_RAM_FILE,  /* a file or a directory (hugetlbfs mount) at @path */
	MV_RAM_PTR,   /* caller-provided host memory at @host */
};

/**
 * struct mv_ram_opts - how a RAM block gets host memory.  All-zero means
 * anonymous private memory, no preallocation, block name = region name.
 * @max_size: a resizeable block reserves this much (0: the region size).
 * @block_name: the RAM block's idstr (info ramblock), NULL for the name.
 * @path: for MV_RAM_FILE; a directory gets an unlinked temporary file.
 * @host: for MV_RAM_PTR; the caller keeps ownership and keeps it mapped
 *	  for the region's lifetime.
 */
struct mv_ram_opts {
	enum mv_ram_backend backend;
	uint64_t max_size;
	const char *block_name;
	const char *path;
	void *host;
	bool share;
	bool prealloc;
	bool thp;
};

/*
 * Constructors.  @name is copied.  The new region has one reference, owned
 * by the caller (mv_region_unref()).  RAM constructors map host memory.
 * Return: 0, -EINVAL (bad size/options), -ENOMEM, or the errno of the
 * backing mmap/open/ftruncate.
 */
int mv_region_new_container(struct mv_machine *m, const char *name,
			    uint64_t size, struct mv_region **out);
int mv_region_new_io(struct mv_machine *m, const char *name, uint64_t size,
		     const struct mv_region_ops *ops, void *opaque,
		     struct mv_region **out);
/* An I/O region with no ops: every access is a decode error. */
int mv_region_new_reservation(struct mv_machine *m, const char *name,
			      uint64_t size, struct mv_region **out);
int mv_region_new_ram(struct mv_machine *m, const char *name, uint64_t size,
		      const struct mv_ram_opts *opts, struct mv_region **out);
int mv_region_new_rom(struct mv_machine *m, const char *name, uint64_t size,
		      const struct mv_ram_opts *opts, struct mv_region **out);
int mv_region_new_rom_device(struct mv_machine *m, const char *name,
			     uint64_t size, const struct mv_region_ops *ops,
			     void *opaque, const struct mv_ram_opts *opts,
			     struct mv_region **out);
/* The alias takes a reference on @target. */
int mv_region_new_alias(struct mv_machine *m, const char *name,
			struct mv_region *target, uint64_t offset,
			uint64_t size, struct mv_region **out);

/*
 * References.  The last unref frees the region and its RAM.
 * Context: writer (region reference counts are not atomic).
 */
void mv_region_ref(struct mv_region *r);
void mv_region_unref(struct mv_region *r);

/*
 * Subregions.  The parent takes a reference on @child.  Adding to an alias
 * is -EINVAL, a child that already has a parent -EBUSY, a cycle -ELOOP.
 * mv_region_add_subregion() is the overlap variant with priority 0.
 */
int mv_region_add_subregion(struct mv_region *parent, uint64_t offset,
			    struct mv_region *child);
int mv_region_add_subregion_overlap(struct mv_region *parent, uint64_t offset,
				    struct mv_region *child, int priority);
/* -ENOENT if @child is not a subregion of @parent. */
int mv_region_del_subregion(struct mv_region *parent, struct mv_region *child);

/* Setters; each runs in its own transaction (nested in the caller's). */
int mv_region_set_enabled(struct mv_region *r, bool enabled);
int mv_region_set_address(struct mv_region *r, uint64_t addr);
int mv_region_set_size(struct mv_region *r, uint64_t size);
int mv_region_set_alias_offset(struct mv_region *r, uint64_t offset);
int mv_region_set_readonly(struct mv_region *r, bool readonly);
int mv_region_set_nonvolatile(struct mv_region *r, bool nonvolatile);
int mv_region_rom_device_set_romd(struct mv_region *r, bool romd);
/* An owner tag shown by mtree --owner; @owner is copied, NULL clears. */
int mv_region_set_owner(struct mv_region *r, const char *owner);

/* Getters (borrowed pointers, valid while the region is). */
const char *mv_region_name(const struct mv_region *r);
const char *mv_region_owner(const struct mv_region *r);
enum mv_region_kind mv_region_kind(const struct mv_region *r);
/* QEMU's memory_region_type(): "ram", "rom", "romd", "ramd" or "i/o". */
const char *mv_region_type(const struct mv_region *r);
uint64_t mv_region_size(const struct mv_region *r); /* UINT64_MAX = 2^64 */
uint64_t mv_region_addr(const struct mv_region *r);
int mv_region_priority(const struct mv_region *r);
bool mv_region_enabled(const struct mv_region *r);
bool mv_region_readonly(const struct mv_region *r);
struct mv_region *mv_region_container(const struct mv_region *r);
struct mv_region *mv_region_alias_target(const struct mv_region *r);
uint64_t mv_region_alias_offset(const struct mv_region *r);
/* Host pointer of a RAM/ROM/ROM-device region's block, or NULL. */
void *mv_region_ram_ptr(const struct mv_region *r);
/* The memfd or file descriptor backing the block, or -1 (still owned). */
int mv_region_ram_fd(const struct mv_region *r);

/* ---- RAM blocks ------------------------------------------------------ */

/*
 * struct mv_ramblock_info - one RAM block as `info ramblock` lists it.
 * Pointers are borrowed from the machine.
 */
struct mv_ramblock_info {
	const char *idstr;
	uint64_t page_size;
	mv_ram_addr_t offset;
	uint64_t used_length;
	uint64_t max_length;
	void *host;
	struct mv_region *mr;
};

/* Number of RAM blocks, in QEMU's list order (max_length descending). */
size_t mv_ramblock_count(const struct mv_machine *m);
int mv_ramblock_get(const struct mv_machine *m, size_t i,
		    struct mv_ramblock_info *info);

/* ---- address spaces and flat views ---------------------------------- */

/**
 * mv_as_new() - create an address space over @root and render its view.
 * The address space takes a reference on @root; the machine owns the
 * address space.  Return: 0, -EEXIST (name taken), -ENOMEM.
 */
int mv_as_new(struct mv_machine *m, const char *name, struct mv_region *root,
	      struct mv_as **out);
const char *mv_as_name(const struct mv_as *as);
struct mv_region *mv_as_root(const struct mv_as *as);

/*
 * struct mv_flat_range - one range of a flat view, [first, last] inclusive
 * in the address space.  @mr is the terminating region that answers there;
 * @offset_in_region is the offset of @first inside @mr.
 */
struct mv_flat_range {
	uint64_t first;
	uint64_t last;
	struct mv_region *mr;
	uint64_t offset_in_region;
	uint8_t dirty_log_mask;
	bool romd_mode;
	bool readonly;
	bool nonvolatile;
};

/**
 * mv_as_get_flatview() - the address space's current view, with a
 * reference the caller owns (mv_flatview_unref()).
 */
struct mv_flatview *mv_as_get_flatview(struct mv_as *as);
/*
 * View references are atomic, but dropping the last one releases the
 * view's region references.  Context: the last unref in writer context.
 */
void mv_flatview_ref(struct mv_flatview *fv);
void mv_flatview_unref(struct mv_flatview *fv);
/*
 * Borrowed: the ranges, sorted by address, valid while @fv is held.  The
 * view stores them in chunks; this array is built on the first call for
 * @fv (O(n); any thread, concurrent callers get the same array) and kept
 * with the view.  NULL with *@nr = 0 if that allocation fails.
 */
const struct mv_flat_range *mv_flatview_ranges(const struct mv_flatview *fv,
					       size_t *nr);
/* The region the view was rendered from, or NULL for the empty view. */
struct mv_region *mv_flatview_root(const struct mv_flatview *fv);
/* The range holding @addr, or NULL. */
const struct mv_flat_range *mv_flatview_lookup(const struct mv_flatview *fv,
					       uint64_t addr);

/**
 * mv_flatview_check() - verify a view's invariants: ranges sorted,
 * non-overlapping, non-empty, maximally merged (no adjacent pair that
 * QEMU's can_merge would join), offsets inside their region (for an
 * address space's current view: one held across a resize of its
 * regions still shows their old sizes).
 * @why: receives a description of the first violation (may be NULL).
 * Return: 0, or -EINVAL.
 */
int mv_flatview_check(const struct mv_flatview *fv, char *why, size_t len);

/* ---- transactions ---------------------------------------------------- */

void mv_txn_begin(struct mv_machine *m);
/**
 * mv_txn_commit() - end a transaction; the outermost commit re-renders
 * every distinct root if anything changed.  On -ENOMEM the previous views
 * stay published and the change stays pending for the next commit.
 */
int mv_txn_commit(struct mv_machine *m);

/* ---- GPA <-> HVA ------------------------------------------------------ */

/**
 * mv_as_gpa_to_hva() - host address of RAM at @gpa.
 * @len: receives the number of bytes contiguous from @gpa in that range.
 * Return: 0, or -ENOENT (hole or not RAM).
 */
int mv_as_gpa_to_hva(struct mv_as *as, mv_gpa_t gpa, void **hva, uint64_t *len);
/**
 * mv_as_hva_to_gpas() - every GPA of @as whose RAM is at @hva (an HVA has
 * several GPAs through aliases).  Fills up to @max entries of @gpas in
 * ascending order and sets @nr to the total found (may exceed @max).
 */
int mv_as_hva_to_gpas(struct mv_as *as, const void *hva, mv_gpa_t *gpas,
		      size_t max, size_t *nr);

/* ---- sizes ------------------------------------------------------------ */

/**
 * mv_parse_size() - parse a size as QEMU 7.2's -m does (qemu_strtosz): a
 * decimal number, possibly with a fraction ("1.5G"), or 0x-hex without
 * fraction or suffix; then an optional K/M/G/T/P/E suffix (powers of 1024,
 * optional "iB"/"B").  Without a suffix the number counts @default_unit
 * bytes (1 MiB for -m).  A leading 0 is not octal.
 * Return: 0, -EINVAL (malformed), -ERANGE (overflow).
 */
int mv_parse_size(const char *s, uint64_t default_unit, uint64_t *out);

/* ---- built-in device ops (for machine files and presets) ------------ */

/*
 * QEMU's unassigned_io_ops: reads return all-ones, writes are ignored, every
 * size 1-8 accepted.  The x86 `io` root uses it, so port-I/O holes read
 * 0xff...  (shared/reference/qemu-memory.md §3.8).
 */
extern const struct mv_region_ops mv_unassigned_io_ops;
/* Reads return 0, writes are ignored, sizes 1-8 (a stand-in device). */
extern const struct mv_region_ops mv_zero_ops;

/* ---- printing: info mtree / info ramblock / explain ------------------ */

#define MV_MTREE_FLAT (1u << 0)	    /* info mtree -f */
#define MV_MTREE_DISABLED (1u << 1) /* info mtree -D */
#define MV_MTREE_OWNER (1u << 2)    /* info mtree -o (owner tags) */

/**
 * mv_mtree_print() - write QEMU 7.2's `info mtree [-f] [-D]` text for the
 * machine to @out.  Blocks (address-space groups, memory-region blocks,
 * flat views) are emitted sorted by their text, flat views numbered in
 * that order, which is QEMU's output after the normalisation of
 * reference §2.5.  Return: 0, -ENOMEM, -EIO (write error).
 */
int mv_mtree_print(struct mv_machine *m, FILE *out, unsigned flags);
/*
 * struct mv_mtree_accel - an accelerator's say in `info mtree -f`: a flat
 * range for which @has_memory(@opaque, as, start, size) is true for an
 * address space of its view gets " @name" appended (QEMU's
 * AccelClass.has_memory, e.g. " KVM").
 */
struct mv_mtree_accel {
	const char *name;
	bool (*has_memory)(void *opaque, const struct mv_as *as, uint64_t start,
			   uint64_t size);
	void *opaque;
};
/* mv_mtree_print() with the markers of @ac (NULL: none). */
int mv_mtree_print_accel(struct mv_machine *m, FILE *out, unsigned flags,
			 const struct mv_mtree_accel *ac);
/* The same data as JSON, each flat range with the path that decided it. */
int mv_mtree_print_json(struct mv_machine *m, FILE *out, unsigned flags);
/* QEMU 7.2's `info ramblock` text. */
int mv_ramblock_print(const struct mv_machine *m, FILE *out);
/**
 * mv_explain() - say which region answers at @addr in @as and why: the
 * path from the root with each priority, the regions it hides there, and
 * disabled or shadowed candidates.  @json selects JSON output.
 */
int mv_explain(struct mv_as *as, uint64_t addr, bool json, FILE *out);

/* ---- machine descriptions (docs/machine-format.md) ------------------- */

/**
 * mv_machine_load_file() - build a machine from a JSON machine file.
 * Changes listed in the file are parsed and kept, not applied.
 * @out: receives the machine, owned by the caller.
 * @err: on failure, says which file, which JSON path and what is wrong.
 * Return: 0, -EINVAL (bad description), -ENOENT/-EACCES (file), -ENOMEM.
 */
int mv_machine_load_file(const char *path, struct mv_machine **out,
			 struct mv_error *err);
/* The same from a string; @origin names it in messages. */
int mv_machine_load_string(const char *text, const char *origin,
			   struct mv_machine **out, struct mv_error *err);
/* Number of change transactions still to apply. */
size_t mv_machine_pending_changes(const struct mv_machine *m);
/**
 * mv_machine_apply_change() - apply the next change transaction of the
 * machine file.  Return: 0, -ENOENT when none is left, or the error of
 * the refused operation (then @err names its JSON path); the operations
 * of that transaction before it stay applied.
 */
int mv_machine_apply_change(struct mv_machine *m, struct mv_error *err);

/**
 * mv_machine_preset() - build a built-in machine ("pc", "q35", "micro")
 * sized @ram_size bytes as QEMU 7.2 shows it for
 * `-M NAME -m SIZE -nodefaults -accel kvm` before firmware runs.
 */
int mv_machine_preset(const char *name, uint64_t ram_size,
		      struct mv_machine **out, struct mv_error *err);
/* The preset's machine file, as text the caller frees with free(). */
int mv_machine_preset_json(const char *name, uint64_t ram_size, char **out,
			   struct mv_error *err);
/* NULL-terminated list of preset names (static storage). */
const char *const *mv_machine_preset_names(void);

/* ---- access: reads, writes, translation (reference §3.8) ------------- */

/* Attributes of an access (the part of QEMU's MemTxAttrs we model). */
#define MV_ATTR_MEMORY (1u << 0) /* a memory access: MMIO refuses it */

/**
 * mv_as_rw() - read or write @len bytes at @addr, as address_space_rw():
 * split at range boundaries; RAM copied directly (writes mark the dirty
 * bitmaps); MMIO/ROM-device ops called per memory_access_size() and
 * access_with_adjusted_size() (valid/impl sizes, unaligned, endianness:
 * @buf holds the bytes as the guest sees them, little-endian for values);
 * ROM reads direct, writes dropped with MV_MEMTX_DECODE_ERROR (a RAM
 * region has QEMU's unassigned ops); a hole or refused access is
 * MV_MEMTX_DECODE_ERROR and reads 0 (all-ones where the hole falls into a
 * terminating root with mv_unassigned_io_ops, as x86 port I/O).
 * Return: the MEMTX bits of all pieces OR-ed (>= 0), or -EINVAL for bad
 * arguments (NULL, a range wrapping past 2^64).
 * Context: any thread (lock-free; see mv_machine_read_lock()).
 */
int mv_as_rw(struct mv_as *as, mv_gpa_t addr, void *buf, uint64_t len,
	     bool is_write, unsigned attrs);
int mv_as_read(struct mv_as *as, mv_gpa_t addr, void *buf, uint64_t len);
int mv_as_write(struct mv_as *as, mv_gpa_t addr, const void *buf, uint64_t len);

/*
 * Typed accesses of @size 1, 2, 4 or 8 bytes: one access (not split into
 * bytes), the value in @e byte order in guest memory.
 * Return: MEMTX bits (>= 0) or -EINVAL.
 */
int mv_as_load(struct mv_as *as, mv_gpa_t addr, unsigned size, enum mv_endian e,
	       uint64_t *val);
int mv_as_store(struct mv_as *as, mv_gpa_t addr, unsigned size,
		enum mv_endian e, uint64_t val);

/* QEMU's address_space_ld*_le/be and st*_le/be spelled as in QEMU. */
#define MV_AS_LOAD(name, size, e, type)                                 \
	static inline int mv_as_##name(struct mv_as *as, mv_gpa_t addr, \
				       type *val)                       \
	{                                                               \
		uint64_t v = 0;                                         \
		int ret = mv_as_load(as, addr, size, e, &v);            \
                                                                        \
		*val = (type)v;                                         \
		return ret;                                             \
	}
#define MV_AS_STORE(name, size, e, type)                                \
	static inline int mv_as_##name(struct mv_as *as, mv_gpa_t addr, \
				       type val)                        \
	{                                                               \
		return mv_as_store(as, addr, size, e, val);             \
	}
MV_AS_LOAD(ldub, 1, MV_ENDIAN_LITTLE, uint8_t)
MV_AS_LOAD(lduw_le, 2, MV_ENDIAN_LITTLE, uint16_t)
MV_AS_LOAD(lduw_be, 2, MV_ENDIAN_BIG, uint16_t)
MV_AS_LOAD(ldl_le, 4, MV_ENDIAN_LITTLE, uint32_t)
MV_AS_LOAD(ldl_be, 4, MV_ENDIAN_BIG, uint32_t)
MV_AS_LOAD(ldq_le, 8, MV_ENDIAN_LITTLE, uint64_t)
MV_AS_LOAD(ldq_be, 8, MV_ENDIAN_BIG, uint64_t)
MV_AS_STORE(stb, 1, MV_ENDIAN_LITTLE, uint8_t)
MV_AS_STORE(stw_le, 2, MV_ENDIAN_LITTLE, uint16_t)
MV_AS_STORE(stw_be, 2, MV_ENDIAN_BIG, uint16_t)
MV_AS_STORE(stl_le, 4, MV_ENDIAN_LITTLE, uint32_t)
MV_AS_STORE(stl_be, 4, MV_ENDIAN_BIG, uint32_t)
MV_AS_STORE(stq_le, 8, MV_ENDIAN_LITTLE, uint64_t)
MV_AS_STORE(stq_be, 8, MV_ENDIAN_BIG, uint64_t)
#undef MV_AS_LOAD
#undef MV_AS_STORE

/**
 * mv_as_translate() - the host address of @addr for direct access
 * (memory_access_is_direct: reads of RAM and romd ROM devices, writes of
 * writable RAM) and the length contiguous from it within its range.
 * Return: 0, -ENOENT (hole or not RAM), -EACCES (not writable directly).
 */
int mv_as_translate(struct mv_as *as, mv_gpa_t addr, bool is_write, void **hva,
		    uint64_t *len);

/*
 * struct mv_mapping - a direct mapping of guest memory (address_space_map).
 * It holds a reference on the view it came from, so the memory stays
 * valid until mv_as_unmap() even if the region is removed meanwhile.
 */
struct mv_mapping {
	void *hva;
	uint64_t len;
	mv_gpa_t gpa;
	bool is_write;
	struct mv_flatview *fv;
};
/**
 * mv_as_map() - map up to @len bytes at @addr for direct access; map->len
 * may be shorter (the end of the RAM range).  Return: 0, -ENOENT,
 * -EACCES as mv_as_translate().
 */
int mv_as_map(struct mv_as *as, mv_gpa_t addr, uint64_t len, bool is_write,
	      struct mv_mapping *map);
/* Release @map; for a write mapping, mark @access_len bytes dirty. */
void mv_as_unmap(struct mv_mapping *map, uint64_t access_len);

/* ---- dirty tracking (reference §3.5, §3.9) --------------------------- */

enum mv_dirty_client {
	MV_DIRTY_VGA = 0,
	MV_DIRTY_CODE = 1,
	MV_DIRTY_MIGRATION = 2,
	MV_DIRTY_NR_CLIENTS = 3,
};

/*
 * Each RAM block has one bitmap per client, one bit per 4 KiB page of its
 * max_length, all set when the block is created (ram_block_add).  Writes
 * through mv_as_rw()/mv_as_store()/write mappings set the bits of the
 * clients in the range's dirty-log mask (QEMU's invalidate_and_set_dirty:
 * VGA when mv_region_set_log() is on, MIGRATION under global logging);
 * accelerators add what they tracked through log_sync.
 */
/* Whether any page of [@addr, @addr + @size) of @mr is dirty for @client. */
bool mv_region_get_dirty(struct mv_region *mr, uint64_t addr, uint64_t size,
			 enum mv_dirty_client client);
/* Mark [@addr, @addr + @size) of @mr dirty for every client. */
void mv_region_set_dirty(struct mv_region *mr, uint64_t addr, uint64_t size);
/* Clear the bits of [@addr, @addr + @size) for @client. */
void mv_region_reset_dirty(struct mv_region *mr, uint64_t addr, uint64_t size,
			   enum mv_dirty_client client);
/*
 * Accelerator input: set the pages whose bits are set in the little-endian
 * @bitmap (bit i = page i from @addr) dirty for every client (QEMU's
 * cpu_physical_memory_set_dirty_lebitmap).  Context: any thread.
 */
void mv_region_set_dirty_bitmap(struct mv_region *mr, uint64_t addr,
				const unsigned long *bitmap, uint64_t npages);

/*
 * struct mv_dirty_snapshot - memory_region_snapshot_and_clear_dirty(): the
 * bits of a page-aligned range, atomically taken and cleared.
 */
struct mv_dirty_snapshot {
	uint64_t start; /* page-aligned offset in the region */
	uint64_t npages;
	unsigned long *bitmap;
};
int mv_region_snapshot_and_clear_dirty(struct mv_region *mr, uint64_t addr,
				       uint64_t size,
				       enum mv_dirty_client client,
				       struct mv_dirty_snapshot **out);
bool mv_dirty_snapshot_get(const struct mv_dirty_snapshot *snap, uint64_t addr,
			   uint64_t size);
void mv_dirty_snapshot_free(struct mv_dirty_snapshot *snap);

/*
 * memory_region_set_log(): turn logging for @client on or off for @mr; the
 * ranges of @mr get the bit in their dirty_log_mask (listeners see
 * log_start/log_stop).
 */
int mv_region_set_log(struct mv_region *mr, bool log,
		      enum mv_dirty_client client);
/* memory_region_get_dirty_log_mask(): the region's mask as rendered. */
uint8_t mv_region_get_dirty_log_mask(const struct mv_region *mr);
/* Global dirty logging (migration): log_global_start/stop to listeners. */
int mv_machine_dirty_log_start(struct mv_machine *m);
int mv_machine_dirty_log_stop(struct mv_machine *m);
/*
 * memory_region_sync_dirty_bitmap(): ask every listener with log_sync for
 * the ranges of @mr (NULL: every range with a dirty mask) in its address
 * space.  Return: 0 or the first error a listener returned.
 */
int mv_region_sync_dirty_bitmap(struct mv_machine *m, struct mv_region *mr);

/* ---- listeners (reference §3.4, §3.5) -------------------------------- */

/*
 * struct mv_section - what a listener is told: one flat range,
 * [@first, @last] in the address space, @offset_within_region in @mr.
 * Pointers are borrowed for the duration of the callback.
 */
struct mv_section {
	struct mv_as *as;
	struct mv_region *mr;
	uint64_t offset_within_region;
	mv_gpa_t first;
	mv_gpa_t last;
	uint8_t dirty_log_mask;
	bool readonly;
	bool nonvolatile;
	bool romd_mode;
};

struct mv_listener;

/*
 * struct mv_listener_ops - QEMU 7.2's MemoryListener callbacks, each
 * optional and returning 0 or a negative errno.  A failing region_add rolls
 * the transaction back: the previous views stay published, the tree
 * changes are undone, and every listener that saw part of the change gets
 * the inverse callbacks in reverse order, then commit.  Other failures are
 * returned by the commit but change nothing.
 */
struct mv_listener_ops {
	int (*begin)(struct mv_listener *l);
	int (*commit)(struct mv_listener *l);
	int (*region_add)(struct mv_listener *l, const struct mv_section *s);
	int (*region_del)(struct mv_listener *l, const struct mv_section *s);
	int (*region_nop)(struct mv_listener *l, const struct mv_section *s);
	int (*log_start)(struct mv_listener *l, const struct mv_section *s,
			 unsigned old_mask, unsigned new_mask);
	int (*log_stop)(struct mv_listener *l, const struct mv_section *s,
			unsigned old_mask, unsigned new_mask);
	int (*log_sync)(struct mv_listener *l, const struct mv_section *s);
	int (*log_global_start)(struct mv_listener *l);
	int (*log_global_stop)(struct mv_listener *l);
};

/*
 * struct mv_listener - caller-allocated; @ops, @priority, @name and
 * @opaque are the caller's, the rest is the library's while registered.
 * Delivery is in ascending @priority (ties in registration order), and
 * reverse for region_del and log_stop.
 */
struct mv_listener {
	const struct mv_listener_ops *ops;
	int priority;
	const char *name;
	void *opaque;
	/* private: the address space it listens to while registered */
	struct mv_as *as;
};

/**
 * mv_listener_register() - listen to @as; the current view is replayed
 * (begin, log_global_start if on, region_add [+ log_start] per range,
 * commit).  Return: 0, -EBUSY (already registered), or the replay's error
 * (then nothing stays registered).
 */
int mv_listener_register(struct mv_as *as, struct mv_listener *l);
/* Replays the removal (begin, log_stop + region_del per range, commit). */
void mv_listener_unregister(struct mv_listener *l);

#endif /* MEMVIRT_MEMORY_H */
