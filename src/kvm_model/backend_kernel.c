// SPDX-License-Identifier: MIT
/*
 * The real kernel as a struct mv_backend: every replay operation is the
 * raw ioctl on /dev/kvm (a fresh VM per `vm`), the slot table is mirrored
 * from the calls the kernel accepted, and guest writes are made by a CPL3
 * guest (the "runner") whose memory replay.c hands over in a slot of its
 * own.  Limits are probed here, once, and given to the model.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"

#define PAGE 0x1000ull

/* uapi 6.8+ definitions our 6.1 headers lack (kvm-memslots.md §1.1). */
#define MV_KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct mv_region2)
struct mv_create_guest_memfd {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};
#define MV_KVM_CREATE_GUEST_MEMFD \
	_IOWR(KVMIO, 0xd4, struct mv_create_guest_memfd)
#define MV_KVM_CAP_USER_MEMORY2 231
#define MV_KVM_CAP_GUEST_MEMFD 234
#define MV_KVM_X86_QUIRK_SLOT_ZAP_ALL (1 << 7) /* 6.12+ */

/* ---- the runner's guest memory (offsets from the runner slot) ---------
 *
 *   +0x0000  PML4          +0x5000  GDT, TSS at +0x5100, I/O bitmap after
 *   +0x1000  PDPT          +0x8000  IDT
 *   +0x2000  PD 0 (runner) +0x9000  exception stubs
 *   +0x3000  code          +0xa000  CPL0 stack (RSP0 = +0xb000)
 *   +0x4000  mailbox       +0xb000  CPL3 stack
 *   +0xc000  pool of PDs and PTs for the target GVAs
 *
 * The runner is mapped at RUNNER_GVA with 2 MiB leaves.  Each guest page
 * written gets one GVA for the VM's life, TARGET_GVA + k * TARGET_STRIDE
 * for the k-th page: its PTE is written before the guest first uses it
 * and never changes, so the shadow MMU never holds a stale translation.
 * Two shadow-paging artefacts the model (which knows no GVAs) must not
 * see, both found by the differential test:
 *   - every GVA alias of a page has its own SPTE, and the first write
 *     through each alias faults and pushes a ring entry of its own, where
 *     one GVA (or TDP) pushes one entry per page per protection epoch;
 *   - on each fault the shadow MMU prefetches the other present, accessed
 *     guest PTEs of the faulting one's aligned group of 8
 *     (FNAME(pte_prefetch), PTE_PREFETCH_NUM): a neighbour page in a slot
 *     without LOG, whose PTE is dirty, gets a writable SPTE without being
 *     stored to, and once LOG turns on with INITIALLY_SET (no write-
 *     protect) its next store logs nothing.  So target GVAs are 8 pages
 *     apart, each alone in its group.
 */
#define RUNNER_GVA 0x400000ull
#define TARGET_GVA (1ull << 30)
#define TARGET_STRIDE (8 * PAGE)  /* PTE_PREFETCH_NUM pages */
#define TARGET_MAX (511ull << 15) /* 511 GiB of 32 KiB strides */
#define R_PML4 0x0000
#define R_PDPT 0x1000
#define R_PD0 0x2000
#define R_CODE 0x3000
#define R_MAILBOX 0x4000
#define R_GDT 0x5000
#define R_TSS 0x5100
#define R_IOMAP (R_TSS + 104)
#define IOMAP_SIZE 8193 /* 65536 port bits, then the 0xff end byte */
#define R_IDT 0x8000
#define R_STUBS 0x9000
#define R_STACK0 0xb000
#define R_STACK3 0xc000
#define R_POOL 0xc000

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull
#define PTE_TABLE (PTE_P | PTE_RW | PTE_US | PTE_A)
#define PTE_LEAF (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D)

#define SEL_KCODE 0x08
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define SEL_TSS 0x28
#define WRITE_PORT 0x10
#define FAULT_PORT 0xf5

/*
 * The guest: forever { rax = *mailbox; *(u8 *)rax = 1; out %al, $0x10 }.
 *   48 a1 imm64   movabs mailbox, %rax
 *   c6 00 01      movb   $1, (%rax)
 *   e6 10         out    %al, $WRITE_PORT
 *   eb ef         jmp    start
 */
