// SPDX-License-Identifier: MIT
/*
 * RAM blocks (reference §3.10): where QEMU's find_ram_offset() puts them and
 * the order `info ramblock` lists them in, checked against the text QEMU 7.2
 * prints for pc; each host-memory backend; GPA->HVA and HVA->GPAs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memvirt/memory.h>

#include "helpers.h"

#define PAGE 0x1000ull

static struct mv_machine *machine(void)
{
	struct mv_machine *m = NULL;

	assert_int_equal(mv_machine_new(&m), 0);
	return m;
}

/* QEMU's texts below assume 4 KiB host pages. */
static int need_4k_pages(void **state)
{
	(void)state;
	if (sysconf(_SC_PAGESIZE) != 4096)
		skip();
	return 0;
}

static char *ramblock_text(const struct mv_machine *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(mv_ramblock_print(m, f), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void expect_ramblock_text(const struct mv_machine *m, const char *want)
{
	char *text = ramblock_text(m);

	if (strcmp(text, want)) {
		print_error("info ramblock:\n%s\nexpected:\n%s\n", text, want);
		free(text);
		fail();
	}
	free(text);
}

/* ---- placement and order: QEMU's pc ------------------------------------- */

struct pc_block {
	const char *name;
	uint64_t used, max;
	bool rom;
};

/* pc's blocks in QEMU's creation order (-nodefaults: no VGA RAM). */
static const struct pc_block pc_blocks[] = {
	{ "pc.ram", 0, 0, false },
	{ "pc.bios", 0x40000, 0, true },
	{ "pc.rom", 0x20000, 0, true },
	{ "/rom@etc/acpi/tables", 0x20000, 0x200000, true },
	{ "/rom@etc/table-loader", 0x1000, 0x10000, true },
	{ "/rom@etc/acpi/rsdp", 0x1000, 0, true },
};
#define NR_PC (sizeof(pc_blocks) / sizeof(pc_blocks[0]))

static void make_pc_blocks(struct mv_machine *m, uint64_t ram_size,
			   struct mv_region **r)
{
	size_t i;

	for (i = 0; i < NR_PC; i++) {
		const struct pc_block *b = &pc_blocks[i];
		struct mv_ram_opts opts = { .max_size = b->max };
		uint64_t size = i ? b->used : ram_size;

		if (b->rom)
			assert_int_equal(mv_region_new_rom(m, b->name, size,
							   &opts, &r[i]),
					 0);
		else
			assert_int_equal(mv_region_new_ram(m, b->name, size,
							   &opts, &r[i]),
					 0);
	}
}

static void expect_block(const struct mv_machine *m, size_t i, const char *name,
			 uint64_t offset, uint64_t used, uint64_t max,
			 struct mv_region *mr)
{
	struct mv_ramblock_info info;

	assert_int_equal(mv_ramblock_get(m, i, &info), 0);
	assert_string_equal(info.idstr, name);
	assert_int_equal(info.offset, offset);
	assert_int_equal(info.used_length, used);
	assert_int_equal(info.max_length, max);
	assert_int_equal(info.page_size, 4096);
	assert_ptr_equal(info.mr, mr);
	assert_ptr_equal(info.host, mv_region_ram_ptr(mr));
}

static void unref_all(struct mv_region **r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		mv_region_unref(r[i]);
}

/* `info ramblock` of qemu-system-x86_64 7.2 -M pc -m 4G -nodefaults. */
static const char pc_4g_text[] =
	"              Block Name    PSize              Offset"
	"               Used              Total\n"
	"                  pc.ram    4 KiB  0x0000000000000000"
	" 0x0000000100000000 0x0000000100000000\n"
	"    /rom@etc/acpi/tables    4 KiB  0x0000000100080000"
	" 0x0000000000020000 0x0000000000200000\n"
	"                 pc.bios    4 KiB  0x0000000100000000"
	" 0x0000000000040000 0x0000000000040000\n"
	"                  pc.rom    4 KiB  0x0000000100040000"
	" 0x0000000000020000 0x0000000000020000\n"
	"   /rom@etc/table-loader    4 KiB  0x0000000100280000"
	" 0x0000000000001000 0x0000000000010000\n"
	"      /rom@etc/acpi/rsdp    4 KiB  0x00000001002c0000"
	" 0x0000000000001000 0x0000000000001000\n";

static void test_pc_4g_offsets_and_order(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *r[NR_PC];

	(void)state;
	make_pc_blocks(m, 4ull << 30, r);
	assert_int_equal(mv_ramblock_count(m), NR_PC);
	expect_block(m, 0, "pc.ram", 0, 1ull << 32, 1ull << 32, r[0]);
	expect_block(m, 1, "/rom@etc/acpi/tables", 0x100080000, 0x20000,
		     0x200000, r[3]);
	expect_block(m, 2, "pc.bios", 0x100000000, 0x40000, 0x40000, r[1]);
	expect_block(m, 3, "pc.rom", 0x100040000, 0x20000, 0x20000, r[2]);
	expect_block(m, 4, "/rom@etc/table-loader", 0x100280000, 0x1000,
		     0x10000, r[4]);
	expect_block(m, 5, "/rom@etc/acpi/rsdp", 0x1002c0000, 0x1000, 0x1000,
		     r[5]);
	assert_int_equal(mv_ramblock_get(m, NR_PC,
					 &(struct mv_ramblock_info){ 0 }),
			 -ENOENT);
	expect_ramblock_text(m, pc_4g_text);
	unref_all(r, NR_PC);
	assert_int_equal(mv_ramblock_count(m), 0);
	mv_machine_free(m);
}

/* The same for -m 1001k: QEMU rounds RAM up to 8 KiB, 0xfc000. */
static const char pc_1001k_text[] =
	"              Block Name    PSize              Offset"
	"               Used              Total\n"
	"    /rom@etc/acpi/tables    4 KiB  0x0000000000180000"
	" 0x0000000000020000 0x0000000000200000\n"
	"                  pc.ram    4 KiB  0x0000000000000000"
	" 0x00000000000fc000 0x00000000000fc000\n"
	"                 pc.bios    4 KiB  0x0000000000100000"
	" 0x0000000000040000 0x0000000000040000\n"
	"                  pc.rom    4 KiB  0x0000000000140000"
	" 0x0000000000020000 0x0000000000020000\n"
	"   /rom@etc/table-loader    4 KiB  0x0000000000380000"
	" 0x0000000000001000 0x0000000000010000\n"
	"      /rom@etc/acpi/rsdp    4 KiB  0x00000000003c0000"
	" 0x0000000000001000 0x0000000000001000\n";

static void test_pc_1001k_offsets_and_order(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *r[NR_PC];

	(void)state;
	make_pc_blocks(m, 0xfc000, r);
	expect_block(m, 0, "/rom@etc/acpi/tables", 0x180000, 0x20000, 0x200000,
		     r[3]);
	expect_block(m, 1, "pc.ram", 0, 0xfc000, 0xfc000, r[0]);
	expect_block(m, 2, "pc.bios", 0x100000, 0x40000, 0x40000, r[1]);
	expect_ramblock_text(m, pc_1001k_text);
	unref_all(r, NR_PC);
	mv_machine_free(m);
}

static struct mv_region *block(struct mv_machine *m, const char *name,
			       uint64_t size)
{
	struct mv_region *r = NULL;

	assert_int_equal(mv_region_new_ram(m, name, size, NULL, &r), 0);
	return r;
}

static uint64_t offset_of(struct mv_machine *m, struct mv_region *r)
{
	struct mv_ramblock_info info;
	size_t i;

	for (i = 0; i < mv_ramblock_count(m); i++) {
		assert_int_equal(mv_ramblock_get(m, i, &info), 0);
		if (info.mr == r)
			return info.offset;
	}
	fail_msg("no block for %s", mv_region_name(r));
	return 0;
}

/*
 *   0      40000        140000  180000   200000  240000
 *   [ a   ][ b (freed)  ][ c   ][ d(freed)][ e   ]
 * A 0x40000 block takes the smallest gap that fits (d's), a 0xc0000 block
 * the only one that fits (b's).  Between two equal gaps the one after the
 * block first in list order (largest first) wins: h goes after g, not f.
 */
static void test_best_fit_reuses_freed_gap(void **state)
{
	struct mv_machine *m = machine();
	struct mv_region *a = block(m, "a", 0x40000);
	struct mv_region *b = block(m, "b", 0x100000);
	struct mv_region *c = block(m, "c", 0x40000);
	struct mv_region *d = block(m, "d", 0x80000);
	struct mv_region *e = block(m, "e", 0x40000);
	struct mv_region *f, *g, *h, *i;

	(void)state;
	assert_int_equal(offset_of(m, a), 0);
	assert_int_equal(offset_of(m, b), 0x40000);
	assert_int_equal(offset_of(m, c), 0x140000);
	assert_int_equal(offset_of(m, d), 0x180000);
	assert_int_equal(offset_of(m, e), 0x200000);
	mv_region_unref(b);
	mv_region_unref(d);
	f = block(m, "f", 0x40000);
	assert_int_equal(offset_of(m, f), 0x180000);
	g = block(m, "g", 0xc0000);
	assert_int_equal(offset_of(m, g), 0x40000);
	h = block(m, "h", 0x40000);
	assert_int_equal(offset_of(m, h), 0x100000);
	/* 0x100 bytes take the last 0x40000 gap, not the open end. */
	i = block(m, "i", 0x100);
	assert_int_equal(offset_of(m, i), 0x1c0000);
	mv_region_unref(i);
	mv_region_unref(h);
	mv_region_unref(g);
	mv_region_unref(f);
	mv_region_unref(e);
	mv_region_unref(c);
	mv_region_unref(a);
	mv_machine_free(m);
}

static void test_ramblock_print_long_names_and_block_name(void **state)
{
	struct mv_machine *m = machine();
	struct mv_ram_opts opts = {
		.block_name = "0000:00:02.0/virtio-net-pci.rom",
	};
	struct mv_region *rom = NULL, *ram;

	(void)state;
	ram = block(m, "ram", 0x1800); /* rounded up to pages */
	assert_int_equal(mv_region_new_rom(m, "virtio-net-pci.rom", 0x40000,
					   &opts, &rom),
			 0);
	expect_ramblock_text(
		m, "              Block Name    PSize              Offset"
		   "               Used              Total\n"
		   "0000:00:02.0/virtio-net-pci.rom    4 KiB  "
		   "0x0000000000040000 0x0000000000040000 0x0000000000040000\n"
		   "                     ram    4 KiB  0x0000000000000000"
		   " 0x0000000000002000 0x0000000000002000\n");
	assert_string_equal(mv_region_name(rom), "virtio-net-pci.rom");
	mv_region_unref(rom);
	mv_region_unref(ram);
	expect_ramblock_text(m, "              Block Name    PSize"
				"              Offset               Used"
				"              Total\n");
	mv_machine_free(m);
}

/* ---- backends ------------------------------------------------------------ */

/* The VmFlags line of the mapping holding @p in /proc/self/smaps. */
static char *vmflags(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512], *flags = NULL;
	bool in = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			flags = strdup(line + 8);
			break;
		}
	}
	fclose(f);
	if (!flags)
		fail_msg("no mapping at %p", p);
	return flags;
}

