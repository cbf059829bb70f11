// SPDX-License-Identifier: MIT
/*
 * Registering a machine with a real VM for the commands that show what
 * KVM sees (slots, mtree --kvm): the "memory" address space becomes KVM
 * address space 0, as QEMU's kvm_memory_listener_register().
 */
#include <errno.h>
#include <string.h>

#include <memvirt/kvm.h>

#include "cli.h"

int cli_kvm_attach(struct mv_machine *m, const struct mv_kvm_opts *o,
		   struct mv_kvm **out)
{
	struct mv_as *mem = mv_machine_find_as(m, "memory");
	struct mv_kvm *k;
	int ret;

	if (!mem) {
		cli_error("the machine has no \"memory\" address space");
		return -ENOENT;
	}
	ret = mv_kvm_new(o, &k);
	if (ret) {
		cli_error("cannot create a KVM VM: %s%s", strerror(-ret),
			  ret == -ENOENT || ret == -EACCES ?
				  " (is /dev/kvm present and accessible?)" :
				  "");
		return ret;
	}
	ret = mv_kvm_attach(k, mem, 0);
	if (ret) {
		cli_error("registering the memory slots failed: %s",
			  strerror(-ret));
		mv_kvm_free(k);
		return ret;
	}
	*out = k;
	return 0;
}

static bool has_memory(void *opaque, const struct mv_as *as, uint64_t start,
		       uint64_t size)
{
	return mv_kvm_has_memory(opaque, as, start, size);
}

void cli_kvm_mtree_accel(struct mv_kvm *k, struct mv_mtree_accel *ac)
{
	*ac = (struct mv_mtree_accel){
		.name = "KVM",
		.has_memory = has_memory,
		.opaque = k,
	};
}
