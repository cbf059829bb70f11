// SPDX-License-Identifier: MIT
/*
 * Long-mode entry set up by the VMM (guest/abi.h): identity-mapped page
 * tables, a GDT with a TSS per vCPU, an IDT whose gates lead to CPL0 stubs
 * reporting the vector on MV_GUEST_PORT_FAULT, and the register state of
 * a CPL3 guest at its entry point.  Also a software walk of those tables
 * and the text describing a guest exception.
 *
 * The tables area, every part 4 KiB-aligned (offsets from b->tables):
 *
 *   +0              PML4
 *   +4K             PDPTs    ceil(map_end / 512 GiB)
 *                   PDs      ceil(map_end / 1 GiB)
 *                   PTs      map_end / 2 MiB, only with pages_4k
 *   sys             GDT: null, kcode 0x08, kdata 0x10, ucode 0x1b,
 *                   udata 0x23, a 16-byte TSS descriptor per vCPU from
 *                   0x28; then the TSSs, 128 bytes apart; then the I/O
 *                   bitmap they share (8 KiB of zeros and 0xff)
 *   idt             256 gates of 16 bytes (4 KiB)
 *   stubs           32 exception stubs of 16 bytes, then the int 0x80 stub
 *   stacks          a 4 KiB CPL0 stack per vCPU (TSS.RSP0 = its top)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "boot.h"

#define PAGE 0x1000ull
#define MiB2 (1ull << 21)
#define GiB1 (1ull << 30)
#define GiB512 (1ull << 39)
#define NR_ENTRIES 512

/* Paging entry bits (Intel SDM vol. 3 §4.5). */
#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define PTE_PAT_LARGE (1ull << 12)
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
/*
 * A and D are preset: under a shadow MMU the first write to a page whose
 * guest D bit is clear costs a write-protection fault.
 */
#define PTE_TABLE (PTE_P | PTE_RW | PTE_US | PTE_A)
#define PTE_LEAF (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)

#define GDT_FIXED 5	/* null, kcode, kdata, ucode, udata */
#define TSS_SIZE 104	/* a 64-bit TSS, up to its I/O map base */
#define IOMAP_SIZE 8193 /* 65536 port bits, then the 0xff end byte */
#define TSS_STRIDE 128	/* TSSs in the area, cache-line apart */
#define IDT_VECTORS 256
#define STUB_SIZE 16	 /* one exception stub, see stub_code */
#define STUB_INT80 0x200 /* offset of the int 0x80 stub in the stub page */
#define CPL0_STACK PAGE	 /* per vCPU; a frame is at most 48 bytes */
#define INT80_VECTOR 0x80

/* Where each part of the tables area lies (byte offsets, see above). */
struct layout {
	uint64_t map_end; /* rounded up to 2 MiB */
	uint64_t nr_pdpt, nr_pd, nr_pt;
	unsigned nr_vcpus;
	uint64_t pdpt, pd, pt, sys, tss, iomap, idt, stubs, stacks, size;
	uint32_t gdt_size;
};

static int layout_of(const struct mv_x86_boot *b, struct layout *l)
{
	memset(l, 0, sizeof(*l));
	l->nr_vcpus = b->nr_vcpus ? b->nr_vcpus : 1;
	if (!b->map_end || b->map_end > MV_X86_MAX_MAP_END ||
	    l->nr_vcpus > MV_X86_BOOT_MAX_VCPUS)
		return -EINVAL;
	l->map_end = (b->map_end + MiB2 - 1) & ~(MiB2 - 1);
	l->nr_pdpt = (l->map_end + GiB512 - 1) / GiB512;
	l->nr_pd = (l->map_end + GiB1 - 1) / GiB1;
	l->nr_pt = b->pages_4k ? l->map_end / MiB2 : 0;
	l->pdpt = PAGE;
	l->pd = l->pdpt + l->nr_pdpt * PAGE;
	l->pt = l->pd + l->nr_pd * PAGE;
	l->sys = l->pt + l->nr_pt * PAGE;
	l->gdt_size = 8 * (GDT_FIXED + 2 * l->nr_vcpus);
	l->tss = l->sys + ((l->gdt_size + TSS_STRIDE - 1) & ~(TSS_STRIDE - 1));
	l->iomap = l->tss + l->nr_vcpus * TSS_STRIDE;
	l->idt = (l->iomap + IOMAP_SIZE + PAGE - 1) & ~(PAGE - 1);
	l->stubs = l->idt + PAGE;
	l->stacks = l->stubs + PAGE;
	l->size = l->stacks + l->nr_vcpus * CPL0_STACK;
	return 0;
}