static bool has_flag(const void *p, const char *flag)
{
	char *flags = vmflags(p), want[8];
	bool found;

	snprintf(want, sizeof(want), " %s", flag);
	found = strstr(flags, want) != NULL;
	free(flags);
	return found;
}

/* How many of the @len bytes' pages at @p are resident. */
static size_t resident_pages(void *p, uint64_t len)
{
	size_t n = len / PAGE, i, count = 0;
	unsigned char *vec = calloc(n, 1);

	assert_non_null(vec);
	assert_int_equal(mincore(p, len, vec), 0);
	for (i = 0; i < n; i++)
		count += vec[i] & 1;
	free(vec);
	return count;
}

static struct mv_region *ram_with(struct mv_machine *m, const char *name,
				  uint64_t size, const struct mv_ram_opts *opts)
{
	struct mv_region *r = NULL;
	int ret = mv_region_new_ram(m, name, size, opts, &r);

	if (ret)
		fail_msg("%s: %s", name, strerror(-ret));
	assert_non_null(mv_region_ram_ptr(r));
	return r;
}

static void test_anon_private_and_shared(void **state)
{
	struct mv_machine *m = machine();
	struct mv_ram_opts shared = { .backend = MV_RAM_ANON, .share = true };
	struct mv_region *priv = ram_with(m, "priv", 0x10000, NULL);
	struct mv_region *shr = ram_with(m, "shr", 0x10000, &shared);
	uint8_t *p = mv_region_ram_ptr(priv), *s = mv_region_ram_ptr(shr);

	(void)state;
	assert_int_equal(mv_region_ram_fd(priv), -1);
	assert_int_equal(mv_region_ram_fd(shr), -1);
	assert_false(has_flag(p, "sh"));
	assert_true(has_flag(s, "sh"));
	/* Fresh anonymous memory reads zero and is writable. */
	assert_int_equal(p[0xffff], 0);
	p[0xffff] = 0x5a;
	s[0] = 0xa5;
	assert_int_equal(p[0xffff], 0x5a);
	assert_int_equal(s[0], 0xa5);
	mv_region_unref(shr);
	mv_region_unref(priv);
	mv_machine_free(m);
}