static const uint8_t runner_code[] = {
	0x48, 0xa1, 0,	  0,	0,	    0,	  0,
	0,    0,    0, /* address patched in */
	0xc6, 0x00, 0x01, 0xe6, WRITE_PORT, 0xeb, 0xef,
};
#define CODE_ADDR_AT 2
#define CODE_STORE_AT 10

/*
 * Exception stub for vector N, at CPL0:
 *   b8 NN 00 00 00  mov $N, %eax;  ba f5 00 00 00  mov $0xf5, %edx;
 *   ef  out %eax, (%dx);  f4  hlt;  eb fd  jmp .-1
 */
static const uint8_t stub_code[16] = {
	0xb8, 0, 0,    0,    0,	   0xba, FAULT_PORT, 0,
	0,    0, 0xef, 0xf4, 0xeb, 0xfd, 0x90,	     0x90,
};

struct kvcpu {
	int fd;
	struct kvm_run *run;
	struct kvm_dirty_gfn *ring;
	uint32_t fetch; /* next ring entry to harvest */
};

/* One slot of the mirror: what the kernel accepted. */
struct kslot {
	bool present;
	struct mv_backend_slot s;
};

/*
 * struct kernel - the backend.  @slots mirrors the kernel's table, indexed
 * by as_id * nr_slots + id; it changes only when an ioctl succeeded.
 * @gmem holds every guest_memfd created, across VMs (a gmem outlives its
 * VM, and binding it to a later VM must give the kernel's EINVAL).
 */
struct kernel {
	struct mv_backend b;
	int kvm_fd, vm_fd;
	size_t run_size;
	struct kvm_cpuid2 *cpuid;
	struct kvcpu *vcpu;
	unsigned nr_vcpus;
	uint32_t ring_bytes;
	struct kslot *slots;
	size_t nr_table;
	int *gmem;
	size_t nr_gmem;
	uint64_t *bitmap; /* get_dirty_log scratch */
	size_t bitmap_words;
	/* the runner */
	bool runner;
	struct mv_backend_runner r;
	uint64_t next_target, pool_next;
	struct gva_map {
		uint64_t gfn1; /* gfn + 1; 0: empty */
		uint64_t gva;
	} * gvas;
	size_t gvas_cap, gvas_used;
	bool pending;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
};

static struct kernel *to_kernel(struct mv_backend *b)
{
	return b->priv;
}

static int sys_err(long ret)
{
	return ret < 0 ? -errno : 0;
}

/* ---- the VM and its vCPUs ---------------------------------------------- */

static void vcpus_close(struct kernel *k)
{
	unsigned i;

	for (i = 0; i < k->nr_vcpus; i++) {
		struct kvcpu *c = &k->vcpu[i];

		if (c->ring)
			munmap(c->ring, k->ring_bytes);
		munmap(c->run, k->run_size);
		close(c->fd);
	}
	free(k->vcpu);
	k->vcpu = NULL;
	k->nr_vcpus = 0;
}

static void vm_close(struct kernel *k)
{
	vcpus_close(k);
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	k->vm_fd = -1;
	k->ring_bytes = 0;
	k->runner = false;
	k->pending = false;
	if (k->slots)
		memset(k->slots, 0, k->nr_table * sizeof(k->slots[0]));
}

static int kernel_vm(struct mv_backend *b)
{
	struct kernel *k = to_kernel(b);
	int fd;

	vm_close(k);
	fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (fd < 0)
		return -errno;
	k->vm_fd = fd;
	return 0;
}

static int kernel_enable_cap(struct mv_backend *b, uint32_t cap, uint64_t arg)
{
	struct kernel *k = to_kernel(b);
	struct kvm_enable_cap c = { .cap = cap, .args = { arg } };
	int ret = sys_err(ioctl(k->vm_fd, KVM_ENABLE_CAP, &c));

	if (!ret && cap == KVM_CAP_DIRTY_LOG_RING)
		k->ring_bytes = (uint32_t)arg;
	return ret;
}