uint64_t mv_x86_boot_tables_size(const struct mv_x86_boot *b)
{
	struct layout l;

	if (!b || layout_of(b, &l))
		return 0;
	return l.size;
}

/* ---- writing the tables ------------------------------------------------ */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* One 4 KiB page (or less) of the area, written once. */
static int write_page(struct mv_as *mem, mv_gpa_t gpa, const void *buf,
		      uint64_t len)
{
	int ret = mv_as_write(mem, gpa, buf, len);

	if (ret < 0)
		return ret;
	return ret ? -EFAULT : 0;
}

/* A table: entry i = @first + i * @step for i < @nr_valid, the rest 0. */
static int write_table(struct mv_as *mem, mv_gpa_t gpa, uint64_t first,
		       uint64_t step, uint64_t nr_valid)
{
	uint8_t buf[PAGE];
	unsigned i;

	memset(buf, 0, sizeof(buf));
	for (i = 0; i < NR_ENTRIES && i < nr_valid; i++)
		put64(buf + 8 * i, first + i * step);
	return write_page(mem, gpa, buf, sizeof(buf));
}

/*
 * The identity map, one level at a time.  Entry e of level L (counted over
 * all tables of that level) covers [e * span_L, (e + 1) * span_L) and
 * points at table e of level L - 1, or maps it when it is the leaf level.
 */
static int write_paging(struct mv_as *mem, mv_gpa_t base,
			const struct layout *l)
{
	uint64_t nr_2m = l->map_end / MiB2, t;
	bool leaf_pd = !l->nr_pt;
	int ret;

	ret = write_table(mem, base, (base + l->pdpt) | PTE_TABLE, PAGE,
			  l->nr_pdpt);
	for (t = 0; t < l->nr_pdpt && !ret; t++)
		ret = write_table(mem, base + l->pdpt + t * PAGE,
				  (base + l->pd + t * NR_ENTRIES * PAGE) |
					  PTE_TABLE,
				  PAGE, l->nr_pd - t * NR_ENTRIES);
	for (t = 0; t < l->nr_pd && !ret; t++)
		ret = write_table(
			mem, base + l->pd + t * PAGE,
			leaf_pd ? (t * GiB1) | PTE_LEAF | PTE_PS :
				  (base + l->pt + t * NR_ENTRIES * PAGE) |
					  PTE_TABLE,
			leaf_pd ? MiB2 : PAGE, nr_2m - t * NR_ENTRIES);
	for (t = 0; t < l->nr_pt && !ret; t++)
		ret = write_table(mem, base + l->pt + t * PAGE,
				  (t * MiB2) | PTE_LEAF, PAGE, NR_ENTRIES);
	return ret;
}

/* A code or data descriptor: @access is P|DPL|S|type, @flags G|DB|L. */
static uint64_t seg_desc(uint32_t base, uint32_t limit, uint8_t access,
			 uint8_t flags)
{
	return (limit & 0xffffull) | ((uint64_t)(base & 0xffffff) << 16) |
	       ((uint64_t)access << 40) |
	       ((uint64_t)((limit >> 16) & 0xf) << 48) |
	       ((uint64_t)(flags & 0xf) << 52) | ((uint64_t)(base >> 24) << 56);
}

