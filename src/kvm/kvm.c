// SPDX-License-Identifier: MIT
/*
 * The VM: open the KVM device, check the API, read the capabilities the
 * memslot listener depends on (kvm-all.c's kvm_init()), pick the dirty
 * logging mode, create the VM.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

/* KVM_MEM_MAX_NR_PAGES: a user slot has at most 2^31 - 1 pages. */
#define MV_KVM_MAX_SLOT_PAGES ((1ull << 31) - 1)

long mv_kvm_check_extension(struct mv_kvm *k, long cap)
{
	return mv_kvm_ioctl(k->sys, k->vm_fd, KVM_CHECK_EXTENSION, (void *)cap);
}

static int enable_cap(struct mv_kvm *k, uint32_t cap, uint64_t arg)
{
	struct kvm_enable_cap ec = { .cap = cap, .args = { arg } };
	long ret = mv_kvm_ioctl(k->sys, k->vm_fd, KVM_ENABLE_CAP, &ec);

	return ret < 0 ? (int)ret : 0;
}

/* kvm_init()'s dirty-log choice, with the caller's override. */
static int setup_dirty_mode(struct mv_kvm *k, const struct mv_kvm_opts *o)
{
	long manual =
		mv_kvm_check_extension(k, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	uint64_t want;

	k->dirty_mode = o->dirty_mode;
	if (k->dirty_mode == MV_KVM_DIRTY_RING) {
		k->ring_entries =
			o->dirty_ring_entries ? o->dirty_ring_entries : 4096;
		return mv_kvm_ring_enable(k);
	}
	if (k->dirty_mode == MV_KVM_DIRTY_BITMAP)
		return 0;
	if (manual <= 0) {
		if (k->dirty_mode == MV_KVM_DIRTY_MANUAL)
			return -ENOTSUP;
		k->dirty_mode = MV_KVM_DIRTY_BITMAP;
		return 0;
	}
	/* QEMU: ENABLE | INITIALLY_SET when the kernel offers both. */
	want = manual & (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
			 KVM_DIRTY_LOG_INITIALLY_SET);
	k->dirty_mode = MV_KVM_DIRTY_MANUAL;
	k->manual_initially_set = want & KVM_DIRTY_LOG_INITIALLY_SET;
	return enable_cap(k, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, want);
}

static int read_caps(struct mv_kvm *k, const struct mv_kvm_opts *o)
{
	long n = mv_kvm_check_extension(k, KVM_CAP_NR_MEMSLOTS);
	uint64_t max = MV_KVM_MAX_SLOT_PAGES * k->page_size;

	k->nr_slots = n > 0 ? (unsigned)n : 32;
	k->readonly_mem = !o->no_readonly &&
			  mv_kvm_check_extension(k, KVM_CAP_READONLY_MEM) > 0;
	if (o->max_slot_size) {
		if (o->max_slot_size % k->page_size)
			return -EINVAL;
		max = o->max_slot_size < max ? o->max_slot_size : max;
	}
	k->max_slot_size = max;
	k->run_size =
		mv_kvm_ioctl(k->sys, k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	return k->run_size < 0 ? (int)k->run_size : 0;
}

static int open_vm(struct mv_kvm *k, const struct mv_kvm_opts *o)
{
	long ret;

	ret = mv_kvm_open_dev(k->sys, o->dev ? o->dev : "/dev/kvm");
	if (ret < 0)
		return (int)ret;
	k->kvm_fd = (int)ret;
	ret = mv_kvm_ioctl(k->sys, k->kvm_fd, KVM_GET_API_VERSION, NULL);
	if (ret < 0)
		return (int)ret;
	if (ret != KVM_API_VERSION)
		return -EPROTO;
	ret = mv_kvm_ioctl(k->sys, k->kvm_fd, KVM_CREATE_VM, NULL);
	if (ret < 0)
		return (int)ret;
	k->vm_fd = (int)ret;
	return 0;
}

int mv_kvm_new(const struct mv_kvm_opts *opts, struct mv_kvm **out)
{
	static const struct mv_kvm_opts defaults;
	const struct mv_kvm_opts *o = opts ? opts : &defaults;
	struct mv_kvm *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	k->kvm_fd = k->vm_fd = -1;
	if (o->sys) {
		k->sys = o->sys;
	} else {
		mv_kvm_sys_init_host(&k->own_sys);
		k->sys = &k->own_sys;
	}
	k->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	ret = pthread_mutex_init(&k->lock, NULL);
	if (ret) {
		free(k);
		return -ret;
	}
	ret = open_vm(k, o);
	if (!ret)
		ret = read_caps(k, o);
	if (!ret)
		ret = setup_dirty_mode(k, o);
	if (ret) {
		mv_kvm_free(k);
		return ret;
	}
	*out = k;
	return 0;
}

void mv_kvm_free(struct mv_kvm *k)
{
	unsigned i;

	if (!k)
		return;
	/* Closing the VM fd drops every slot and ring: no ioctl per slot.
	 * Address spaces go first, while their listeners can still run. */
	k->closing = true;
	for (i = 0; i < MV_KVM_MAX_AS; i++)
		if (k->space[i])
			mv_kvm_detach(k, k->space[i]->as);
	for (i = 0; i < MV_KVM_MAX_VCPUS; i++)
		mv_vcpu_free(k->vcpu[i]);
	if (k->vm_fd >= 0)
		mv_kvm_close_fd(k->sys, k->vm_fd);
	if (k->kvm_fd >= 0)
		mv_kvm_close_fd(k->sys, k->kvm_fd);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int mv_kvm_vm_fd(const struct mv_kvm *k)
{
	return k->vm_fd;
}

struct mv_kvm_sys *mv_kvm_sys(const struct mv_kvm *k)
{
	return k->sys;
}

enum mv_kvm_dirty_mode mv_kvm_dirty_mode(const struct mv_kvm *k)
{
	return k->dirty_mode;
}

unsigned mv_kvm_nr_slots(const struct mv_kvm *k)
{
	return k->nr_slots;
}

void mv_kvm_set_io_as(struct mv_kvm *k, struct mv_as *io)
{
	k->io = io;
}

void mv_kvm_get_stats(struct mv_kvm *k, struct mv_kvm_stats *st)
{
	pthread_mutex_lock(&k->lock);
	*st = k->stats;
	pthread_mutex_unlock(&k->lock);
}