static void test_memfd_is_shareable(void **state)
{
	struct mv_machine *m = machine();
	struct mv_ram_opts opts = { .backend = MV_RAM_MEMFD };
	struct mv_region *r = ram_with(m, "guest-ram", 0x20000, &opts);
	uint8_t *host = mv_region_ram_ptr(r), *peer;
	char link[64], target[256];
	struct stat st;
	ssize_t n;
	int fd = mv_region_ram_fd(r);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size >= 0x20000);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = 0;
	assert_non_null(strstr(target, "memfd:"));
	assert_true(has_flag(host, "sh"));

	/* A peer mapping of the fd sees the guest's writes and vice versa. */
	peer = mmap(NULL, 0x20000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(peer != MAP_FAILED);
	memcpy(host + 0x1ff00, "guest", 6);
	assert_string_equal((char *)peer + 0x1ff00, "guest");
	memcpy(peer + 0x10, "peer", 5);
	assert_string_equal((char *)host + 0x10, "peer");
	munmap(peer, 0x20000);
	mv_region_unref(r);
	mv_machine_free(m);
}

static char *temp_dir(void)
{
	char *dir = strdup("/tmp/memvirt-ramblock-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static size_t dir_entries(const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, NULL), i;

	assert_true(n >= 2);
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return (size_t)n - 2; /* . and .. */
}

static void test_file_in_directory_is_unlinked_temp(void **state)
{
	struct mv_machine *m = machine();
	char *dir = temp_dir(), buf[8] = "";
	struct mv_ram_opts opts = { .backend = MV_RAM_FILE, .path = dir };
	struct mv_region *r = ram_with(m, "dir-ram", 0x10000, &opts);
	uint8_t *host = mv_region_ram_ptr(r);
	struct stat st;
	int fd = mv_region_ram_fd(r);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 0);
	assert_true(S_ISREG(st.st_mode));
	assert_true(st.st_size >= 0x10000);
	assert_int_equal(dir_entries(dir), 0);
	memcpy(host + 0x8000, "file", 5);
	assert_int_equal(pread(fd, buf, 5, 0x8000), 5);
	assert_string_equal(buf, "file");
	mv_region_unref(r);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
	mv_machine_free(m);
}