#define DESC_P 0x80
#define DESC_DPL3 0x60
#define DESC_S 0x10
#define DESC_CODE 0x0b	   /* execute/read, accessed */
#define DESC_DATA 0x03	   /* read/write, accessed */
#define DESC_TSS_BUSY 0x0b /* busy 64-bit TSS */
#define DESC_G 0x8
#define DESC_DB 0x4
#define DESC_L 0x2

/* Put the 8-byte @v at @pos of the sys area if it falls in the page at @off. */
static void put_sys(uint8_t *page, uint64_t off, uint64_t pos, uint64_t v)
{
	if (pos >= off && pos < off + PAGE)
		put64(page + pos - off, v);
}

/*
 * vCPU @i's TSS limit: its I/O map base (where the shared bitmap lies,
 * relative to this TSS) plus the bitmap and its end byte.
 */
static uint32_t tss_limit(const struct layout *l, unsigned i)
{
	return (uint32_t)(l->iomap - (l->tss + i * TSS_STRIDE)) + IOMAP_SIZE -
	       1;
}

/* vCPU @i's TSS descriptor (16 bytes) and TSS in the page at @off. */
static void put_tss(uint8_t *page, uint64_t off, mv_gpa_t base,
		    const struct layout *l, unsigned i)
{
	uint64_t d = 8 * (GDT_FIXED + 2 * i),
		 t = l->tss - l->sys + i * TSS_STRIDE;
	mv_gpa_t tss = base + l->tss + i * TSS_STRIDE;
	mv_gpa_t rsp0 = base + l->stacks + (i + 1) * CPL0_STACK;

	put_sys(page, off, d,
		seg_desc((uint32_t)tss, tss_limit(l, i), DESC_P | DESC_TSS_BUSY,
			 0));
	put_sys(page, off, d + 8, tss >> 32);
	if (t >= off && t < off + PAGE) { /* a TSS never straddles pages */
		put64(page + t - off + 4, rsp0);
		put16(page + t - off + 102, (uint16_t)(l->iomap - l->sys - t));
	}
}

/*
 * The GDT, the TSSs and the I/O bitmap they share (pages from l->sys).
 * Every TSS's RSP0 is the top of its vCPU's CPL0 stack.  The bitmap allows
 * every port: with IOPL 3 it is not consulted, but a hypervisor that runs
 * CPL3 code with the hardware IOPL at 0 (PVM) checks it when it emulates
 * the #GP of an IN or OUT.
 */
static int write_sys(struct mv_as *mem, mv_gpa_t base, const struct layout *l)
{
	uint64_t size = l->idt - l->sys, end = l->iomap - l->sys + IOMAP_SIZE;
	uint8_t buf[PAGE];
	uint64_t off;
	unsigned i;
	int ret = 0;

	for (off = 0; off < size && !ret; off += PAGE) {
		memset(buf, 0, sizeof(buf));
		put_sys(buf, off, MV_X86_SEL_KCODE,
			seg_desc(0, 0xfffff, DESC_P | DESC_S | DESC_CODE,
				 DESC_G | DESC_L));
		put_sys(buf, off, MV_X86_SEL_KDATA,
			seg_desc(0, 0xfffff, DESC_P | DESC_S | DESC_DATA,
				 DESC_G | DESC_DB));
		put_sys(buf, off, MV_X86_SEL_UCODE & ~3,
			seg_desc(0, 0xfffff,
				 DESC_P | DESC_DPL3 | DESC_S | DESC_CODE,
				 DESC_G | DESC_L));
		put_sys(buf, off, MV_X86_SEL_UDATA & ~3,
			seg_desc(0, 0xfffff,
				 DESC_P | DESC_DPL3 | DESC_S | DESC_DATA,
				 DESC_G | DESC_DB));
		for (i = 0; i < l->nr_vcpus; i++)
			put_tss(buf, off, base, l, i);
		if (end - 1 >= off && end - 1 < off + PAGE)
			buf[end - 1 - off] = 0xff;
		ret = write_page(mem, base + l->sys + off, buf, sizeof(buf));
	}
	return ret;
}