static int vcpu_map(struct kernel *k, struct kvcpu *c)
{
	void *p = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       c->fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	c->run = p;
	if (!k->ring_bytes)
		return 0;
	p = mmap(NULL, k->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd,
		 KVM_DIRTY_LOG_PAGE_OFFSET * PAGE);
	if (p == MAP_FAILED) {
		munmap(c->run, k->run_size);
		return -errno;
	}
	c->ring = p;
	return 0;
}

static int kernel_create_vcpu(struct mv_backend *b)
{
	struct kernel *k = to_kernel(b);
	struct kvcpu *v, c = { .fd = -1 };
	int ret;

	v = realloc(k->vcpu, (k->nr_vcpus + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	k->vcpu = v;
	c.fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, k->nr_vcpus);
	if (c.fd < 0)
		return -errno;
	ret = sys_err(ioctl(c.fd, KVM_SET_CPUID2, k->cpuid));
	if (!ret)
		ret = vcpu_map(k, &c);
	if (ret) {
		close(c.fd); /* the kernel keeps the vCPU: id not reused */
		return ret;
	}
	k->vcpu[k->nr_vcpus++] = c;
	return 0;
}

/* ---- memslots ---------------------------------------------------------- */

static struct kslot *mirror_find(struct kernel *k, uint32_t slot)
{
	uint64_t as = slot >> 16, id = slot & 0xffff;

	if (as >= k->b.limits.nr_as || id >= k->b.limits.nr_slots)
		return NULL;
	return &k->slots[as * k->b.limits.nr_slots + id];
}

/* The kernel accepted @r: DELETE, CREATE, MOVE, FLAGS_ONLY or no-op. */
static void mirror_apply(struct kernel *k, const struct mv_region2 *r)
{
	struct kslot *s = mirror_find(k, r->slot);

	if (!s)
		return;
	if (!r->memory_size) {
		s->present = false;
		return;
	}
	s->present = true;
	s->s.slot = r->slot;
	s->s.flags = r->flags;
	s->s.gpa = r->guest_phys_addr;
	s->s.size = r->memory_size;
	s->s.hva = r->userspace_addr;
}

static int kernel_set_region(struct mv_backend *b, const struct mv_region2 *r,
			     bool v2)
{
	struct kernel *k = to_kernel(b);
	struct kvm_userspace_memory_region r1 = {
		.slot = r->slot,
		.flags = r->flags,
		.guest_phys_addr = r->guest_phys_addr,
		.memory_size = r->memory_size,
		.userspace_addr = r->userspace_addr,
	};
	long ret;

	if (v2)
		ret = ioctl(k->vm_fd, MV_KVM_SET_USER_MEMORY_REGION2, r);
	else
		ret = ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r1);
	if (ret < 0)
		return -errno;
	mirror_apply(k, r);
	return 0;
}

static int kernel_gmem_create(struct mv_backend *b, uint64_t size, int *fd)
{
	struct kernel *k = to_kernel(b);
	struct mv_create_guest_memfd g = { .size = size };
	int *list, gfd;

	list = realloc(k->gmem, (k->nr_gmem + 1) * sizeof(*list));
	if (!list)
		return -ENOMEM;
	k->gmem = list;
	gfd = ioctl(k->vm_fd, MV_KVM_CREATE_GUEST_MEMFD, &g);
	if (gfd < 0)
		return -errno;
	k->gmem[k->nr_gmem++] = gfd;
	*fd = gfd;
	return 0;
}

static int kernel_lookup(struct mv_backend *b, uint64_t gpa, uint64_t *result,
			 bool *found)
{
	struct kernel *k = to_kernel(b);
	size_t i;

	*found = false;
	for (i = 0; i < k->b.limits.nr_slots; i++) { /* address space 0 */
		const struct kslot *s = &k->slots[i];

		if (s->present && gpa >= s->s.gpa &&
		    gpa - s->s.gpa < s->s.size) {
			*result = s->s.slot;
			*found = true;
			break;
		}
	}
	return 0;
}

static size_t kernel_slots(struct mv_backend *b, struct mv_backend_slot *out,
			   size_t max)
{
	struct kernel *k = to_kernel(b);
	size_t i, n = 0;

	for (i = 0; i < k->nr_table; i++) {
		if (!k->slots[i].present)
			continue;
		if (n < max)
			out[n] = k->slots[i].s;
		n++;
	}
	return n;
}

