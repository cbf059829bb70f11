// SPDX-License-Identifier: MIT
/*
 * Built-in machines.  `pc` and `q35` reproduce what QEMU 7.2 shows for
 * `qemu-system-x86_64 -M pc|q35 -m SIZE -nodefaults -accel kvm` before any
 * firmware runs (checked by tests/interop/qemu_oracle.py); `micro` is the
 * smallest useful machine.  Each preset is built as a machine file
 * (docs/machine-format.md) and loaded through the same loader as files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "machine_json.h"

#define KiB 1024ull
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

/* The memory split of a PC below and above 4 GiB. */
struct pc_layout {
	bool q35;
	uint64_t ram_size;
	uint64_t below_4g;
	uint64_t above_4g;
};

static json_t *hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_string(buf);
}

/* Append a region object; @parent NULL leaves it unmapped. */
static json_t *region(json_t *regions, const char *id, const char *type,
		      uint64_t size, const char *parent, uint64_t addr,
		      int prio)
{
	json_t *r = json_object();

	json_object_set_new(r, "id", json_string(id));
	json_object_set_new(r, "type", json_string(type));
	json_object_set_new(r, "size", hex(size));
	if (parent) {
		json_object_set_new(r, "parent", json_string(parent));
		json_object_set_new(r, "addr", hex(addr));
		if (prio)
			json_object_set_new(r, "priority", json_integer(prio));
	}
	json_array_append_new(regions, r);
	return r;
}

static json_t *named(json_t *r, const char *name)
{
	json_object_set_new(r, "name", json_string(name));
	return r;
}

static json_t *alias(json_t *regions, const char *id, const char *target,
		     uint64_t offset, uint64_t size, const char *parent,
		     uint64_t addr, int prio)
{
	json_t *r = region(regions, id, "alias", size, parent, addr, prio);

	json_object_set_new(r, "target", json_string(target));
	json_object_set_new(r, "offset", hex(offset));
	return r;
}

static void disable(json_t *r)
{
	json_object_set_new(r, "enabled", json_false());
}

/* A device register block in the I/O space. */
static void io_dev(json_t *regions, const char *name, uint64_t port,
		   uint64_t size, const char *parent, int prio)
{
	char id[96];

	snprintf(id, sizeof(id), "%s@%s:%" PRIx64, name, parent, port);
	json_object_set_new(
		named(region(regions, id, "io", size, parent, port, prio),
		      name),
		"ops", json_string("zero"));
}

/* An unmapped fw_cfg ROM blob: only `info ramblock` shows it. */
static void rom_blob(json_t *regions, const char *name, uint64_t used,
		     uint64_t max)
{
	json_t *r = region(regions, name, "rom", used, NULL, 0, 0);

	if (max != used)
		json_object_set_new(r, "max_size", hex(max));
}

static void pc_split(struct pc_layout *l)
{
	uint64_t lowmem;

	if (l->q35) /* pc_q35_init(): leave room for the MMCONFIG window */
		lowmem = l->ram_size >= 0xb0000000 ? 0x80000000 : 0xb0000000;
	else /* pc_init1(): gigabyte-aligned split past 3.5 GiB */
		lowmem = l->ram_size >= 0xe0000000 ? 0xc0000000 : 0xe0000000;
	l->below_4g = l->ram_size >= lowmem ? lowmem : l->ram_size;
	l->above_4g = l->ram_size - l->below_4g;
}

/* PAM: 13 segments, four aliases each, only pam-pci (@pci) enabled. */
static void pc_pam(json_t *regions)
{
	unsigned i, j;

	for (i = 0; i < 13; i++) {
		uint64_t start = i ? 0xc0000 + (i - 1) * 0x4000 : 0xf0000;
		uint64_t size = i ? 0x4000 : 0x10000;
		static const struct {
			const char *name, *target;
			bool readonly;
		} a[4] = {
			{ "pam-pci", "pci", false },
			{ "pam-rom", "pc.ram", true },
			{ "pam-pci", "pc.ram", false },
			{ "pam-ram", "pc.ram", false },
		};

		for (j = 0; j < 4; j++) {
			char id[64];
			json_t *r;

			snprintf(id, sizeof(id), "pam%u-%s@%s", i, a[j].name,
				 a[j].target);
			r = named(alias(regions, id, a[j].target, start, size,
					"system", start, 1),
				  a[j].name);
			if (a[j].readonly)
				json_object_set_new(r, "readonly", json_true());
			if (j)
				disable(r);
		}
	}
}