/* A 64-bit interrupt gate to @target in the CPL0 code segment. */
static void put_gate(uint8_t *p, uint64_t target, unsigned dpl)
{
	put16(p, (uint16_t)target);
	put16(p + 2, MV_X86_SEL_KCODE);
	p[4] = 0; /* IST 0: the TSS's RSP0 */
	p[5] = (uint8_t)(DESC_P | dpl << 5 | 0xe);
	put16(p + 6, (uint16_t)(target >> 16));
	put32(p + 8, (uint32_t)(target >> 32));
	put32(p + 12, 0);
}

/*
 * Vectors 0-31 go to their stub (DPL0: `int $n` from CPL3 is a #GP);
 * 0x80 goes to the halt stub and may be raised from CPL3.  Other vectors
 * are not present (#NP, reported as such).
 */
static int write_idt(struct mv_as *mem, mv_gpa_t base, const struct layout *l)
{
	uint8_t buf[IDT_VECTORS * 16];
	unsigned v;

	memset(buf, 0, sizeof(buf));
	for (v = 0; v < 32; v++)
		put_gate(buf + 16 * v, base + l->stubs + v * STUB_SIZE, 0);
	put_gate(buf + 16 * INT80_VECTOR, base + l->stubs + STUB_INT80, 3);
	return write_page(mem, base + l->idt, buf, sizeof(buf));
}

/*
 * Exception stub for vector N (the CPU pushed the frame on the CPL0 stack
 * and, for some vectors, an error code; the stub leaves both in place so
 * the VMM finds them at %rsp):
 *
 *   b8 NN 00 00 00     mov  $N, %eax
 *   ba f5 00 00 00     mov  $MV_GUEST_PORT_FAULT, %edx
 *   ef                 out  %eax, (%dx)
 *   f4              1: hlt
 *   eb fd              jmp  1b
 *   90                 nop (padding to 16 bytes)
 */
static const uint8_t stub_code[STUB_SIZE] = {
	0xb8, 0x00, 0x00, 0x00, 0x00, 0xba, MV_GUEST_PORT_FAULT,
	0x00, 0x00, 0x00, 0xef, 0xf4, 0xeb, 0xfd,
	0x90, 0x90,
};
#define STUB_VECTOR_AT 1

/* int 0x80:   f4  1: hlt;  eb fd  jmp 1b */
static const uint8_t int80_code[] = { 0xf4, 0xeb, 0xfd };

static int write_stubs(struct mv_as *mem, mv_gpa_t base, const struct layout *l)
{
	uint8_t buf[PAGE];
	unsigned v;

	memset(buf, 0xcc, sizeof(buf)); /* int3 anywhere else */
	for (v = 0; v < 32; v++) {
		memcpy(buf + v * STUB_SIZE, stub_code, STUB_SIZE);
		buf[v * STUB_SIZE + STUB_VECTOR_AT] = (uint8_t)v;
	}
	memcpy(buf + STUB_INT80, int80_code, sizeof(int80_code));
	return write_page(mem, base + l->stubs, buf, sizeof(buf));
}

/* The CPL0 stacks start zeroed so a frame read is never stale data. */
static int write_stacks(struct mv_as *mem, mv_gpa_t base,
			const struct layout *l)
{
	static const uint8_t zero[CPL0_STACK];
	unsigned i;
	int ret = 0;

	for (i = 0; i < l->nr_vcpus && !ret; i++)
		ret = write_page(mem, base + l->stacks + i * CPL0_STACK, zero,
				 sizeof(zero));
	return ret;
}

/* [gpa, gpa + len) must be RAM the VMM may write directly. */
static int check_ram(struct mv_as *mem, mv_gpa_t gpa, uint64_t len)
{
	while (len) {
		uint64_t n;
		void *hva;

		if (mv_as_translate(mem, gpa, true, &hva, &n) || !n)
			return -EFAULT;
		if (n >= len)
			break;
		gpa += n;
		len -= n;
	}
	return 0;
}