/* ---- dirty logging ----------------------------------------------------- */

static int kernel_get_dirty_log(struct mv_backend *b, uint32_t slot,
				uint64_t *bitmap, size_t words,
				uint64_t *result)
{
	struct kernel *k = to_kernel(b);
	struct kslot *s = mirror_find(k, slot);
	size_t need = 1, i;
	struct kvm_dirty_log log = { .slot = slot };
	uint64_t n = 0;
	int ret;

	if (s && s->present)
		need = (size_t)((s->s.size / PAGE + 63) / 64);
	if (need > k->bitmap_words) {
		uint64_t *p = realloc(k->bitmap, need * sizeof(*p));

		if (!p)
			return -ENOMEM;
		k->bitmap = p;
		k->bitmap_words = need;
	}
	memset(k->bitmap, 0, need * sizeof(uint64_t));
	log.dirty_bitmap = k->bitmap;
	ret = sys_err(ioctl(k->vm_fd, KVM_GET_DIRTY_LOG, &log));
	if (ret)
		return ret;
	for (i = 0; i < need; i++)
		n += (uint64_t)__builtin_popcountll(k->bitmap[i]);
	if (bitmap) {
		memset(bitmap, 0, words * sizeof(uint64_t));
		memcpy(bitmap, k->bitmap,
		       (words < need ? words : need) * sizeof(uint64_t));
	}
	*result = n;
	return 0;
}

static int kernel_clear_dirty_log(struct mv_backend *b, uint32_t slot,
				  uint32_t first, uint32_t num,
				  const uint64_t *bitmap)
{
	struct kernel *k = to_kernel(b);
	struct kvm_clear_dirty_log c = {
		.slot = slot,
		.num_pages = num,
		.first_page = first,
		.dirty_bitmap = (void *)(uintptr_t)bitmap,
	};

	return sys_err(ioctl(k->vm_fd, KVM_CLEAR_DIRTY_LOG, &c));
}

/* Mark every collected entry of every ring RESET, in order, then reset. */
static int kernel_reset_rings(struct mv_backend *b, uint64_t *result)
{
	struct kernel *k = to_kernel(b);
	uint32_t n = k->ring_bytes / sizeof(struct kvm_dirty_gfn);
	unsigned i;
	long ret;

	for (i = 0; i < k->nr_vcpus && n; i++) {
		struct kvcpu *c = &k->vcpu[i];

		for (;;) {
			struct kvm_dirty_gfn *e = &c->ring[c->fetch % n];

			if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) &
			      KVM_DIRTY_GFN_F_DIRTY))
				break;
			__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET,
					 __ATOMIC_RELEASE);
			c->fetch++;
		}
	}
	ret = ioctl(k->vm_fd, KVM_RESET_DIRTY_RINGS, 0);
	if (ret < 0)
		return -errno;
	*result = (uint64_t)ret;
	return 0;
}

/* ---- the runner -------------------------------------------------------- */

static uint8_t *rmem(struct kernel *k, uint64_t off)
{
	return (uint8_t *)k->r.hva + off;
}

static uint64_t *rtable(struct kernel *k, uint64_t off)
{
	return (uint64_t *)(void *)rmem(k, off);
}

static uint64_t rgva(uint64_t off)
{
	return RUNNER_GVA + off;
}

static uint64_t seg_desc(uint8_t access, uint8_t flags)
{
	return 0xffffull | (uint64_t)access << 40 | 0xfull << 48 |
	       (uint64_t)flags << 52;
}

static void runner_write_gdt(struct kernel *k)
{
	uint64_t *gdt = rtable(k, R_GDT), tss = rgva(R_TSS);
	uint32_t limit = 104 + IOMAP_SIZE - 1;

	gdt[1] = seg_desc(0x9b, 0xa); /* CPL0 code, L */
	gdt[2] = seg_desc(0x93, 0xc); /* CPL0 data */
	gdt[3] = seg_desc(0xfb, 0xa); /* CPL3 code, L */
	gdt[4] = seg_desc(0xf3, 0xc); /* CPL3 data */
	gdt[5] = (limit & 0xffff) | (tss & 0xffffff) << 16 | 0x8bull << 40 |
		 (uint64_t)(limit >> 16) << 48 | (tss >> 24 & 0xff) << 56;
	gdt[6] = tss >> 32;
	memcpy(rmem(k, R_TSS + 4), &(uint64_t){ rgva(R_STACK0) }, 8);
	memcpy(rmem(k, R_TSS + 102), &(uint16_t){ 104 }, 2);
	*rmem(k, R_IOMAP + IOMAP_SIZE - 1) = 0xff; /* every port allowed */
}