static void test_named_file_keeps_the_data(void **state)
{
	struct mv_machine *m = machine();
	char *dir = temp_dir(), path[512], buf[8] = "";
	struct mv_ram_opts opts = { .backend = MV_RAM_FILE, .path = path };
	struct mv_region *r;
	struct stat st;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/ram.img", dir);
	r = ram_with(m, "file-ram", 0x10000, &opts);
	assert_true(mv_region_ram_fd(r) >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0x10000);
	memcpy((uint8_t *)mv_region_ram_ptr(r) + 0xfff0, "named", 6);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 6, 0xfff0), 6);
	assert_string_equal(buf, "named");
	mv_region_unref(r);
	/* The file is the user's: it stays, with the guest's data. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(pread(fd, buf, 6, 0xfff0), 6);
	assert_string_equal(buf, "named");
	close(fd);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
	mv_machine_free(m);
}

static void test_prealloc_populates_every_page(void **state)
{
	struct mv_machine *m = machine();
	struct mv_ram_opts pre = { .prealloc = true };
	struct mv_ram_opts pre_fd = { .backend = MV_RAM_MEMFD,
				      .prealloc = true };
	struct mv_region *lazy = ram_with(m, "lazy", 64 * PAGE, NULL);
	struct mv_region *eager = ram_with(m, "eager", 64 * PAGE, &pre);
	struct mv_region *eager_fd =
		ram_with(m, "eager-fd", 64 * PAGE, &pre_fd);

	(void)state;
	assert_int_equal(resident_pages(mv_region_ram_ptr(lazy), 64 * PAGE), 0);
	assert_int_equal(resident_pages(mv_region_ram_ptr(eager), 64 * PAGE),
			 64);
	assert_int_equal(resident_pages(mv_region_ram_ptr(eager_fd), 64 * PAGE),
			 64);
	/* Preallocation must not have changed the contents. */
	assert_int_equal(((uint8_t *)mv_region_ram_ptr(eager))[63 * PAGE], 0);
	mv_region_unref(eager_fd);
	mv_region_unref(eager);
	mv_region_unref(lazy);
	mv_machine_free(m);
}