static void pc_memory(json_t *regions, const struct pc_layout *l)
{
	json_t *r;

	region(regions, "system", "container", UINT64_MAX, NULL, 0, 0);
	region(regions, "pc.ram", "ram", l->ram_size, NULL, 0, 0);
	region(regions, "pc.bios", "rom", 256 * KiB, "pci", 0xfffc0000, 0);
	region(regions, "pc.rom", "rom", 128 * KiB, "pci", 0xc0000, 1);
	rom_blob(regions, "/rom@etc/acpi/tables", 128 * KiB, 2 * MiB);
	rom_blob(regions, "/rom@etc/table-loader", 4 * KiB, 64 * KiB);
	rom_blob(regions, "/rom@etc/acpi/rsdp", 4 * KiB, 4 * KiB);
	r = alias(regions, "isa-bios", "pc.bios", 128 * KiB, 128 * KiB, "pci",
		  0xe0000, 1);
	json_object_set_new(r, "readonly", json_true());

	alias(regions, "ram-below-4g", "pc.ram", 0, l->below_4g, "system", 0,
	      0);
	if (l->above_4g)
		alias(regions, "ram-above-4g", "pc.ram", l->below_4g,
		      l->above_4g, "system", 4 * GiB, 0);
	region(regions, "pci", "container", UINT64_MAX, "system", 0, -1);
	if (l->q35) {
		disable(region(regions, "smbase-blackhole", "io", 0x20000,
			       "system", 0x30000, 1));
	}
	alias(regions, "smram-region", "pci", 0xa0000, 0x20000, "system",
	      0xa0000, 1);
	pc_pam(regions);
	if (l->q35) {
		disable(region(regions, "tseg-blackhole", "io", 0, "system",
			       l->below_4g, 1));
		disable(alias(regions, "smram-open-high", "pc.ram", 0xa0000,
			      0x20000, "system", 0xfeda0000, 1));
	}
	region(regions, "kvm-ioapic", "io", 0x1000, "system", 0xfec00000, 0);
	region(regions, "hpet", "io", 0x400, "system", 0xfed00000, 0);
	region(regions, "kvm-apic-msi", "io", 0x100000, "system", 0xfee00000,
	       4096);
}