static void runner_write_idt(struct kernel *k)
{
	unsigned v;

	for (v = 0; v < 32; v++) {
		uint64_t stub = rgva(R_STUBS + 16 * v);
		uint64_t *g = rtable(k, R_IDT + 16 * v);

		memcpy(rmem(k, R_STUBS + 16 * v), stub_code, sizeof(stub_code));
		*rmem(k, R_STUBS + 16 * v + 1) = (uint8_t)v;
		g[0] = (stub & 0xffff) | (uint64_t)SEL_KCODE << 16 |
		       0x8eull << 40 | (stub >> 16 & 0xffff) << 48;
		g[1] = stub >> 32;
	}
}

static void runner_write_tables(struct kernel *k)
{
	uint64_t i;

	rtable(k, R_PML4)[0] = (k->r.gpa + R_PDPT) | PTE_TABLE;
	rtable(k, R_PDPT)[0] = (k->r.gpa + R_PD0) | PTE_TABLE;
	for (i = 0; i < k->r.size >> 21; i++)
		rtable(k, R_PD0)[(RUNNER_GVA >> 21) + i] =
			(k->r.gpa + (i << 21)) | PTE_LEAF | PTE_PS;
	memcpy(rmem(k, R_CODE), runner_code, sizeof(runner_code));
	memcpy(rmem(k, R_CODE + CODE_ADDR_AT), &(uint64_t){ rgva(R_MAILBOX) },
	       8);
	runner_write_gdt(k);
	runner_write_idt(k);
}

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, bool code)
{
	struct kvm_segment s = {
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

static void runner_fill_regs(struct kernel *k)
{
	struct kvm_sregs *s = &k->sregs;
	struct kvm_segment data = flat_seg(SEL_UDATA, 3, false);

	s->cr0 = 0x80050033ull;
	s->cr3 = k->r.gpa + R_PML4;
	s->cr4 = 0x620ull;
	s->efer = 0x500ull;
	s->cs = flat_seg(SEL_UCODE, 11, true);
	s->ss = s->ds = s->es = s->fs = s->gs = data;
	s->tr = (struct kvm_segment){ .base = rgva(R_TSS),
				      .limit = 104 + IOMAP_SIZE - 1,
				      .selector = SEL_TSS,
				      .type = 11,
				      .present = 1 };
	s->ldt = (struct kvm_segment){ .type = 2, .unusable = 1 };
	s->gdt.base = rgva(R_GDT);
	s->gdt.limit = 7 * 8 - 1;
	s->idt.base = rgva(R_IDT);
	s->idt.limit = 32 * 16 - 1;
	memset(&k->regs, 0, sizeof(k->regs));
	k->regs.rip = rgva(R_CODE);
	k->regs.rsp = rgva(R_STACK3);
	k->regs.rflags = 0x3002ull;
}

/* Put vCPU 0 back at the top of the loop (after a fault or an error). */
static int runner_restart(struct kernel *k)
{
	int fd = k->vcpu[0].fd;
	int ret = sys_err(ioctl(fd, KVM_SET_SREGS, &k->sregs));

	if (!ret)
		ret = sys_err(ioctl(fd, KVM_SET_REGS, &k->regs));
	k->pending = false;
	return ret;
}

static int kernel_set_runner(struct mv_backend *b,
			     const struct mv_backend_runner *r)
{
	struct kernel *k = to_kernel(b);
	int ret;

	if (!k->nr_vcpus || r->size < (4ull << 20) ||
	    (r->gpa | r->size) & ((2ull << 20) - 1))
		return -EINVAL;
	k->r = *r;
	madvise(r->hva, r->size, MADV_DONTNEED); /* private anonymous: zeros */
	runner_write_tables(k);
	k->next_target = 0;
	k->pool_next = R_POOL;
	if (k->gvas)
		memset(k->gvas, 0, k->gvas_cap * sizeof(*k->gvas));
	k->gvas_used = 0;
	ret = sys_err(ioctl(k->vcpu[0].fd, KVM_GET_SREGS, &k->sregs));
	if (ret)
		return ret;
	runner_fill_regs(k);
	ret = runner_restart(k);
	k->runner = !ret;
	return ret;
}

/* The table entry @idx of the table at @off, allocating the next level. */
static int runner_next_level(struct kernel *k, uint64_t off, unsigned idx,
			     uint64_t *next)
{
	uint64_t *e = &rtable(k, off)[idx];

	if (!*e) {
		if (k->pool_next + PAGE > k->r.size)
			return -ENOSPC;
		*e = (k->r.gpa + k->pool_next) | PTE_TABLE;
		k->pool_next += PAGE;
	}
	*next = (*e & ~0xfffull & ((1ull << 52) - 1)) - k->r.gpa;
	return 0;
}

static uint64_t gfn_hash(uint64_t gfn)
{
	return gfn * 0x9e3779b97f4a7c15ull;
}

/* The GVA slot of @gfn in the map (empty if absent); the map has room. */
static struct gva_map *gva_slot(struct kernel *k, uint64_t gfn)
{
	size_t i = (size_t)(gfn_hash(gfn) >> 20) & (k->gvas_cap - 1);

	while (k->gvas[i].gfn1 && k->gvas[i].gfn1 != gfn + 1)
		i = (i + 1) & (k->gvas_cap - 1);
	return &k->gvas[i];
}

static int gva_map_grow(struct kernel *k)
{
	struct gva_map *old = k->gvas;
	size_t n = k->gvas_cap, i;

	k->gvas_cap = n ? 2 * n : 1024;
	k->gvas = calloc(k->gvas_cap, sizeof(*k->gvas));
	if (!k->gvas) {
		k->gvas = old;
		k->gvas_cap = n;
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		if (old[i].gfn1)
			*gva_slot(k, old[i].gfn1 - 1) = old[i];
	free(old);
	return 0;
}

/* A new GVA for @gpa's page: its PTE is written before any use. */
static int runner_map_new(struct kernel *k, uint64_t gpa, uint64_t *gva)
{
	uint64_t va, pd, pt;
	int ret;

	if (k->next_target >= TARGET_MAX)
		return -ENOSPC;
	va = TARGET_GVA + k->next_target * TARGET_STRIDE;
	ret = runner_next_level(k, R_PDPT, (unsigned)(va >> 30 & 511), &pd);
	if (!ret)
		ret = runner_next_level(k, pd, (unsigned)(va >> 21 & 511), &pt);
	if (ret)
		return ret;
	k->next_target++;
	rtable(k, pt)[va >> 12 & 511] = (gpa & ~0xfffull) | PTE_LEAF;
	*gva = va;
	return 0;
}

/* The GVA of @gpa (its page's one GVA, made on first use). */
static int runner_map(struct kernel *k, uint64_t gpa, uint64_t *gva)
{
	uint64_t gfn = gpa >> 12;
	struct gva_map *e;
	int ret;

	if (2 * (k->gvas_used + 1) > k->gvas_cap && (ret = gva_map_grow(k)))
		return ret;
	e = gva_slot(k, gfn);
	if (!e->gfn1) {
		ret = runner_map_new(k, gpa, &e->gva);
		if (ret)
			return ret;
		e->gfn1 = gfn + 1;
		k->gvas_used++;
	}
	*gva = e->gva | (gpa & 0xfff);
	return 0;
}

enum run_stop {
	RUN_WROTE,  /* reached the out: the store retired */
	RUN_FULL,   /* KVM_EXIT_DIRTY_RING_FULL */
	RUN_FAILED, /* a guest fault, another exit, or KVM_RUN failed */
};

/*
 * KVM_RUN until the guest's out: MMIO exits (the store went to no slot or
 * a read-only one) are completed on the way and noted in *@mmio.
 */
static enum run_stop runner_run(struct kernel *k, bool *mmio, int *err)
{
	struct kvcpu *c = &k->vcpu[0];

	for (;;) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			*err = -errno;
			return RUN_FAILED;
		}
		switch (c->run->exit_reason) {
		case KVM_EXIT_IO:
			if (c->run->io.port == WRITE_PORT)
				return RUN_WROTE;
			*err = -EIO; /* FAULT_PORT: a guest exception */
			return RUN_FAILED;
		case KVM_EXIT_MMIO:
			*mmio = true;
			continue;
		case KVM_EXIT_DIRTY_RING_FULL:
			return RUN_FULL;
		case KVM_EXIT_INTR:
			continue;
		default:
			*err = -EIO;
			return RUN_FAILED;
		}
	}
}

/*
 * One store attempt (backend.h).  A store left pending by a full exit is
 * retried by running the vCPU again: it is still at that store, and the
 * caller passes the same @gpa.
 */
static int kernel_guest_write(struct mv_backend *b, uint64_t gpa)
{
	struct kernel *k = to_kernel(b);
	bool mmio = false;
	uint64_t gva;
	int ret, err = 0;

	if (!k->runner)
		return -ESRCH;
	if (!k->pending) {
		ret = runner_map(k, gpa, &gva);
		if (ret)
			return ret;
		memcpy(rmem(k, R_MAILBOX), &gva, sizeof(gva));
	}
	switch (runner_run(k, &mmio, &err)) {
	case RUN_WROTE:
		k->pending = false;
		return mmio ? -EFAULT : 0;
	case RUN_FULL:
		k->pending = true;
		return -EBUSY;
	default:
		runner_restart(k);
		return err;
	}
}

/* ---- limits ------------------------------------------------------------ */

static int check_cap(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

/* Whether the kernel takes a one-page slot (created, then deleted). */
static bool probe_slot(int vm, uint64_t gpa, uint64_t hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = 0,
		.guest_phys_addr = gpa,
		.memory_size = PAGE,
		.userspace_addr = hva,
	};

	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r))
		return false;
	r.memory_size = 0;
	ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r);
	return true;
}