static void test_thp_advises_huge_pages(void **state)
{
	struct mv_machine *m;
	struct mv_ram_opts thp = { .thp = true };
	struct mv_region *plain, *huge;

	(void)state;
	if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK))
		skip();
	m = machine();
	plain = ram_with(m, "plain", 4 << 20, NULL);
	huge = ram_with(m, "huge", 4 << 20, &thp);
	assert_true(has_flag(mv_region_ram_ptr(huge), "hg"));
	assert_false(has_flag(mv_region_ram_ptr(plain), "hg"));
	mv_region_unref(huge);
	mv_region_unref(plain);
	mv_machine_free(m);
}

static void test_caller_memory_is_used_and_left_alone(void **state)
{
	struct mv_machine *m = machine();
	uint8_t *mem = mmap(NULL, 0x4000, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mv_ram_opts opts = { .backend = MV_RAM_PTR, .host = mem };
	struct mv_region *sys = NULL, *r;
	struct mv_ramblock_info info;
	struct mv_as *as = NULL;
	void *hva = NULL;
	uint64_t len = 0;

	(void)state;
	assert_true(mem != MAP_FAILED);
	r = ram_with(m, "caller", 0x4000, &opts);
	assert_ptr_equal(mv_region_ram_ptr(r), mem);
	assert_int_equal(mv_region_ram_fd(r), -1);
	assert_int_equal(mv_ramblock_get(m, 0, &info), 0);
	assert_ptr_equal(info.host, mem);
	assert_int_equal(mv_region_new_container(m, "system", UINT64_MAX, &sys),
			 0);
	assert_int_equal(mv_as_new(m, "memory", sys, &as), 0);
	assert_int_equal(mv_region_add_subregion(sys, 0x10000, r), 0);
	assert_int_equal(mv_as_gpa_to_hva(as, 0x12345, &hva, &len), 0);
	assert_ptr_equal(hva, mem + 0x2345);
	assert_int_equal(len, 0x14000 - 0x12345);
	*(uint8_t *)hva = 0x77;
	assert_int_equal(mem[0x2345], 0x77);
	mv_region_unref(r);
	mv_region_unref(sys);
	mv_machine_free(m);
	/* The caller's memory is still mapped and untouched. */
	assert_int_equal(mem[0x2345], 0x77);
	mem[0x3fff] = 1;
	assert_int_equal(munmap(mem, 0x4000), 0);
}

/* ---- GPA <-> HVA ----------------------------------------------------------- */

/*
 *   GPA 0         100000     200000   240000   300000 301000   400000
 *       [ a1: ram 0-fffff ]  [ a2: ram 40000- ] [ mmio ]        (hole)
 */
struct gmachine {
	struct mv_machine *m;
	struct mv_region *sys, *ram, *a1, *a2, *mmio;
	struct mv_as *as;
	uint8_t *host;
};

static void gmachine_new(struct gmachine *g)
{
	struct mv_machine *m = g->m = machine();

	assert_int_equal(
		mv_region_new_container(m, "system", UINT64_MAX, &g->sys), 0);
	g->ram = ram_with(m, "ram", 0x100000, NULL);
	g->host = mv_region_ram_ptr(g->ram);
	assert_int_equal(
		mv_region_new_alias(m, "a1", g->ram, 0, 0x100000, &g->a1), 0);
	assert_int_equal(mv_region_new_alias(m, "a2", g->ram, 0x40000, 0x40000,
					     &g->a2),
			 0);
	assert_int_equal(mv_region_new_io(m, "mmio", 0x1000, &mv_zero_ops, NULL,
					  &g->mmio),
			 0);
	assert_int_equal(mv_as_new(m, "memory", g->sys, &g->as), 0);
	assert_int_equal(mv_region_add_subregion(g->sys, 0, g->a1), 0);
	assert_int_equal(mv_region_add_subregion(g->sys, 0x200000, g->a2), 0);
	assert_int_equal(mv_region_add_subregion(g->sys, 0x300000, g->mmio), 0);
	mv_test_expect_view(g->as, "0-fffff ram@0\n200000-23ffff ram@40000\n"
				   "300000-300fff mmio@0");
	mv_test_check_views(m);
}

static void gmachine_free(struct gmachine *g)
{
	mv_region_unref(g->mmio);
	mv_region_unref(g->a2);
	mv_region_unref(g->a1);
	mv_region_unref(g->ram);
	mv_region_unref(g->sys);
	mv_machine_free(g->m);
}

static void test_gpa_to_hva(void **state)
{
	struct gmachine g;
	void *hva = NULL;
	uint64_t len = 0;

	(void)state;
	gmachine_new(&g);
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x1234, &hva, &len), 0);
	assert_ptr_equal(hva, g.host + 0x1234);
	assert_int_equal(len, 0x100000 - 0x1234);
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x210000, &hva, &len), 0);
	assert_ptr_equal(hva, g.host + 0x50000);
	assert_int_equal(len, 0x240000 - 0x210000);
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x23ffff, &hva, &len), 0);
	assert_ptr_equal(hva, g.host + 0x7ffff);
	assert_int_equal(len, 1);
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0, &hva, NULL), 0);
	assert_ptr_equal(hva, g.host);

	/* Holes and MMIO have no host address. */
	hva = NULL;
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x100000, &hva, &len), -ENOENT);
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x400000, &hva, &len), -ENOENT);
	assert_int_equal(mv_as_gpa_to_hva(g.as, UINT64_MAX, &hva, &len),
			 -ENOENT);
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x300000, &hva, &len), -ENOENT);
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x300fff, &hva, &len), -ENOENT);
	assert_null(hva);
	gmachine_free(&g);
}

