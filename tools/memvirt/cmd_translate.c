// SPDX-License-Identifier: MIT
/*
 * memvirt translate GVA...: run a guest until it halts, then follow each
 * GVA to a GPA (the guest's page tables), an HVA (the KVM memslot) and an
 * HPA (/proc/self/pagemap), cross-checking with KVM_TRANSLATE and the
 * memory core.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <memvirt/vmm.h>

#include "abi.h"
#include "cli.h"
#include "guests.h"

static void usage(FILE *f)
{
	fputs("usage: memvirt translate [--machine NAME|FILE] [-m SIZE] "
	      "[--guest FILE] [--pages-4k] GVA...\n\n"
	      "Run a guest (default: the built-in dirty-page writer, 2048 "
	      "stores) until it\nhalts at CPL0 (after its exit-port write), "
	      "then translate each GVA:\nGVA -> GPA by walking the guest's "
	      "page tables, checked with KVM_TRANSLATE;\nGPA -> HVA through "
	      "the KVM memslot, checked with the memory core;\nHVA -> HPA "
	      "from /proc/self/pagemap when the kernel shows it.\n\n" MACHINE_OPTS_HELP
	      "  -g, --guest FILE         ELF64 or raw guest to run instead\n"
	      "      --pages-4k           map the guest with 4 KiB pages\n",
	      f);
}

static const char *const level_name[4] = { "PML4E", "PDPTE", "PDE", "PTE" };

static void print_walk(const struct mv_vm_translation *t)
{
	unsigned i;

	printf("  guest page walk, cr3 0x%" PRIx64 ":\n", t->cr3);
	for (i = 0; i < 4 && t->table_gpa[i]; i++)
		printf("    %-5s at gpa 0x%09" PRIx64 " = 0x%016" PRIx64 "\n",
		       level_name[i], t->table_gpa[i], t->entry[i]);
	if (!t->mapped) {
		printf("    not mapped: %s\n", t->walk_why);
		return;
	}
	printf("  GVA -> GPA  0x%016" PRIx64 "  (%" PRIu64
	       " KiB page, %s%s%s)\n",
	       t->gpa, t->page_size >> 10, t->writable ? "rw" : "ro",
	       t->user ? ", user" : ", supervisor", t->nx ? ", nx" : "");
}

static int print_kvm(const struct mv_vm_translation *t)
{
	bool agree = t->kvm_valid == t->mapped &&
		     (!t->mapped || t->kvm_gpa == t->gpa);

	if (t->kvm_ret)
		printf("  KVM_TRANSLATE failed: %s\n", strerror(-t->kvm_ret));
	else if (!t->kvm_valid)
		printf("  KVM_TRANSLATE: not mapped  [%s]\n",
		       agree ? "agrees" : "DISAGREES");
	else
		printf("  KVM_TRANSLATE: gpa 0x%016" PRIx64 "%s%s  [%s]\n",
		       t->kvm_gpa, t->kvm_writeable ? ", writeable" : "",
		       t->kvm_user ? ", usermode" : "",
		       agree ? "agrees" : "DISAGREES");
	return agree ? 0 : -1;
}

static int print_translation(const struct mv_vm_translation *t)
{
	int bad;

	printf("gva 0x%016" PRIx64 "\n", t->gva);
	print_walk(t);
	bad = print_kvm(t);
	if (!t->mapped)
		return bad;
	if (!t->has_slot) {
		printf("  GPA -> HVA  none: %s\n", t->hva_why);
		return bad;
	}
	printf("  GPA -> HVA  %p  (KVM slot %u, %s)  [memory core %s]\n",
	       t->hva, t->slot, mv_region_name(t->slot_mr),
	       t->core_agrees ? "agrees" : "DISAGREES");
	if (t->has_hpa)
		printf("  HVA -> HPA  0x%" PRIx64 "\n", t->hpa);
	else
		printf("  HVA -> HPA  unknown: %s\n", t->hpa_why);
	return bad || !t->core_agrees ? -1 : 0;
}

/* Boot @guest (or the default) and run it until it halts. */
static int run_to_halt(struct mv_vm *vm, const char *guest)
{
	struct mv_guest_info info = { 0 };
	struct mv_error err = { { 0 } };
	struct mv_vm_result res;
	void *image = NULL;
	size_t len = mv_guest_dirtywriter_len;
	int ret;

	if (guest) {
		ret = mv_vm_read_image(guest, &image, &len, &err);
		if (ret)
			goto out;
	}
	ret = mv_vm_load(vm, image ? image : mv_guest_dirtywriter, len,
			 MV_GUEST_IMAGE_AUTO, &err);
	free(image);
	if (ret)
		goto out;
	mv_vm_scratch(vm, &info.work_gpa, &info.work_size);
	info.iteration_gpa = info.work_gpa;
	info.work_gpa += 2 << 20;
	info.work_size = 1 << 20;
	info.seed = 1;
	info.arg[0] = 2048;
	ret = mv_vm_boot(vm, &info, &err);
	if (ret)
		goto out;
	ret = mv_vm_run(vm, &res);
	if (!ret && res.end != MV_VM_END_HLT) {
		cli_error("translate: the guest did not halt: %s", res.msg);
		return -EINVAL;
	}
out:
	if (ret)
		cli_error("translate: %s",
			  err.msg[0] ? err.msg : strerror(-ret));
	return ret;
}

int cmd_translate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "machine", required_argument, NULL, 'M' },
		{ "memory", required_argument, NULL, 'm' },
		{ "guest", required_argument, NULL, 'g' },
		{ "pages-4k", no_argument, NULL, '4' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct machine_opts mo = { .machine = "pc" };
	struct mv_vm_opts vo = { .exit_port_continues = true };
	const char *guest = NULL;
	struct mv_machine *m;
	struct mv_vm *vm;
	int opt, ret, i, bad = 0;

	while ((opt = getopt_long(argc, argv, "M:m:g:h", longopts, NULL)) !=
	       -1) {
		ret = machine_opts_parse(&mo, opt, optarg);
		if (ret < 0)
			return CLI_EXIT_USAGE;
		if (ret)
			continue;
		if (opt == 'g') {
			guest = optarg;
		} else if (opt == '4') {
			vo.pages_4k = true;
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (i = optind; i < argc; i++) {
		char *end;

		errno = 0;
		strtoull(argv[i], &end, 0);
		if (errno || *end || end == argv[i]) {
			cli_error("translate: '%s' is not an address", argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	m = machine_opts_load(&mo, true);
	if (!m)
		return CLI_EXIT_FAIL;
	ret = mv_vm_new(m, &vo, &vm);
	if (ret) {
		cli_error("translate: cannot create the VM: %s",
			  strerror(-ret));
		mv_machine_free(m);
		return CLI_EXIT_FAIL;
	}
	ret = run_to_halt(vm, guest);
	for (i = optind; !ret && i < argc; i++) {
		struct mv_vm_translation t;

		ret = mv_vm_translate(vm, 0, strtoull(argv[i], NULL, 0), &t);
		if (ret)
			cli_error("translate: %s", strerror(-ret));
		else
			bad |= print_translation(&t);
	}
	mv_vm_free(vm);
	mv_machine_free(m);
	return ret || bad ? CLI_EXIT_FAIL : 0;
}