/* The highest page-aligned value in [lo, 2^64) that @ok accepts (lo ok). */
static uint64_t probe_max(int vm, bool gpa_side, uint64_t lo)
{
	uint64_t hi = ~0ull & ~(PAGE - 1); /* candidate, maybe bad */

	if (probe_slot(vm, gpa_side ? hi : 0, gpa_side ? 0 : hi))
		return hi;
	while (hi - lo > PAGE) {
		uint64_t mid = (lo + (hi - lo) / 2) & ~(PAGE - 1);

		if (probe_slot(vm, gpa_side ? mid : 0, gpa_side ? 0 : mid))
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int load_cpuid(struct kernel *k)
{
	unsigned nent = 256, i;

	for (;;) {
		k->cpuid =
			calloc(1, sizeof(*k->cpuid) +
					  nent * sizeof(k->cpuid->entries[0]));
		if (!k->cpuid)
			return -ENOMEM;
		k->cpuid->nent = nent;
		if (!ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, k->cpuid))
			break;
		free(k->cpuid);
		k->cpuid = NULL;
		if (errno != E2BIG || nent > 4096)
			return -errno;
		nent *= 2;
	}
	for (i = 0; i < k->cpuid->nent; i++)
		if (k->cpuid->entries[i].function == 0x80000008)
			k->b.limits.guest_phys_bits = k->cpuid->entries[i].eax &
						      0xff;
	return 0;
}

/* PML (Intel) reserves 512 more ring entries (kvm_cpu_dirty_log_size). */
static unsigned ring_rsvd(void)
{
	char c = 0;
	int fd = open("/sys/module/kvm_intel/parameters/pml", O_RDONLY);

	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = 0;
		close(fd);
	}
	return c == 'Y' || c == '1' ? 64 + 512 : 64;
}