/* Ports common to both chipsets, then the chipset's own. */
static void pc_io(json_t *regions, const struct pc_layout *l)
{
	static const struct {
		const char *name;
		uint16_t port, size;
	} isa[] = {
		{ "dma-chan", 0x0, 8 },	      { "dma-cont", 0x8, 8 },
		{ "kvm-pic", 0x20, 2 },	      { "kvm-pit", 0x40, 4 },
		{ "i8042-data", 0x60, 1 },    { "pcspk", 0x61, 1 },
		{ "i8042-cmd", 0x64, 1 },     { "ioport80", 0x80, 1 },
		{ "dma-page", 0x81, 3 },      { "dma-page", 0x87, 1 },
		{ "dma-page", 0x89, 3 },      { "dma-page", 0x8f, 1 },
		{ "port92", 0x92, 1 },	      { "kvm-pic", 0xa0, 2 },
		{ "apm-io", 0xb2, 2 },	      { "dma-chan", 0xc0, 16 },
		{ "dma-cont", 0xd0, 16 },     { "ioportF0", 0xf0, 1 },
		{ "kvm-elcr", 0x4d0, 1 },     { "kvm-elcr", 0x4d1, 1 },
		{ "fwcfg", 0x510, 2 },	      { "fwcfg.dma", 0x514, 8 },
		{ "pci-conf-idx", 0xcf8, 4 }, { "pci-conf-data", 0xcfc, 4 },
		{ "vmport", 0x5658, 1 },
	};
	static const struct {
		const char *name;
		uint16_t port, size;
	} piix[] = {
		{ "ide", 0x170, 8 },	{ "ide", 0x1f0, 8 },
		{ "ide", 0x376, 1 },	{ "fdc", 0x3f1, 5 },
		{ "ide", 0x3f6, 1 },	{ "fdc", 0x3f7, 1 },
		{ "acpi-pci-hotplug", 0xae00, 0x18 },
		{ "acpi-cpu-hotplug", 0xaf00, 0x20 },
		{ "acpi-gpe0", 0xafe0, 4 }, { "pm-smbus", 0xb100, 0x40 },
	}, ich9[] = {
		{ "acpi-pci-hotplug", 0xcc0, 0x18 },
		{ "acpi-cpu-hotplug", 0xcd8, 0x20 },
	};
	bool q35 = l->q35;
	const char *pm = q35 ? "ich9-pm" : "piix4-pm";
	json_t *r;
	size_t i;

	r = region(regions, "io", "io", 64 * KiB, NULL, 0, 0);
	json_object_set_new(r, "ops", json_string("unassigned-io"));
	for (i = 0; i < sizeof(isa) / sizeof(isa[0]); i++)
		io_dev(regions, isa[i].name, isa[i].port, isa[i].size, "io", 0);
	/* apic_common_realize(): "we need at least 1M to map the VAPIC
	 * option ROM" */
	if (l->ram_size >= MiB)
		io_dev(regions, "kvmvapic", 0x7e, 2, "io", 0);
	io_dev(regions, "rtc", 0x70, 2, "io", 0);
	io_dev(regions, "rtc-index", 0, 1, "rtc@io:70", 0);
	io_dev(regions, q35 ? "lpc-reset-control" : "piix3-reset-control",
	       0xcf9, 1, "io", 1);
	if (q35) {
		for (i = 0; i < sizeof(ich9) / sizeof(ich9[0]); i++)
			io_dev(regions, ich9[i].name, ich9[i].port,
			       ich9[i].size, "io", 0);
	} else {
		for (i = 0; i < sizeof(piix) / sizeof(piix[0]); i++)
			io_dev(regions, piix[i].name, piix[i].port,
			       piix[i].size, "io", 0);
	}
	disable(region(regions, pm, "container", q35 ? 0x80 : 0x40, "io", 0,
		       0));
	io_dev(regions, "acpi-evt", 0, 4, pm, 0);
	io_dev(regions, "acpi-cnt", 4, 2, pm, 0);
	io_dev(regions, "acpi-tmr", 8, 4, pm, 0);
	if (q35) {
		io_dev(regions, "acpi-gpe0", 0x20, 0x10, pm, 0);
		io_dev(regions, "acpi-smi", 0x30, 8, pm, 0);
		io_dev(regions, "sm-tco", 0x60, 0x20, pm, 0);
	}
}

static void address_space(json_t *spaces, const char *name, const char *root)
{
	json_array_append_new(spaces, json_pack("{s:s, s:s}", "name", name,
						"root", root));
}

/* A PCI device's DMA view: bus master container > disabled alias. */
static void bus_master(json_t *regions, json_t *spaces, const char *dev)
{
	char c[64], a[64];

	snprintf(c, sizeof(c), "%s.bus-master-container", dev);
	snprintf(a, sizeof(a), "%s.bus-master", dev);
	named(region(regions, c, "container", UINT64_MAX, NULL, 0, 0),
	      "bus master container");
	disable(named(alias(regions, a, "system", 0, UINT64_MAX, c, 0, 0),
		      "bus master"));
	address_space(spaces, dev, c);
}