static int check_boot(const struct mv_x86_boot *b, const struct layout *l)
{
	if (b->vcpu >= l->nr_vcpus || b->tables & (PAGE - 1))
		return -EINVAL;
	if (b->tables >= l->map_end || l->size > l->map_end - b->tables)
		return -EINVAL; /* the CPU reaches the tables through the map */
	if (b->entry >= l->map_end || !b->stack_top ||
	    b->stack_top > l->map_end)
		return -EINVAL;
	if (b->tables_size < l->size)
		return -ENOSPC;
	return 0;
}

/* ---- registers ---------------------------------------------------------- */

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, bool code)
{
	struct kvm_segment s = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = sel & 3,
		.db = !code,
		.s = 1,
		.l = code,
		.g = 1,
	};

	return s;
}

static void fill_sregs(struct kvm_sregs *s, const struct mv_x86_boot *b,
		       const struct layout *l)
{
	struct kvm_segment data = flat_seg(MV_X86_SEL_UDATA, DESC_DATA, false);
	struct kvm_segment tr = {
		.base = b->tables + l->tss + b->vcpu * TSS_STRIDE,
		.limit = tss_limit(l, b->vcpu),
		.selector = (uint16_t)(MV_X86_SEL_TSS + 16 * b->vcpu),
		.type = DESC_TSS_BUSY,
		.present = 1,
	};
	struct kvm_segment ldt = { .type = 2, .unusable = 1 };

	s->cr0 = MV_X86_BOOT_CR0;
	s->cr3 = b->tables;
	s->cr4 = MV_X86_BOOT_CR4;
	s->efer = MV_X86_BOOT_EFER;
	s->cs = flat_seg(MV_X86_SEL_UCODE, DESC_CODE, true);
	s->ss = data;
	s->ds = data;
	s->es = data;
	s->fs = data;
	s->gs = data;
	s->tr = tr;
	s->ldt = ldt;
	s->gdt.base = b->tables + l->sys;
	s->gdt.limit = (uint16_t)(l->gdt_size - 1);
	s->idt.base = b->tables + l->idt;
	s->idt.limit = IDT_VECTORS * 16 - 1;
}

static void fill_regs(struct kvm_regs *r, const struct mv_x86_boot *b)
{
	memset(r, 0, sizeof(*r));
	r->rip = b->entry;
	r->rsp = b->stack_top;
	r->rflags = MV_X86_BOOT_RFLAGS;
	r->rdi = b->arg[0];
	r->rsi = b->arg[1];
	r->rdx = b->arg[2];
	r->rcx = b->arg[3];
}

int mv_x86_boot_build(struct mv_as *mem, const struct mv_x86_boot *b,
		      struct kvm_sregs *sregs, struct kvm_regs *regs)
{
	struct layout l;
	int ret;

	if (!mem || !b || !sregs || !regs)
		return -EINVAL;
	ret = layout_of(b, &l);
	if (!ret)
		ret = check_boot(b, &l);
	if (!ret)
		ret = check_ram(mem, b->tables, l.size);
	if (!ret)
		ret = write_paging(mem, b->tables, &l);
	if (!ret)
		ret = write_sys(mem, b->tables, &l);
	if (!ret)
		ret = write_idt(mem, b->tables, &l);
	if (!ret)
		ret = write_stubs(mem, b->tables, &l);
	if (!ret)
		ret = write_stacks(mem, b->tables, &l);
	if (ret)
		return ret;
	fill_sregs(sregs, b, &l);
	fill_regs(regs, b);
	return 0;
}

/* ---- the software walk -------------------------------------------------- */

/* Appends to a fixed buffer; output past its end is cut. */
struct text {
	char *p;
	size_t len, pos;
};

__attribute__((format(printf, 2, 3))) static void add(struct text *t,
						      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!t->p || t->pos >= t->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->p + t->pos, t->len - t->pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->pos += (size_t)n;
}

static const char *const level_name[] = { "", "PTE", "PDE", "PDPTE", "PML4E" };