static void test_hva_to_every_gpa(void **state)
{
	struct gmachine g;
	mv_gpa_t gpas[4] = { 1, 1, 1, 1 };
	size_t nr = 99;

	(void)state;
	gmachine_new(&g);
	assert_int_equal(
		mv_as_hva_to_gpas(g.as, g.host + 0x50000, gpas, 4, &nr), 0);
	assert_int_equal(nr, 2);
	assert_int_equal(gpas[0], 0x50000);
	assert_int_equal(gpas[1], 0x210000);
	assert_int_equal(gpas[2], 1);

	/* Only one GPA below the second alias' window. */
	assert_int_equal(
		mv_as_hva_to_gpas(g.as, g.host + 0x3ffff, gpas, 4, &nr), 0);
	assert_int_equal(nr, 1);
	assert_int_equal(gpas[0], 0x3ffff);
	assert_int_equal(
		mv_as_hva_to_gpas(g.as, g.host + 0x7ffff, gpas, 4, &nr), 0);
	assert_int_equal(nr, 2);
	assert_int_equal(gpas[0], 0x7ffff);
	assert_int_equal(gpas[1], 0x23ffff);

	/* More GPAs than room: @max filled, @nr says how many exist. */
	gpas[0] = gpas[1] = 1;
	assert_int_equal(
		mv_as_hva_to_gpas(g.as, g.host + 0x50000, gpas, 1, &nr), 0);
	assert_int_equal(nr, 2);
	assert_int_equal(gpas[0], 0x50000);
	assert_int_equal(gpas[1], 1);
	assert_int_equal(
		mv_as_hva_to_gpas(g.as, g.host + 0x50000, NULL, 0, &nr), 0);
	assert_int_equal(nr, 2);

	/* Outside the block, or not RAM at all: none. */
	assert_int_equal(
		mv_as_hva_to_gpas(g.as, g.host + 0x100000, gpas, 4, &nr), 0);
	assert_int_equal(nr, 0);
	assert_int_equal(mv_as_hva_to_gpas(g.as, g.host - 1, gpas, 4, &nr), 0);
	assert_int_equal(nr, 0);
	assert_int_equal(mv_as_hva_to_gpas(g.as, &nr, gpas, 4, &nr), 0);
	assert_int_equal(nr, 0);

	/* Disabling an alias drops its GPA. */
	assert_int_equal(mv_region_set_enabled(g.a1, false), 0);
	assert_int_equal(
		mv_as_hva_to_gpas(g.as, g.host + 0x50000, gpas, 4, &nr), 0);
	assert_int_equal(nr, 1);
	assert_int_equal(gpas[0], 0x210000);
	mv_test_check_views(g.m);
	gmachine_free(&g);
}