/*
 * Whether a DELETE or MOVE zaps every SPTE of our VMs.  x86 did so
 * unconditionally before 6.12; since then it is KVM_X86_QUIRK_SLOT_ZAP_ALL
 * (listed by KVM_CAP_DISABLE_QUIRKS2), on unless userspace disables it
 * (we never do) and ignored for non-default VM types (we create the
 * default).  So: true if the quirk is listed, or if no quirk past bit 6
 * is (a kernel older than the quirk); false only for a kernel that knows
 * later quirks but dropped this one.  ring_*_zaps.replay check it.
 */
static bool probe_slot_zap_all(int vm)
{
	int quirks = check_cap(vm, KVM_CAP_DISABLE_QUIRKS2);

	return !(quirks & ~0x7f) || quirks & MV_KVM_X86_QUIRK_SLOT_ZAP_ALL;
}

static int probe_limits(struct kernel *k)
{
	struct mv_backend_limits *l = &k->b.limits;
	int vm = k->vm_fd;
	uint64_t hva_max;

	l->nr_slots = (unsigned)check_cap(vm, KVM_CAP_NR_MEMSLOTS);
	l->nr_as = (unsigned)check_cap(vm, KVM_CAP_MULTI_ADDRESS_SPACE);
	if (!l->nr_as)
		l->nr_as = 1;
	l->readonly_mem = check_cap(vm, KVM_CAP_READONLY_MEM) > 0;
	l->manual_protect =
		(uint32_t)check_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	l->ring_max_bytes = (uint32_t)check_cap(vm, KVM_CAP_DIRTY_LOG_RING);
	l->ring_rsvd_entries = ring_rsvd();
	l->user_memory2 = check_cap(vm, MV_KVM_CAP_USER_MEMORY2) > 0;
	l->guest_memfd = check_cap(vm, MV_KVM_CAP_GUEST_MEMFD) > 0;
	l->slot_zap_all = probe_slot_zap_all(vm);
	if (!l->nr_slots || !probe_slot(vm, 0, 0))
		return -ENODEV;
	l->max_gfn = probe_max(vm, true, 0) / PAGE;
	hva_max = probe_max(vm, false, 0);
	l->user_ptr_max = hva_max + PAGE;
	return 0;
}