static json_t *preset_pc(uint64_t ram_size, bool q35)
{
	static const char *const pc_devs[] = { "i440FX", "PIIX3", "piix3-ide",
					       "PIIX4_PM" };
	static const char *const q35_devs[] = { "mch", "ICH9-LPC", "ich9-ahci",
						"ICH9-SMB" };
	struct pc_layout l = { .q35 = q35, .ram_size = ram_size };
	json_t *doc, *regions = json_array(), *spaces = json_array();
	unsigned i;

	pc_split(&l);
	pc_memory(regions, &l);
	pc_io(regions, &l);
	address_space(spaces, "memory", "system");
	address_space(spaces, "I/O", "io");
	address_space(spaces, "cpu-memory-0", "system");
	for (i = 0; i < 4; i++)
		bus_master(regions, spaces, q35 ? q35_devs[i] : pc_devs[i]);
	doc = json_pack("{s:i, s:s, s:o, s:o}", "memvirt-machine", 1, "name",
			q35 ? "q35" : "pc", "regions", regions,
			"address_spaces", spaces);
	return doc;
}

/*
 * micro: RAM at 0 (up to 3 GiB, the rest above 4 GiB), a 64 KiB boot ROM
 * below 4 GiB, one MMIO device, and a port-I/O space.
 */
static json_t *preset_micro(uint64_t ram_size)
{
	json_t *regions = json_array(), *spaces = json_array(), *r;
	uint64_t below = ram_size < 3 * GiB ? ram_size : 3 * GiB;

	region(regions, "system", "container", UINT64_MAX, NULL, 0, 0);
	region(regions, "ram", "ram", ram_size, NULL, 0, 0);
	alias(regions, "ram-below-4g", "ram", 0, below, "system", 0, 0);
	if (ram_size > below)
		alias(regions, "ram-above-4g", "ram", below, ram_size - below,
		      "system", 4 * GiB, 0);
	region(regions, "rom", "rom", 64 * KiB, "system", 4 * GiB - 64 * KiB,
	       0);
	r = region(regions, "mmio", "io", 4 * KiB, "system", 0xfe000000, 0);
	json_object_set_new(r, "ops", json_string("zero"));
	r = region(regions, "io", "io", 64 * KiB, NULL, 0, 0);
	json_object_set_new(r, "ops", json_string("unassigned-io"));
	io_dev(regions, "console", 0x3f8, 8, "io", 0);
	address_space(spaces, "memory", "system");
	address_space(spaces, "I/O", "io");
	return json_pack("{s:i, s:s, s:o, s:o}", "memvirt-machine", 1, "name",
			 "micro", "regions", regions, "address_spaces", spaces);
}

static const char *const preset_names[] = { "pc", "q35", "micro", NULL };

const char *const *mv_machine_preset_names(void)
{
	return preset_names;
}

static int preset_doc(const char *name, uint64_t ram_size, json_t **doc,
		      struct mv_error *err)
{
	/* vl.c: the RAM size is rounded up to 8 KiB. */
	if (!ram_size || ram_size > UINT64_MAX - 8191 ||
	    ((ram_size + 8191) & ~8191ull) >= (1ull << 52)) {
		snprintf(err->msg, sizeof(err->msg),
			 "preset %s: RAM size %" PRIu64 " out of range", name,
			 ram_size);
		return -EINVAL;
	}
	ram_size = (ram_size + 8191) & ~8191ull;
	if (!strcmp(name, "pc") || !strcmp(name, "q35"))
		*doc = preset_pc(ram_size, !strcmp(name, "q35"));
	else if (!strcmp(name, "micro"))
		*doc = preset_micro(ram_size);
	else {
		snprintf(err->msg, sizeof(err->msg),
			 "unknown machine \"%s\" (built-in: pc, q35, micro)",
			 name);
		return -ENOENT;
	}
	return *doc ? 0 : -ENOMEM;
}

int mv_machine_preset(const char *name, uint64_t ram_size,
		      struct mv_machine **out, struct mv_error *err)
{
	char origin[64];
	json_t *doc;
	int ret = preset_doc(name, ram_size, &doc, err);

	if (ret)
		return ret;
	snprintf(origin, sizeof(origin), "preset %s", name);
	ret = mv_machine_load_json(doc, origin, out, err);
	json_decref(doc);
	return ret;
}

int mv_machine_preset_json(const char *name, uint64_t ram_size, char **out,
			   struct mv_error *err)
{
	json_t *doc;
	int ret = preset_doc(name, ram_size, &doc, err);

	if (ret)
		return ret;
	*out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return *out ? 0 : -ENOMEM;
}