static void test_write_through_one_gpa_reads_through_the_other(void **state)
{
	struct gmachine g;
	void *h1 = NULL, *h2 = NULL;
	uint32_t v = 0;

	(void)state;
	gmachine_new(&g);
	/* GPA 0x56ff8 (a1) and 0x216ff8 (a2) are the same RAM byte. */
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x56ff8, &h1, NULL), 0);
	assert_int_equal(mv_as_gpa_to_hva(g.as, 0x216ff8, &h2, NULL), 0);
	assert_ptr_equal(h1, h2);
	v = 0xdeadbeef;
	memcpy(h1, &v, sizeof(v));
	v = 0;
	memcpy(&v, h2, sizeof(v));
	assert_int_equal(v, 0xdeadbeef);
	v = 0x1234;
	memcpy((uint8_t *)h2 + 4, &v, sizeof(v));
	v = 0;
	memcpy(&v, (uint8_t *)h1 + 4, sizeof(v));
	assert_int_equal(v, 0x1234);
	assert_int_equal(g.host[0x56ff8], 0xef);
	gmachine_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pc_4g_offsets_and_order,
				       need_4k_pages),
		cmocka_unit_test_setup(test_pc_1001k_offsets_and_order,
				       need_4k_pages),
		cmocka_unit_test(test_best_fit_reuses_freed_gap),
		cmocka_unit_test_setup(
			test_ramblock_print_long_names_and_block_name,
			need_4k_pages),
		cmocka_unit_test(test_anon_private_and_shared),
		cmocka_unit_test(test_memfd_is_shareable),
		cmocka_unit_test(test_file_in_directory_is_unlinked_temp),
		cmocka_unit_test(test_named_file_keeps_the_data),
		cmocka_unit_test_setup(test_prealloc_populates_every_page,
				       need_4k_pages),
		cmocka_unit_test(test_thp_advises_huge_pages),
		cmocka_unit_test(test_caller_memory_is_used_and_left_alone),
		cmocka_unit_test(test_gpa_to_hva),
		cmocka_unit_test(test_hva_to_every_gpa),
		cmocka_unit_test(
			test_write_through_one_gpa_reads_through_the_other),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