/* ---- construction ------------------------------------------------------ */

static void kernel_free(struct mv_backend *b)
{
	struct kernel *k;
	size_t i;

	if (!b)
		return;
	k = to_kernel(b);
	vm_close(k);
	for (i = 0; i < k->nr_gmem; i++)
		close(k->gmem[i]);
	free(k->gmem);
	free(k->gvas);
	free(k->slots);
	free(k->bitmap);
	free(k->cpuid);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k);
}

static const struct mv_backend_ops kernel_ops = {
	.vm = kernel_vm,
	.set_region = kernel_set_region,
	.gmem_create = kernel_gmem_create,
	.enable_cap = kernel_enable_cap,
	.create_vcpu = kernel_create_vcpu,
	.get_dirty_log = kernel_get_dirty_log,
	.clear_dirty_log = kernel_clear_dirty_log,
	.guest_write = kernel_guest_write,
	.reset_rings = kernel_reset_rings,
	.lookup = kernel_lookup,
	.slots = kernel_slots,
	.set_runner = kernel_set_runner,
	.free = kernel_free,
};

int mv_backend_kernel_new(struct mv_backend **out)
{
	struct kernel *k = calloc(1, sizeof(*k));
	int ret, sz;

	if (!k)
		return -ENOMEM;
	k->b.ops = &kernel_ops;
	k->b.priv = k;
	k->vm_fd = -1;
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	ret = k->kvm_fd < 0 ? -errno : 0;
	if (!ret) {
		sz = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
		ret = sz <= 0 ? -ENODEV : 0;
		k->run_size = (size_t)sz;
	}
	if (!ret)
		ret = load_cpuid(k);
	if (!ret)
		ret = kernel_vm(&k->b);
	if (!ret)
		ret = probe_limits(k);
	if (!ret) {
		k->nr_table = (size_t)k->b.limits.nr_as * k->b.limits.nr_slots;
		k->slots = calloc(k->nr_table, sizeof(*k->slots));
		ret = k->slots ? 0 : -ENOMEM;
	}
	if (!ret)
		ret = kernel_vm(&k->b); /* the probes' VM is not the first */
	if (ret) {
		kernel_free(&k->b);
		return ret;
	}
	*out = &k->b;
	return 0;
}
