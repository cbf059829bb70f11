// SPDX-License-Identifier: MIT
/*
 * GVA -> GPA -> HVA -> HPA for a stopped vCPU, each step from its own
 * source and cross-checked: the guest's page tables walked in software
 * against KVM_TRANSLATE, the KVM memslot's HVA against the memory core's
 * GPA->HVA, and the HPA from /proc/self/pagemap when the kernel shows
 * page frame numbers (CAP_SYS_ADMIN) and the page is resident.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include <memvirt/vmm.h>

#include "boot.h"

#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_SWAPPED (1ull << 62)
#define PAGEMAP_PFN_MASK ((1ull << 55) - 1)

/* HVA -> HPA through /proc/self/pagemap, or why not. */
static void hva_to_hpa(struct mv_vm_translation *t)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t hva = (uintptr_t)t->hva, e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		snprintf(t->hpa_why, sizeof(t->hpa_why),
			 "/proc/self/pagemap: %s", strerror(errno));
		return;
	}
	n = pread(fd, &e, sizeof(e), (off_t)(hva / (uint64_t)page * 8));
	close(fd);
	if (n != sizeof(e))
		snprintf(t->hpa_why, sizeof(t->hpa_why),
			 "/proc/self/pagemap: short read");
	else if (e & PAGEMAP_SWAPPED)
		snprintf(t->hpa_why, sizeof(t->hpa_why),
			 "the page is swapped out");
	else if (!(e & PAGEMAP_PRESENT))
		snprintf(t->hpa_why, sizeof(t->hpa_why),
			 "the host page is not resident (never touched)");
	else if (!(e & PAGEMAP_PFN_MASK))
		snprintf(t->hpa_why, sizeof(t->hpa_why),
			 "the kernel hides page frame numbers "
			 "(needs CAP_SYS_ADMIN)");
	else {
		t->hpa = (e & PAGEMAP_PFN_MASK) * (uint64_t)page +
			 hva % (uint64_t)page;
		t->has_hpa = true;
	}
}

static void gpa_to_hva(struct mv_vm *vm, struct mv_vm_translation *t)
{
	struct mv_kvm_slot_info si;
	void *core_hva = NULL;
	uint64_t len;

	if (mv_kvm_slot_lookup(mv_vm_kvm(vm), 0, t->gpa, &si)) {
		snprintf(t->hva_why, sizeof(t->hva_why),
			 "no KVM memslot holds this GPA (MMIO, ROM device "
			 "outside romd mode, or a hole)");
		return;
	}
	t->has_slot = true;
	t->slot = si.id;
	t->slot_mr = si.mr;
	t->hva = (uint8_t *)si.hva + (t->gpa - si.gpa);
	t->core_agrees =
		!mv_as_gpa_to_hva(mv_vm_memory(vm), t->gpa, &core_hva, &len) &&
		core_hva == t->hva;
	hva_to_hpa(t);
}

int mv_vm_translate(struct mv_vm *vm, unsigned vcpu, mv_gva_t gva,
		    struct mv_vm_translation *t)
{
	struct mv_vcpu *v = mv_vm_vcpu(vm, vcpu);
	struct kvm_translation kt;
	struct kvm_sregs s;
	struct mv_x86_walk w;
	int ret;

	memset(t, 0, sizeof(*t));
	t->gva = gva;
	if (!v)
		return -EINVAL;
	ret = mv_vcpu_get_sregs(v, &s);
	if (ret)
		return ret;
	t->cr3 = s.cr3;
	t->kvm_ret = mv_vcpu_translate(v, gva, &kt);
	t->kvm_valid = !t->kvm_ret && kt.valid;
	t->kvm_gpa = kt.physical_address;
	t->kvm_writeable = kt.writeable;
	t->kvm_user = kt.usermode;
	ret = mv_x86_walk(mv_vm_memory(vm), s.cr3, gva, &w, t->walk_why,
			  sizeof(t->walk_why));
	memcpy(t->table_gpa, w.table_gpa, sizeof(t->table_gpa));
	memcpy(t->entry, w.entry, sizeof(t->entry));
	if (ret)
		return 0; /* not mapped: the walk says why */
	t->mapped = true;
	t->gpa = w.gpa;
	t->page_size = w.page_size;
	t->writable = w.writable;
	t->user = w.user;
	t->nx = w.nx;
	gpa_to_hva(vm, t);
	return 0;
}