static bool canonical(uint64_t va)
{
	return (uint64_t)((int64_t)(va << 16) >> 16) == va;
}

/* A leaf's frame, or -EFAULT when bits between 12 and its size are set. */
static int leaf(struct mv_x86_walk *w, int level, uint64_t e, mv_gva_t gva)
{
	uint64_t size = 1ull << (12 + 9 * (level - 1));
	uint64_t rsvd = (size - 1) & PTE_ADDR &
			~(level > 1 ? PTE_PAT_LARGE : 0);

	if (e & rsvd)
		return -EFAULT;
	w->level = level;
	w->pte = e;
	w->page_size = size;
	w->gpa = (e & PTE_ADDR & ~(size - 1)) | (gva & (size - 1));
	return 0;
}

int mv_x86_walk(struct mv_as *mem, uint64_t cr3, mv_gva_t gva,
		struct mv_x86_walk *w, char *why, size_t len)
{
	struct text t = { why, len, 0 };
	mv_gpa_t table = cr3 & PTE_ADDR;
	int level;

	if (why && len)
		why[0] = 0;
	if (!mem || !w)
		return -EINVAL;
	memset(w, 0, sizeof(*w));
	if (!canonical(gva)) {
		add(&t, "address 0x%" PRIx64 " is not canonical", gva);
		return -EINVAL;
	}
	w->writable = w->user = true;
	for (level = 4; level >= 1; level--) {
		unsigned idx = (gva >> (12 + 9 * (level - 1))) & 511;
		mv_gpa_t egpa = table + 8 * idx;
		uint64_t e = 0;

		if (mv_as_ldq_le(mem, egpa, &e)) {
			add(&t,
			    "%s of 0x%" PRIx64 " at 0x%" PRIx64
			    " (level %d): table not in RAM",
			    level_name[level], gva, egpa, level);
			return -EFAULT;
		}
		w->table_gpa[4 - level] = table;
		w->entry[4 - level] = e;
		if (!(e & PTE_P)) {
			add(&t,
			    "%s of 0x%" PRIx64 " at 0x%" PRIx64
			    " (level %d) not present: 0x%" PRIx64,
			    level_name[level], gva, egpa, level, e);
			return -EFAULT;
		}
		w->writable = w->writable && (e & PTE_RW);
		w->user = w->user && (e & PTE_US);
		w->nx = w->nx || (e & PTE_NX);
		if (level == 1 || (level <= 3 && (e & PTE_PS))) {
			if (!leaf(w, level, e, gva))
				return 0;
			add(&t,
			    "%s of 0x%" PRIx64 " at 0x%" PRIx64
			    " (level %d): reserved bits set: 0x%" PRIx64,
			    level_name[level], gva, egpa, level, e);
			return -EFAULT;
		}
		if (e & PTE_PS) {
			add(&t,
			    "PML4E of 0x%" PRIx64 " at 0x%" PRIx64
			    " (level 4): PS set (reserved): 0x%" PRIx64,
			    gva, egpa, e);
			return -EFAULT;
		}
		table = e & PTE_ADDR;
	}
	return -EFAULT; /* not reached: level 1 is always a leaf */
}

/* ---- describing a guest exception --------------------------------------- */

static const char *const exc_name[32] = {
	[0] = "DE",  [1] = "DB",  [2] = "NMI", [3] = "BP",  [4] = "OF",
	[5] = "BR",  [6] = "UD",  [7] = "NM",  [8] = "DF",  [9] = "CSO",
	[10] = "TS", [11] = "NP", [12] = "SS", [13] = "GP", [14] = "PF",
	[16] = "MF", [17] = "AC", [18] = "MC", [19] = "XM", [20] = "VE",
	[21] = "CP", [28] = "HV", [29] = "VC", [30] = "SX",
};

/* Vectors for which the CPU pushes an error code. */
#define EXC_WITH_ERROR                                                   \
	((1u << 8) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) | \
	 (1u << 14) | (1u << 17) | (1u << 21) | (1u << 29) | (1u << 30))
