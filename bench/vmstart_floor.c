// SPDX-License-Identifier: MIT
/*
 * bench/vmstart_floor: the raw-ioctl floor of bench/vmstart.  No
 * libmemvirt: /dev/kvm, one VM, one 64 MiB anonymous memslot at GPA 0,
 * one vCPU, the raw guest image at 1 MiB, entered the way memvirt enters
 * it (supported CPUID, 64-bit long mode with identity page tables of
 * 2 MiB pages over the first 4 GiB, CPL3 segments, IOPL 3), then KVM_RUN
 * until the guest writes port 0xf4; the process exits with that value.
 *
 *   bench-vmstart-floor [--real-mode] IMAGE
 *
 * --real-mode skips the long-mode setup: CS:IP = 0x1000:0 in real mode,
 * the image at GPA 0x10000 (extra information, not the floor).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_SIZE (64ull << 20)
#define IMAGE_GPA 0x100000ull
#define REAL_IMAGE_GPA 0x10000ull
#define TABLES_GPA 0x10000ull /* PML4, PDPT, then 4 page directories */
#define GDT_GPA 0x8000ull
#define STACK_TOP 0x9f000ull
#define EXIT_PORT 0xf4
#define MAX_IMAGE (1u << 20)

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

#define CR0_LONG 0x80050033ull /* PG AM WP NE ET MP PE */
#define CR4_LONG 0x620ull      /* OSXMMEXCPT OSFXSR PAE */
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define RFLAGS_IOPL3 0x3002ull

#define SEL_UDATA 0x1b /* GDT entry 3, RPL 3 */
#define SEL_UCODE 0x23 /* GDT entry 4, RPL 3 */

static void die(const char *what)
{
	fprintf(stderr, "bench-vmstart-floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static size_t read_image(const char *path, unsigned char *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		die(path);
	n = read(fd, buf, MAX_IMAGE);
	if (n <= 0)
		die(path);
	close(fd);
	return (size_t)n;
}

/* Identity map of [0, 4 GiB) with 2 MiB pages, U=1 at every level. */
static uint64_t build_page_tables(unsigned char *ram)
{
	uint64_t *pml4 = (uint64_t *)(void *)(ram + TABLES_GPA);
	uint64_t *pdpt = pml4 + 512;
	uint64_t *pd = pdpt + 512;
	uint64_t flags = PTE_P | PTE_RW | PTE_US, i;

	pml4[0] = (TABLES_GPA + 0x1000) | flags;
	for (i = 0; i < 4; i++)
		pdpt[i] = (TABLES_GPA + 0x2000 + i * 0x1000) | flags;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | flags | PTE_PS;
	return TABLES_GPA;
}

/* A GDT whose entries match the segment caches set below. */
static void build_gdt(unsigned char *ram)
{
	uint64_t *gdt = (uint64_t *)(void *)(ram + GDT_GPA);

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffull; /* kernel code, L */
	gdt[2] = 0x00cf93000000ffffull; /* kernel data */
	gdt[3] = 0x00cff3000000ffffull; /* user data, DPL 3 */
	gdt[4] = 0x00affb000000ffffull; /* user code, DPL 3, L */
}

static void set_cpuid(int kvm, int vcpu)
{
	struct kvm_cpuid2 *c;
	unsigned nent = 256;

	for (;;) {
		c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			die("calloc");
		c->nent = nent;
		if (!ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c))
			break;
		if (errno != E2BIG)
			die("KVM_GET_SUPPORTED_CPUID");
		free(c);
		nent *= 2;
	}
	if (ioctl(vcpu, KVM_SET_CPUID2, c))
		die("KVM_SET_CPUID2");
	free(c);
}

static void enter_long_mode(int vcpu, unsigned char *ram)
{
	struct kvm_segment code = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = SEL_UCODE,
		.type = 11,
		.present = 1,
		.dpl = 3,
		.s = 1,
		.l = 1,
		.g = 1,
	};
	struct kvm_segment data = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = SEL_UDATA,
		.type = 3,
		.present = 1,
		.dpl = 3,
		.s = 1,
		.db = 1,
		.g = 1,
	};
	struct kvm_sregs s;
	struct kvm_regs r = {
		.rip = IMAGE_GPA,
		.rsp = STACK_TOP,
		.rflags = RFLAGS_IOPL3,
	};

	if (ioctl(vcpu, KVM_GET_SREGS, &s))
		die("KVM_GET_SREGS");
	build_gdt(ram);
	s.gdt.base = GDT_GPA;
	s.gdt.limit = 5 * 8 - 1;
	s.cr3 = build_page_tables(ram);
	s.cr0 = CR0_LONG;
	s.cr4 = CR4_LONG;
	s.efer = EFER_LME | EFER_LMA;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	if (ioctl(vcpu, KVM_SET_SREGS, &s))
		die("KVM_SET_SREGS");
	if (ioctl(vcpu, KVM_SET_REGS, &r))
		die("KVM_SET_REGS");
}

static void enter_real_mode(int vcpu)
{
	struct kvm_sregs s;
	struct kvm_regs r = { .rip = 0, .rflags = 0x2 };

	if (ioctl(vcpu, KVM_GET_SREGS, &s))
		die("KVM_GET_SREGS");
	s.cs.selector = REAL_IMAGE_GPA >> 4;
	s.cs.base = REAL_IMAGE_GPA;
	if (ioctl(vcpu, KVM_SET_SREGS, &s))
		die("KVM_SET_SREGS");
	if (ioctl(vcpu, KVM_SET_REGS, &r))
		die("KVM_SET_REGS");
}

/* KVM_RUN until a write to the exit port; returns the value written. */
static int run(int vcpu, struct kvm_run *kr)
{
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) && errno != EINTR)
			die("KVM_RUN");
		if (kr->exit_reason == KVM_EXIT_IO &&
		    kr->io.direction == KVM_EXIT_IO_OUT &&
		    kr->io.port == EXIT_PORT)
			return *((unsigned char *)kr + kr->io.data_offset);
		if (kr->exit_reason != KVM_EXIT_IO &&
		    kr->exit_reason != KVM_EXIT_INTR) {
			fprintf(stderr,
				"bench-vmstart-floor: unexpected exit %u\n",
				kr->exit_reason);
			exit(1);
		}
	}
}

int main(int argc, char **argv)
{
	static unsigned char image[MAX_IMAGE];
	struct kvm_userspace_memory_region slot = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = RAM_SIZE,
	};
	bool real = argc == 3 && !strcmp(argv[1], "--real-mode");
	int kvm, vm, vcpu, run_size;
	unsigned char *ram;
	struct kvm_run *kr;
	size_t len;

	if (argc != 2 && !real) {
		fprintf(stderr, "usage: %s [--real-mode] IMAGE\n", argv[0]);
		return 2;
	}
	len = read_image(argv[argc - 1], image);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap");
	slot.userspace_addr = (uintptr_t)ram;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot))
		die("KVM_SET_USER_MEMORY_REGION");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	kr = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		  vcpu, 0);
	if (kr == MAP_FAILED)
		die("mmap kvm_run");
	set_cpuid(kvm, vcpu);
	memcpy(ram + (real ? REAL_IMAGE_GPA : IMAGE_GPA), image, len);
	if (real)
		enter_real_mode(vcpu);
	else
		enter_long_mode(vcpu, ram);
	return run(vcpu, kr);
}
