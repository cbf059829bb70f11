// SPDX-License-Identifier: MIT
/*
 * The dirty ring (KVM_CAP_DIRTY_LOG_RING, reference kvm-memslots.md
 * §2.3): one ring of struct kvm_dirty_gfn per vCPU, mapped from the vCPU
 * fd.  The harvester reads entries in order with acquire, marks them
 * RESET with release, then KVM_RESET_DIRTY_RINGS re-protects the pages.
 * Entries are collected per slot into the slot's bitmap and handed to the
 * memory core once per harvest.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

int mv_kvm_ring_enable(struct mv_kvm *k)
{
	long max = mv_kvm_check_extension(k, KVM_CAP_DIRTY_LOG_RING);
	uint64_t bytes =
		(uint64_t)k->ring_entries * sizeof(struct kvm_dirty_gfn);
	struct kvm_enable_cap ec = { .cap = KVM_CAP_DIRTY_LOG_RING };
	long ret;

	if (max <= 0)
		return -ENOTSUP;
	if (k->ring_entries & (k->ring_entries - 1) || bytes > (uint64_t)max)
		return -EINVAL;
	ec.args[0] = bytes;
	ret = mv_kvm_ioctl(k->sys, k->vm_fd, KVM_ENABLE_CAP, &ec);
	return ret < 0 ? (int)ret : 0;
}

int mv_kvm_vcpu_ring_map(struct mv_vcpu *v)
{
	struct mv_kvm *k = v->k;
	size_t len = (size_t)k->ring_entries * sizeof(struct kvm_dirty_gfn);
	void *p;
	int ret;

	ret = mv_kvm_mmap(k->sys, v->fd, len, PROT_READ | PROT_WRITE,
			  (off_t)(KVM_DIRTY_LOG_PAGE_OFFSET * k->page_size),
			  &p);
	if (ret)
		return ret;
	v->ring = p;
	return 0;
}

static struct mv_kvm_slot *ring_slot(struct mv_kvm *k, uint32_t slot)
{
	unsigned as_id = slot >> 16, id = slot & 0xffff;
	struct mv_kvm_space *sp = as_id < MV_KVM_MAX_AS ? k->space[as_id] :
							  NULL;

	if (!sp || id >= k->nr_slots)
		return NULL;
	return sp->by_id[id];
}

/* Collect one vCPU's harvestable entries; returns how many. */
static unsigned long reap_vcpu(struct mv_kvm *k, struct mv_vcpu *v)
{
	unsigned long n = 0;

	for (;;) {
		struct kvm_dirty_gfn *e =
			&v->ring[v->ring_next & (k->ring_entries - 1)];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		struct mv_kvm_slot *s;

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		s = ring_slot(k, e->slot);
		if (s && s->bitmap && e->offset < mv_kvm_slot_npages(s)) {
			s->ring_touched = true;
			s->bitmap[e->offset / (8 * sizeof(long))] |=
				1ul << (e->offset % (8 * sizeof(long)));
		}
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET,
				 __ATOMIC_RELEASE);
		v->ring_next++;
		n++;
	}
	return n;
}

/* Hand every slot's collected bits to the memory core. */
static void flush_slots(struct mv_kvm *k)
{
	unsigned i;

	for (i = 0; i < MV_KVM_MAX_AS; i++) {
		struct mv_kvm_space *sp = k->space[i];
		struct mv_kvm_slot *s;
		size_t bytes;

		if (!sp)
			continue;
		RB_FOREACH(s, mv_kvm_slot_tree, &sp->tree)
		{
			if (!s->ring_touched)
				continue;
			s->ring_touched = false;
			bytes = (mv_kvm_slot_npages(s) + 63) / 64 * 8;
			mv_region_set_dirty_bitmap(s->mr,
						   s->offset_within_region,
						   s->bitmap,
						   mv_kvm_slot_npages(s));
			memset(s->bitmap, 0, bytes);
		}
	}
}

/* Whether the kernel has yet to reset @v's last harvested entry. */
static bool reset_pending(struct mv_kvm *k, struct mv_vcpu *v)
{
	struct kvm_dirty_gfn *e =
		&v->ring[(v->ring_next - 1) & (k->ring_entries - 1)];

	return __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) &
	       KVM_DIRTY_GFN_F_RESET;
}

static bool rings_reset_pending(struct mv_kvm *k)
{
	unsigned i;

	for (i = 0; i < MV_KVM_MAX_VCPUS; i++)
		if (k->vcpu[i] && k->vcpu[i]->ring &&
		    reset_pending(k, k->vcpu[i]))
			return true;
	return false;
}

/*
 * KVM_RESET_DIRTY_RINGS with every signal blocked.  A signal pending in
 * the calling thread (a vCPU kick lands here when the vCPU thread resets
 * after a ring-full exit) makes the kernel bail out of the reset; Linux
 * 6.18 then returns the count reset so far, and some pages among the
 * entries it did mark reset stay write-enabled, so later writes to them
 * are never logged (lost dirty pages in tests/kvm/test_dirty_log ring).
 * Blocked signals are delivered when the mask is restored.
 */
static long reset_ioctl(struct mv_kvm *k)
{
	sigset_t all, old;
	long ret;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = mv_kvm_ioctl(k->sys, k->vm_fd, KVM_RESET_DIRTY_RINGS, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/*
 * Reset until every harvested entry is reset: an entry left harvested but
 * not reset keeps its page writable (writes go unlogged), and a ring left
 * soft-full makes the vCPU exit with DIRTY_RING_FULL forever, since a
 * harvest finding nothing new would not reset again.  The kernel resets
 * in ring order, so each vCPU's last harvested entry tells.
 */
static int rings_reset(struct mv_kvm *k)
{
	unsigned tries;
	long ret;

	for (tries = 0; rings_reset_pending(k); tries++) {
		if (tries == 1000)
			return -EINTR;
		ret = reset_ioctl(k);
		if (ret < 0 && ret != -EINTR)
			return (int)ret;
	}
	return 0;
}

int mv_kvm_rings_harvest(struct mv_kvm *k)
{
	unsigned long n = 0;
	unsigned i;

	for (i = 0; i < MV_KVM_MAX_VCPUS; i++)
		if (k->vcpu[i] && k->vcpu[i]->ring)
			n += reap_vcpu(k, k->vcpu[i]);
	k->stats.dirty_fetches++;
	if (n) {
		k->stats.ring_entries += n;
		flush_slots(k);
	}
	return rings_reset(k);
}