#define EXC_SELECTOR_ERROR ((1u << 10) | (1u << 11) | (1u << 12) | (1u << 13))

/* Read a qword at a guest-virtual address through the guest's tables. */
static int read_gva(struct mv_as *mem, uint64_t cr3, mv_gva_t gva, uint64_t *v)
{
	struct mv_x86_walk w;

	if (mv_x86_walk(mem, cr3, gva, &w, NULL, 0) ||
	    (w.gpa & (PAGE - 1)) > PAGE - 8)
		return -EFAULT;
	return mv_as_ldq_le(mem, w.gpa, v) ? -EFAULT : 0;
}

static void describe_error(struct text *t, uint32_t vector, uint64_t err)
{
	add(t, ", error code 0x%" PRIx64, err);
	if (vector == 14) {
		add(t, " (%s, %s, %s%s%s)",
		    err & 1 ? "protection" : "not present",
		    err & 16 ? "fetch" :
		    err & 2  ? "write" :
			       "read",
		    err & 4 ? "user" : "supervisor",
		    err & 8 ? ", reserved bit" : "",
		    err & 32 ? ", protection key" : "");
	} else if ((EXC_SELECTOR_ERROR >> vector) & 1 && err) {
		if (err & 2)
			add(t, " (IDT vector 0x%" PRIx64 ")",
			    (err >> 3) & 0x1fff);
		else
			add(t, " (%s selector 0x%" PRIx64 ")",
			    err & 4 ? "LDT" : "GDT", err & 0xfff8);
	}
}

/*
 * The frame at @rsp, as the CPU pushed it: [error code,] rip, cs, rflags,
 * rsp, ss.  Return: 0, or -EFAULT with the address not read in *@bad.
 */
static int read_frame(struct mv_as *mem, uint64_t cr3, mv_gva_t rsp,
		      bool has_err, uint64_t *err, uint64_t f[5], mv_gva_t *bad)
{
	unsigned i;

	*bad = rsp;
	if (has_err && read_gva(mem, cr3, rsp, err))
		return -EFAULT;
	rsp += has_err ? 8 : 0;
	for (i = 0; i < 5; i++) {
		*bad = rsp + 8 * i;
		if (read_gva(mem, cr3, *bad, &f[i]))
			return -EFAULT;
	}
	return 0;
}

int mv_x86_describe_fault(struct mv_as *mem, uint32_t vector,
			  const struct kvm_regs *r, const struct kvm_sregs *s,
			  char *msg, size_t len)
{
	struct text t = { msg, len, 0 };
	uint64_t err = 0, f[5] = { 0 }; /* rip, cs, rflags, rsp, ss */
	bool has_err;
	mv_gva_t bad;

	if (!mem || !r || !s || !msg || !len)
		return -EINVAL;
	msg[0] = 0;
	if (vector >= 32) {
		add(&t,
		    "guest wrote %" PRIu32 " to the fault port "
		    "(not an exception vector)",
		    vector);
		return 0;
	}
	add(&t, "guest exception #%s (vector %" PRIu32 ")",
	    exc_name[vector] ? exc_name[vector] : "reserved", vector);
	has_err = (EXC_WITH_ERROR >> vector) & 1;
	if (read_frame(mem, s->cr3, r->rsp, has_err, &err, f, &bad)) {
		add(&t,
		    "; its frame at rsp 0x%llx is unreadable (at 0x%" PRIx64
		    ")",
		    (unsigned long long)r->rsp, bad);
		return 0;
	}
	add(&t, " at rip 0x%" PRIx64 " (CPL%u)", f[0], (unsigned)(f[1] & 3));
	if (has_err)
		describe_error(&t, vector, err);
	if (vector == 14)
		add(&t, ", cr2 0x%llx", (unsigned long long)s->cr2);
	add(&t, ", rsp 0x%" PRIx64 ", rflags 0x%" PRIx64, f[3], f[2]);
	return 0;
}
