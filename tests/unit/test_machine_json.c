// SPDX-License-Identifier: MIT
/*
 * Machine description files (docs/machine-format.md): what a valid file
 * builds, the exact message of each class of error, and the change list.
 * JSON is written with single quotes here; q() turns them into double ones.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <memvirt/memory.h>

#include "helpers.h"

#define ORIGIN "t.json"
#define SYS "{'id':'sys','type':'container','size':'16E'}"
#define MEMORY "{'name':'memory','root':'sys'}"

/* A copy of @s with every ' turned into " (caller frees). */
static char *q(const char *s)
{
	char *d = strdup(s), *p;

	assert_non_null(d);
	for (p = d; *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

/* A machine document from its parts; @changes may be NULL. */
static char *doc(const char *regions, const char *spaces, const char *changes)
{
	char *text = NULL, *out;

	assert_true(asprintf(&text,
			     "{'memvirt-machine': 1, 'regions': [%s], "
			     "'address_spaces': [%s]%s%s%s}",
			     regions, spaces, changes ? ", 'changes': [" : "",
			     changes ? changes : "", changes ? "]" : "") > 0);
	out = q(text);
	free(text);
	return out;
}

static struct mv_machine *load_ok(const char *text)
{
	struct mv_machine *m = NULL;
	struct mv_error err = { "" };
	int ret;

	ret = mv_machine_load_string(text, ORIGIN, &m, &err);
	if (ret)
		fail_msg("load failed (%d): %s", ret, err.msg);
	assert_non_null(m);
	mv_test_check_views(m);
	return m;
}

static struct mv_machine *load_parts(const char *regions, const char *spaces,
				     const char *changes)
{
	char *text = doc(regions, spaces, changes);
	struct mv_machine *m = load_ok(text);

	free(text);
	return m;
}

/* Loading @text fails with @ret and exactly @msg. */
static void check_error(const char *text, int ret, const char *msg)
{
	struct mv_machine *m = (struct mv_machine *)1;
	struct mv_error err = { "" };

	assert_int_equal(mv_machine_load_string(text, ORIGIN, &m, &err), ret);
	assert_null(m);
	assert_string_equal(err.msg, msg);
}

/* The same with single quotes in @text and @msg. */
static void expect_error_text(const char *text, const char *msg)
{
	char *t = q(text), *want = q(msg);

	check_error(t, -EINVAL, want);
	free(want);
	free(t);
}

static void expect_error(const char *regions, const char *spaces,
			 const char *changes, const char *msg)
{
	char *text = doc(regions, spaces, changes), *want = q(msg);

	check_error(text, -EINVAL, want);
	free(want);
	free(text);
}

static struct mv_region *find(struct mv_machine *m, const char *id)
{
	struct mv_region *r = mv_machine_find_region(m, id);

	if (!r)
		fail_msg("no region %s", id);
	return r;
}

static struct mv_as *memory(struct mv_machine *m)
{
	struct mv_as *as = mv_machine_find_as(m, "memory");

	assert_non_null(as);
	return as;
}

/* The example of docs/machine-format.md. */
static const char tiny[] =
	"{'memvirt-machine': 1, 'name': 'tiny', 'regions': ["
	" {'id': 'system', 'type': 'container', 'size': '16E'},"
	" {'id': 'ram', 'name': 'tiny.ram', 'type': 'ram', 'size': '64M'},"
	" {'id': 'ram-lo', 'type': 'alias', 'target': 'ram', 'offset': 0,"
	"  'size': '64M', 'parent': 'system', 'addr': 0},"
	" {'id': 'uart', 'type': 'io', 'ops': 'zero', 'size': 8,"
	"  'parent': 'system', 'addr': '0xfe000000', 'priority': 1}],"
	" 'address_spaces': [{'name': 'memory', 'root': 'system'}],"
	" 'changes': ["
	"  [{'op': 'disable', 'region': 'uart'}],"
	"  [{'op': 'move', 'region': 'ram-lo', 'addr': '0x100000'},"
	"   {'op': 'resize', 'region': 'ram-lo', 'size': '32M'}]]}";

/* ---- what a valid file builds ---------------------------------------- */

static void test_valid_file_builds_regions(void **state)
{
	char *text = q(tiny);
	struct mv_machine *m = load_ok(text);
	struct mv_region *sys = find(m, "system"), *ram = find(m, "ram");
	struct mv_region *lo = find(m, "ram-lo"), *uart = find(m, "uart");

	(void)state;
	assert_int_equal(mv_region_kind(sys), MV_REGION_CONTAINER);
	assert_int_equal(mv_region_size(sys), MV_SIZE_2_64);
	assert_string_equal(mv_region_name(ram), "tiny.ram");
	assert_string_equal(mv_region_name(lo), "ram-lo");
	assert_int_equal(mv_region_size(ram), 64 << 20);
	assert_null(mv_region_container(ram));
	assert_ptr_equal(mv_region_alias_target(lo), ram);
	assert_ptr_equal(mv_region_container(lo), sys);
	assert_int_equal(mv_region_kind(uart), MV_REGION_IO);
	assert_int_equal(mv_region_addr(uart), 0xfe000000);
	assert_int_equal(mv_region_priority(uart), 1);
	assert_ptr_equal(mv_as_root(memory(m)), sys);
	mv_test_expect_view(memory(m), "0-3ffffff tiny.ram@0\n"
				       "fe000000-fe000007 uart@0");
	assert_int_equal(mv_machine_pending_changes(m), 2);
	mv_machine_free(m);
	free(text);
}

/* The top-level "name" becomes the machine's name; without one, none. */
static void test_document_name_names_the_machine(void **state)
{
	char *text = q(tiny);
	struct mv_machine *m = load_ok(text);

	(void)state;
	assert_string_equal(mv_machine_name(m), "tiny");
	mv_machine_free(m);
	free(text);
	m = load_parts(SYS, MEMORY, NULL);
	assert_null(mv_machine_name(m));
	mv_machine_free(m);
}

static void test_region_attributes(void **state)
{
	struct mv_machine *m = load_parts(
		SYS
		",{'id':'rom','type':'rom','size':'0x1000','parent':'sys',"
		"'addr':'0x10000','owner':'dev0'},"
		"{'id':'rd','type':'rom_device','size':4096,'parent':'sys',"
		"'addr':'0x20000','ops':'zero'},"
		"{'id':'rd2','type':'rom_device','size':4096,'romd':false},"
		"{'id':'nv','type':'ram','size':'4K','nonvolatile':true,"
		"'readonly':true,'parent':'sys','addr':'0x30000',"
		"'block':'nv.block','max_size':'16K','backend':'memfd'},"
		"{'id':'off','type':'ram','size':'4KiB','enabled':false,"
		"'parent':'sys','addr':'0x40000'},"
		"{'id':'res','type':'reservation','size':'4K'},"
		"{'id':'pio','type':'io','size':'4K','ops':'unassigned-io'},"
		"{'id':'nop','type':'io','size':'4K','ops':'none'}",
		MEMORY, NULL);
	struct mv_ramblock_info info;
	bool seen = false;
	size_t i;

	(void)state;
	assert_string_equal(mv_region_type(find(m, "rom")), "rom");
	assert_true(mv_region_readonly(find(m, "rom")));
	assert_string_equal(mv_region_owner(find(m, "rom")), "dev0");
	assert_string_equal(mv_region_type(find(m, "rd")), "romd");
	assert_string_equal(mv_region_type(find(m, "rd2")), "i/o");
	assert_true(mv_region_readonly(find(m, "nv")));
	assert_true(mv_region_ram_fd(find(m, "nv")) >= 0);
	assert_false(mv_region_enabled(find(m, "off")));
	assert_int_equal(mv_region_kind(find(m, "res")), MV_REGION_IO);
	assert_int_equal(mv_region_kind(find(m, "pio")), MV_REGION_IO);
	assert_int_equal(mv_region_kind(find(m, "nop")), MV_REGION_IO);
	for (i = 0; i < mv_ramblock_count(m); i++) {
		assert_int_equal(mv_ramblock_get(m, i, &info), 0);
		if (strcmp(info.idstr, "nv.block"))
			continue;
		seen = true;
		assert_int_equal(info.used_length, 4096);
		assert_int_equal(info.max_length, 16384);
	}
	assert_true(seen);
	mv_test_expect_view(memory(m), "10000-10fff rom@0 ro\n"
				       "20000-20fff rd@0\n"
				       "30000-30fff nv@0 ro nv");
	mv_machine_free(m);
}

static void test_sizes_2_64_and_suffixes(void **state)
{
	struct mv_machine *m = load_parts(
		"{'id':'a','type':'container','size':'16E'},"
		"{'id':'b','type':'container','size':'0xffffffffffffffff'},"
		"{'id':'c','type':'container','size':'16EiB'},"
		"{'id':'d','type':'container','size':'2G'},"
		"{'id':'e','type':'container','size':9223372036854775807},"
		"{'id':'f','type':'container','size':'16e'}",
		"", NULL);

	(void)state;
	assert_int_equal(mv_region_size(find(m, "a")), MV_SIZE_2_64);
	assert_int_equal(mv_region_size(find(m, "b")), MV_SIZE_2_64);
	assert_int_equal(mv_region_size(find(m, "c")), MV_SIZE_2_64);
	assert_int_equal(mv_region_size(find(m, "d")), 2ull << 30);
	assert_int_equal(mv_region_size(find(m, "e")), INT64_MAX);
	assert_int_equal(mv_region_size(find(m, "f")), MV_SIZE_2_64);
	mv_machine_free(m);
}

#define IO(id, extra) \
	"{'id':'" id  \
	"','type':'io','ops':'zero','size':4096,'parent':'sys'" extra "}"

static void expect_winner(const char *regions, const char *view)
{
	struct mv_machine *m = load_parts(regions, MEMORY, NULL);

	mv_test_expect_view(memory(m), view);
	mv_machine_free(m);
}

/* Regions are mapped in array order: among equal priorities, the last wins. */
static void test_placement_order_decides_ties(void **state)
{
	(void)state;
	expect_winner(SYS "," IO("a", "") "," IO("b", ""), "0-fff b@0");
	expect_winner(SYS "," IO("b", "") "," IO("a", ""), "0-fff a@0");
	expect_winner(SYS "," IO("a", ",'priority':1") "," IO("b", ""),
		      "0-fff a@0");
	expect_winner(SYS "," IO("a", "") "," IO("b", ",'priority':-1"),
		      "0-fff a@0");
}

static void test_alias_declared_before_target(void **state)
{
	struct mv_machine *m = load_parts(
		SYS ",{'id':'a1','type':'alias','target':'a2','offset':'4K',"
		    "'size':'4K','parent':'sys','addr':0},"
		    "{'id':'a2','type':'alias','target':'ram','offset':'4K',"
		    "'size':'8K'},"
		    "{'id':'ram','type':'ram','size':'16K'},"
		    "{'id':'a3','type':'alias','target':'a2','size':'4K',"
		    "'parent':'sys','addr':'8K'}",
		MEMORY, NULL);

	(void)state;
	assert_ptr_equal(mv_region_alias_target(find(m, "a1")), find(m, "a2"));
	assert_ptr_equal(mv_region_alias_target(find(m, "a2")), find(m, "ram"));
	mv_test_expect_view(memory(m), "0-fff ram@2000\n"
				       "2000-2fff ram@1000");
	mv_machine_free(m);
}

/* RAM blocks are placed in creation (array) order. */
static void test_ram_blocks_follow_array_order(void **state)
{
	struct mv_machine *m =
		load_parts("{'id':'r1','type':'ram','size':'1M'},"
			   "{'id':'r2','type':'ram','size':'1M'}",
			   "", NULL);
	struct mv_ramblock_info info;
	size_t i;

	(void)state;
	assert_int_equal(mv_ramblock_count(m), 2);
	for (i = 0; i < 2; i++) {
		assert_int_equal(mv_ramblock_get(m, i, &info), 0);
		assert_int_equal(info.offset,
				 strcmp(info.idstr, "r1") ? 1 << 20 : 0);
	}
	mv_machine_free(m);
}

/* ---- errors: every message names the file, the path and the problem --- */

static void test_syntax_error_gives_line_and_column(void **state)
{
	(void)state;
	check_error("{\n  \"memvirt-machine\": 1,\n  \"regions\": [,\n",
		    -EINVAL,
		    "t.json:3:15: JSON syntax error: unexpected token near "
		    "','");
	check_error("{\"a\": 1, \"a\": 2}", -EINVAL,
		    "t.json:1:12: JSON syntax error: duplicate object key near "
		    "'\"a\"'");
}

/*
 * struct bad - a document and the one message it must give.  NULL spaces
 * means MEMORY.
 */
struct bad {
	const char *regions, *spaces, *changes, *msg;
};

static const struct bad bad_top[] = {
	{ SYS, "{'name':'memory','root':'nope'}", NULL,
	  "t.json: $.address_spaces[0].root: no region with id 'nope'" },
	{ SYS, MEMORY "," MEMORY, NULL,
	  "t.json: $.address_spaces[1].name: duplicate address space name "
	  "'memory' (first at $.address_spaces[0])" },
	{ SYS, "{'name':'memory'}", NULL,
	  "t.json: $.address_spaces[0]: missing required key 'root'" },
	{ SYS, "{'name':'memory','root':'sys','flat':1}", NULL,
	  "t.json: $.address_spaces[0].flat: unknown key" },
	{ SYS, "[]", NULL,
	  "t.json: $.address_spaces[0]: expected an address space object, "
	  "got an array" },
	{ SYS, NULL, "{}",
	  "t.json: $.changes[0]: expected a transaction (an array of "
	  "changes), got an object" },
};

static const struct bad bad_regions[] = {
	{ SYS ",{'id':'r','type':'ram','size':true}", NULL, NULL,
	  "t.json: $.regions[1].size: expected a size (integer or string "
	  "such as '512M'), got true" },
	{ SYS ",{'id':'r','type':'ram','size':'4K','parent':'sytem'}", NULL,
	  NULL, "t.json: $.regions[1].parent: no region with id 'sytem'" },
	{ "{'id':'r','type':'ram'}", "", NULL,
	  "t.json: $.regions[0]: missing required key 'size'" },
	{ "{'type':'ram','size':1}", "", NULL,
	  "t.json: $.regions[0]: missing required key 'id'" },
	{ "{'id':'r','size':1}", "", NULL,
	  "t.json: $.regions[0]: missing required key 'type'" },
	{ "{'id':'r','type':'rma','size':1}", "", NULL,
	  "t.json: $.regions[0].type: unknown type 'rma' (expected container, "
	  "ram, rom, rom_device, io, reservation or alias)" },
	{ "{'id':'r','type':'ram','sise':1}", "", NULL,
	  "t.json: $.regions[0].sise: unknown key" },
	{ "{'id':'r','type':'ram','size':1,'target':'x'}", "", NULL,
	  "t.json: $.regions[0].target: 'target' is for alias regions, not "
	  "ram" },
	{ "{'id':'r','type':'container','size':1,'backend':'anon'}", "", NULL,
	  "t.json: $.regions[0].backend: 'backend' is for ram, rom or "
	  "rom_device regions, not container" },
	{ "{'id':'r','type':'ram','size':1,'ops':'zero'}", "", NULL,
	  "t.json: $.regions[0].ops: 'ops' is for rom_device or io regions, "
	  "not ram" },
	{ "{'id':'r','type':'io','size':1,'ops':'two'}", "", NULL,
	  "t.json: $.regions[0].ops: unknown ops 'two' (expected none, "
	  "unassigned-io or zero)" },
	{ "{'id':'r','type':'ram','size':-4096}", "", NULL,
	  "t.json: $.regions[0].size: size must not be negative, got -4096" },
	{ "{'id':'r','type':'ram','size':'12Q'}", "", NULL,
	  "t.json: $.regions[0].size: '12Q' is not a valid size" },
	{ "{'id':'r','type':'ram','size':1.5}", "", NULL,
	  "t.json: $.regions[0].size: expected a size (integer or string "
	  "such as '512M'), got 1.5" },
	{ "{'id':'r','type':'container','size':'17E'}", "", NULL,
	  "t.json: $.regions[0].size: '17E' is out of range for a size" },
	{ SYS ",{'id':'r','type':'io','size':1,'parent':'sys','addr':'16E'}",
	  NULL, NULL,
	  "t.json: $.regions[1].addr: '16E' is out of range for an address" },
	{ SYS ",{'id':'r','type':'io','size':1,'parent':'sys','addr':null}",
	  NULL, NULL,
	  "t.json: $.regions[1].addr: expected an address (integer or string "
	  "such as '0xfe000000'), got null" },
	{ SYS ",{'id':'r','type':'io','size':1,'parent':'sys',"
	      "'priority':2147483648}",
	  NULL, NULL,
	  "t.json: $.regions[1].priority: priority 2147483648 is out of the "
	  "int range" },
	{ SYS ",{'id':'r','type':'io','size':1,'parent':'sys',"
	      "'priority':'1'}",
	  NULL, NULL,
	  "t.json: $.regions[1].priority: expected an integer priority, got "
	  "'1'" },
	{ "{'id':'r','type':'io','size':1,'addr':0}", "", NULL,
	  "t.json: $.regions[0].addr: 'addr' needs 'parent'" },
	{ "{'id':'r','type':'io','size':1,'priority':1}", "", NULL,
	  "t.json: $.regions[0].priority: 'priority' needs 'parent'" },
	{ "{'id':'r','type':'io','size':1,'enabled':'yes'}", "", NULL,
	  "t.json: $.regions[0].enabled: expected true or false, got 'yes'" },
	{ "{'id':'r','type':'io','size':1,'name':7}", "", NULL,
	  "t.json: $.regions[0].name: expected a string, got 7" },
	{ "{'id':'','type':'io','size':1}", "", NULL,
	  "t.json: $.regions[0].id: must not be empty" },
	{ SYS "," SYS, NULL, NULL,
	  "t.json: $.regions[1].id: duplicate id 'sys' (first defined at "
	  "$.regions[0])" },
	{ "{'id':'a','type':'alias','size':1}", "", NULL,
	  "t.json: $.regions[0]: missing required key 'target'" },
	{ "{'id':'a','type':'alias','size':1,'target':'b'}", "", NULL,
	  "t.json: $.regions[0].target: no region with id 'b'" },
	{ "{'id':'a','type':'alias','size':1,'target':'a'}", "", NULL,
	  "t.json: $.regions[0].target: alias cycle: 'a' -> 'a'" },
	{ "{'id':'r','type':'ram','size':1},"
	  "{'id':'a','type':'alias','size':1,'target':'r'},"
	  "{'id':'b','type':'alias','size':1,'target':'c'},"
	  "{'id':'c','type':'alias','size':1,'target':'d'},"
	  "{'id':'d','type':'alias','size':1,'target':'b'}",
	  "", NULL,
	  "t.json: $.regions[2].target: alias cycle: 'b' -> 'c' -> 'd' -> "
	  "'b'" },
	{ "{'id':'r','type':'ram','size':1},"
	  "{'id':'a','type':'alias','size':1,'target':'r'},"
	  "{'id':'b','type':'io','size':1,'parent':'a'}",
	  "", NULL,
	  "t.json: $.regions[2].parent: 'a' is an alias, which cannot have "
	  "subregions" },
	{ "{'id':'r','type':'ram','size':1,'backend':'file'}", "", NULL,
	  "t.json: $.regions[0]: backend 'file' needs 'path'" },
	{ "{'id':'r','type':'ram','size':1,'path':'/tmp'}", "", NULL,
	  "t.json: $.regions[0].path: 'path' needs backend 'file'" },
	{ "{'id':'r','type':'ram','size':1,'backend':'disk'}", "", NULL,
	  "t.json: $.regions[0].backend: unknown backend 'disk' (expected "
	  "anon, memfd or file)" },
	{ "{'id':'r','type':'ram','size':'8K','max_size':'4K'}", "", NULL,
	  "t.json: $.regions[0].max_size: 'max_size' is smaller than 'size'" },
	{ "{'id':'r','type':'rom','size':1,'readonly':false}", "", NULL,
	  "t.json: $.regions[0].readonly: a rom region is always readonly" },
	{ "7", "", NULL,
	  "t.json: $.regions[0]: expected a region object, got 7" },
};

static const struct bad bad_changes[] = {
	{ SYS, NULL, "[{'op':'dissable','region':'sys'}]",
	  "t.json: $.changes[0][0].op: unknown op 'dissable'" },
	{ SYS, NULL, "[{'region':'sys'}]",
	  "t.json: $.changes[0][0]: missing required key 'op'" },
	{ SYS, NULL, "[{'op':'disable'}]",
	  "t.json: $.changes[0][0]: missing required key 'region'" },
	{ SYS, NULL, "[],[{'op':'disable','region':'sytem'}]",
	  "t.json: $.changes[1][0].region: no region with id 'sytem'" },
	{ SYS, NULL, "[{'op':'disable','region':'sys','addr':0}]",
	  "t.json: $.changes[0][0].addr: 'addr' does not apply to op "
	  "'disable'" },
	{ SYS, NULL, "[{'op':'disable','region':'sys','why':0}]",
	  "t.json: $.changes[0][0].why: unknown key" },
	{ SYS, NULL, "[{'op':'move','region':'sys'}]",
	  "t.json: $.changes[0][0]: missing required key 'addr'" },
	{ SYS, NULL, "[{'op':'resize','region':'sys','size':'big'}]",
	  "t.json: $.changes[0][0].size: 'big' is not a valid size" },
	{ SYS, NULL, "[{'op':'readonly','region':'sys','value':1}]",
	  "t.json: $.changes[0][0].value: expected true or false, got 1" },
	{ SYS, NULL, "[{'op':'alias_offset','region':'sys','offset':0}]",
	  "t.json: $.changes[0][0].region: op 'alias_offset' is for alias "
	  "regions, not container 'sys'" },
	{ SYS, NULL, "[{'op':'romd','region':'sys','value':true}]",
	  "t.json: $.changes[0][0].region: op 'romd' is for rom_device "
	  "regions, not container 'sys'" },
	{ SYS, NULL, "[{'op':'disable','region':{'id':'x'}}]",
	  "t.json: $.changes[0][0].region: expected a region id, got an "
	  "object" },
	{ SYS, NULL, "[{'op':'add','region':7,'parent':'sys'}]",
	  "t.json: $.changes[0][0].region: expected a region id or a region "
	  "object, got 7" },
	{ SYS, NULL, "[{'op':'add','region':'sys','parent':'nope'}]",
	  "t.json: $.changes[0][0].parent: no region with id 'nope'" },
	{ SYS, NULL,
	  "[{'op':'add','region':{'id':'n','type':'io','size':1,"
	  "'parent':'sys'},'parent':'sys'}]",
	  "t.json: $.changes[0][0].region.parent: give 'parent' in the add "
	  "change, not in the region object" },
	{ SYS, NULL,
	  "[{'op':'add','region':{'id':'sys','type':'io','size':1},"
	  "'parent':'sys'}]",
	  "t.json: $.changes[0][0].region.id: duplicate id 'sys' (first "
	  "defined at $.regions[0])" },
	{ SYS, NULL,
	  "[{'op':'disable','region':'n'}],"
	  "[{'op':'add','region':{'id':'n','type':'io','size':1},"
	  "'parent':'sys'}]",
	  "t.json: $.changes[0][0].region: no region with id 'n'" },
	{ SYS, NULL,
	  "[{'op':'add','region':{'id':'n','type':'alias','size':1,"
	  "'target':'n'},'parent':'sys'}]",
	  "t.json: $.changes[0][0].region.target: no region with id 'n'" },
	{ SYS, NULL,
	  "[{'op':'add','region':'sys','parent':'sys',"
	  "'priority':-2147483649}]",
	  "t.json: $.changes[0][0].priority: priority -2147483649 is out of "
	  "the int range" },
};

static void expect_bad(const struct bad *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		expect_error(b[i].regions, b[i].spaces ? b[i].spaces : MEMORY,
			     b[i].changes, b[i].msg);
}

static void test_top_level_errors(void **state)
{
	(void)state;
	expect_error_text("[]", "t.json: $: expected a machine object, got an "
				"array");
	expect_error_text("{}",
			  "t.json: $: missing required key 'memvirt-machine'");
	expect_error_text("{'memvirt-machine':2}",
			  "t.json: $.memvirt-machine: unsupported format "
			  "version 2 (expected 1)");
	expect_error_text("{'memvirt-machine':1,'regoins':[]}",
			  "t.json: $.regoins: unknown key");
	expect_error_text("{'memvirt-machine':1,'address_spaces':[]}",
			  "t.json: $: missing required key 'regions'");
	expect_error_text("{'memvirt-machine':1,'regions':{},"
			  "'address_spaces':[]}",
			  "t.json: $.regions: expected an array, got an "
			  "object");
	expect_bad(bad_top, sizeof(bad_top) / sizeof(bad_top[0]));
}

static void test_region_errors(void **state)
{
	(void)state;
	expect_bad(bad_regions, sizeof(bad_regions) / sizeof(bad_regions[0]));
}

static void test_change_errors_found_at_load(void **state)
{
	(void)state;
	expect_bad(bad_changes, sizeof(bad_changes) / sizeof(bad_changes[0]));
}

/* Errors the API reports while building: the half-built machine is freed. */
static void test_build_errors_free_everything(void **state)
{
	char *text;

	(void)state;
	text = doc("{'id':'a','type':'container','size':'4K','parent':'b'},"
		   "{'id':'r','type':'ram','size':'1M','parent':'a'},"
		   "{'id':'b','type':'container','size':'4K','parent':'a'}",
		   "", NULL);
	check_error(text, -EINVAL,
		    "t.json: $.regions[2]: adding \"b\" to \"a\" would make "
		    "a cycle");
	free(text);
	text = doc(SYS ",{'id':'f','type':'ram','size':'4K','backend':'file',"
		       "'path':'/nonexistent/memvirt/f'}",
		   MEMORY, NULL);
	check_error(text, -ENOENT,
		    "t.json: $.regions[1]: cannot create ram region \"f\": No "
		    "such file or directory");
	free(text);
}

/* ---- changes ---------------------------------------------------------- */

static void expect_apply_ok(struct mv_machine *m, const char *view)
{
	struct mv_error err = { "" };

	if (mv_machine_apply_change(m, &err))
		fail_msg("apply failed: %s", err.msg);
	mv_test_check_views(m);
	mv_test_expect_view(memory(m), view);
}

static void expect_apply_error(struct mv_machine *m, int ret, const char *msg)
{
	struct mv_error err = { "" };
	char *want = q(msg);

	assert_int_equal(mv_machine_apply_change(m, &err), ret);
	assert_string_equal(err.msg, want);
	mv_test_check_views(m);
	free(want);
}

static void test_changes_apply_in_order(void **state)
{
	char *text = q(tiny);
	struct mv_machine *m = load_ok(text);

	(void)state;
	expect_apply_ok(m, "0-3ffffff tiny.ram@0");
	assert_int_equal(mv_machine_pending_changes(m), 1);
	expect_apply_ok(m, "100000-20fffff tiny.ram@0");
	assert_int_equal(mv_machine_pending_changes(m), 0);
	expect_apply_error(m, -ENOENT, "t.json: no change left to apply");
	mv_machine_free(m);
	free(text);
}

static void test_every_change_op(void **state)
{
	struct mv_machine *m = load_parts(
		SYS ",{'id':'ram','type':'ram','size':'64K'},"
		    "{'id':'al','type':'alias','target':'ram','size':'4K',"
		    "'parent':'sys'},"
		    "{'id':'rd','type':'rom_device','ops':'zero','size':'4K',"
		    "'parent':'sys','addr':'64K'},"
		    "{'id':'dev','type':'io','ops':'zero','size':256}",
		MEMORY,
		"[{'op':'add','region':'dev','parent':'sys','addr':'128K',"
		"'priority':2},"
		"{'op':'alias_offset','region':'al','offset':'8K'},"
		"{'op':'readonly','region':'al','value':true}],"
		"[{'op':'romd','region':'rd','value':false},"
		"{'op':'nonvolatile','region':'al','value':true},"
		"{'op':'remove','region':'dev'}],"
		"[{'op':'add','region':{'id':'new','name':'new.ram','type':'ram',"
		"'size':'4K'},'parent':'sys','addr':'192K'},"
		"{'op':'disable','region':'al'}],"
		"[{'op':'enable','region':'al'},"
		"{'op':'resize','region':'new','size':'2K'},"
		"{'op':'move','region':'rd','addr':'256K'}]");

	(void)state;
	assert_int_equal(mv_machine_pending_changes(m), 4);
	expect_apply_ok(m, "0-fff ram@2000 ro\n"
			   "10000-10fff rd@0\n"
			   "20000-200ff dev@0");
	assert_int_equal(mv_region_priority(find(m, "dev")), 2);
	expect_apply_ok(m, "0-fff ram@2000 ro nv\n"
			   "10000-10fff rd@0");
	assert_string_equal(mv_region_type(find(m, "rd")), "i/o");
	assert_null(mv_region_container(find(m, "dev")));
	expect_apply_ok(m, "10000-10fff rd@0\n"
			   "30000-30fff new.ram@0");
	expect_apply_ok(m, "0-fff ram@2000 ro nv\n"
			   "30000-307ff new.ram@0\n"
			   "40000-40fff rd@0");
	mv_machine_free(m);
}

/*
 * A refused op names its path; the ops before it in its transaction stay
 * applied, and the next transaction still runs.
 */
static void test_change_errors_name_the_op(void **state)
{
	struct mv_machine *m = load_parts(
		SYS ",{'id':'loop','type':'container','size':'64K'},"
		    "{'id':'c','type':'container','size':'4K','parent':'loop'},"
		    "{'id':'ram','type':'ram','size':'4K','parent':'c'},"
		    "{'id':'top','type':'alias','target':'loop','size':'64K',"
		    "'parent':'sys'},"
		    "{'id':'dev','type':'io','size':'4K'}",
		MEMORY,
		"[{'op':'move','region':'ram','addr':'1K'},"
		"{'op':'add','region':'loop','parent':'c'}],"
		"[{'op':'add','region':'c','parent':'sys'}],"
		"[{'op':'remove','region':'loop'}],"
		"[{'op':'add','region':{'id':'f','type':'ram','size':'4K',"
		"'backend':'file','path':'/nonexistent/memvirt/f'},"
		"'parent':'sys'}],"
		"[{'op':'disable','region':'f'}],"
		"[{'op':'add','region':'dev','parent':'f'}],"
		"[{'op':'resize','region':'ram','size':'8K'}],"
		"[{'op':'move','region':'ram','addr':0}]");

	(void)state;
	expect_apply_error(m, -ELOOP,
			   "t.json: $.changes[0][1]: adding 'loop' to 'c' "
			   "would make a cycle");
	mv_test_expect_view(memory(m), "400-fff ram@0");
	expect_apply_error(m, -EBUSY,
			   "t.json: $.changes[1][0]: 'c' is already mapped; "
			   "remove it first");
	expect_apply_error(m, -ENOENT,
			   "t.json: $.changes[2][0]: 'loop' is not mapped");
	expect_apply_error(m, -ENOENT,
			   "t.json: $.changes[3][0].region: cannot create ram "
			   "region 'f': No such file or directory");
	expect_apply_error(m, -ENOENT,
			   "t.json: $.changes[4][0].region: no region with id "
			   "'f'");
	expect_apply_error(m, -ENOENT,
			   "t.json: $.changes[5][0].parent: no region with id "
			   "'f'");
	expect_apply_error(m, -EINVAL,
			   "t.json: $.changes[6][0]: resize 'ram' failed: "
			   "Invalid argument");
	expect_apply_ok(m, "0-fff ram@0");
	assert_int_equal(mv_machine_pending_changes(m), 0);
	mv_machine_free(m);
}

/* ---- files ------------------------------------------------------------ */

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_machine_json.XXXXXX";
	struct mv_machine *m = NULL;
	struct mv_error err = { "" };
	char *text = q(tiny), want[600];
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(mv_machine_load_file(path, &m, &err), 0);
	assert_int_equal(mv_machine_pending_changes(m), 2);
	mv_machine_free(m);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\n\"memvirt-machine\": 1,\n\"regions\": [ }", f);
	fclose(f);
	assert_int_equal(mv_machine_load_file(path, &m, &err), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:3:14: JSON syntax error: unexpected token near '}'", path);
	assert_string_equal(err.msg, want);
	unlink(path);

	assert_int_equal(mv_machine_load_file(path, &m, &err), -ENOENT);
	assert_null(m);
	snprintf(want, sizeof(want),
		 "%s: cannot open: No such file or directory", path);
	assert_string_equal(err.msg, want);
	free(text);
}

/* ---- malformed documents: every failure is clean ------------------------ */

/* Loading @text fails cleanly, with a message naming the origin. */
static void check_error_prefix(const char *text)
{
	struct mv_machine *m = (struct mv_machine *)1;
	struct mv_error err = { "" };

	assert_true(mv_machine_load_string(text, ORIGIN, &m, &err) < 0);
	assert_null(m);
	assert_memory_equal(err.msg, ORIGIN ":", strlen(ORIGIN ":"));
}

/* Load @doc and check the outcome: a machine, or a message naming @origin. */
static void load_any(json_t *doc)
{
	struct mv_machine *m = NULL;
	struct mv_error err = { "" };
	char *text = json_dumps(doc, 0);
	int ret;

	assert_non_null(text);
	ret = mv_machine_load_string(text, ORIGIN, &m, &err);
	if (ret) {
		assert_null(m);
		assert_true(ret < 0);
		assert_memory_equal(err.msg, ORIGIN ":", strlen(ORIGIN ":"));
	} else {
		mv_test_check_views(m);
		while (mv_machine_pending_changes(m))
			mv_machine_apply_change(m, &err);
		mv_test_check_views(m);
		mv_machine_free(m);
	}
	free(text);
}

/* Replace every member of every object under @v by each bad value. */
static void mutate_members(json_t *root, json_t *v, json_t *const *bad,
			   size_t nr_bad)
{
	const char *key;
	json_t *orig;
	size_t i, j;
	void *it;

	if (json_is_array(v))
		for (i = 0; i < json_array_size(v); i++)
			mutate_members(root, json_array_get(v, i), bad, nr_bad);
	if (!json_is_object(v))
		return;
	for (it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
		key = json_object_iter_key(it);
		orig = json_incref(json_object_iter_value(it));
		for (j = 0; j < nr_bad; j++) {
			json_object_iter_set(v, it, bad[j]);
			load_any(root);
		}
		json_object_iter_set_new(v, it, orig);
		mutate_members(root, orig, bad, nr_bad);
		(void)key;
	}
}

/* Drop each member of each object in turn. */
static void drop_members(json_t *root, json_t *v)
{
	json_t *orig;
	char *key;
	size_t i, n;
	void *it;

	if (json_is_array(v))
		for (i = 0; i < json_array_size(v); i++)
			drop_members(root, json_array_get(v, i));
	if (!json_is_object(v))
		return;
	n = json_object_size(v);
	for (i = 0; i < n; i++) {
		/* Take the first key; putting it back moves it to the end. */
		it = json_object_iter(v);
		key = strdup(json_object_iter_key(it));
		assert_non_null(key);
		orig = json_incref(json_object_iter_value(it));
		json_object_del(v, key);
		load_any(root);
		json_object_set_new(v, key, orig);
		drop_members(root, orig);
		free(key);
	}
}

static const char rich[] =
	"{'memvirt-machine': 1, 'name': 'rich', 'regions': ["
	" {'id': 'sys', 'type': 'container', 'size': '16E'},"
	" {'id': 'ram', 'type': 'ram', 'size': '1M', 'max_size': '2M',"
	"  'block': 'blk', 'backend': 'memfd', 'share': true, 'thp': false,"
	"  'prealloc': false},"
	" {'id': 'lo', 'type': 'alias', 'target': 'ram', 'offset': '4K',"
	"  'size': '64K', 'parent': 'sys', 'addr': 0, 'readonly': true},"
	" {'id': 'rd', 'type': 'rom_device', 'ops': 'zero', 'size': '4K',"
	"  'romd': false, 'parent': 'sys', 'addr': '1M', 'priority': -1},"
	" {'id': 'io', 'type': 'io', 'ops': 'unassigned-io', 'size': 8,"
	"  'owner': 'o', 'enabled': false, 'nonvolatile': true},"
	" {'id': 'res', 'type': 'reservation', 'size': '64K', 'name': 'hole',"
	"  'parent': 'sys', 'addr': '0x8000', 'priority': 1},"
	" {'id': 'rom', 'type': 'rom', 'size': '4K', 'thp': true}],"
	" 'address_spaces': [{'name': 'memory', 'root': 'sys'},"
	"  {'name': 'io', 'root': 'io'}],"
	" 'changes': ["
	"  [{'op': 'add', 'region': 'io', 'parent': 'sys', 'addr': '2M',"
	"    'priority': 3}, {'op': 'enable', 'region': 'io'}],"
	"  [{'op': 'add', 'region': {'id': 'n', 'type': 'alias',"
	"    'target': 'rom', 'size': '4K'}, 'parent': 'sys'},"
	"   {'op': 'alias_offset', 'region': 'lo', 'offset': 0},"
	"   {'op': 'romd', 'region': 'rd', 'value': true},"
	"   {'op': 'resize', 'region': 'lo', 'size': '8K'},"
	"   {'op': 'move', 'region': 'res', 'addr': '3M'},"
	"   {'op': 'readonly', 'region': 'rom', 'value': false},"
	"   {'op': 'nonvolatile', 'region': 'n', 'value': true},"
	"   {'op': 'remove', 'region': 'lo'}, {'op': 'disable', 'region': 'n'}"
	"]]}";

/*
 * Allocation failures cannot be injected into a load (it creates the
 * machine), so walk the error paths with malformed variants of a rich
 * document instead: every value replaced by a wrong one, every key dropped.
 * ASan's leak check fails the test if any path leaks.
 */
static void test_malformed_documents_fail_cleanly(void **state)
{
	char *text = q(rich);
	json_t *bad[] = {
		json_true(),	    json_null(),
		json_integer(-1),   json_integer(1ll << 32),
		json_real(0.5),	    json_string(""),
		json_string("sys"), json_string("16E"),
		json_array(),	    json_object(),
	};
	size_t i, nr = sizeof(bad) / sizeof(bad[0]);
	json_t *root = json_loads(text, 0, NULL);

	(void)state;
	assert_non_null(root);
	load_any(root);
	mutate_members(root, root, bad, nr);
	drop_members(root, root);
	for (i = strlen(text); i-- > 0;) {
		text[i] = '\0';
		check_error_prefix(text);
	}
	for (i = 0; i < nr; i++)
		json_decref(bad[i]);
	json_decref(root);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_file_builds_regions),
		cmocka_unit_test(test_document_name_names_the_machine),
		cmocka_unit_test(test_region_attributes),
		cmocka_unit_test(test_sizes_2_64_and_suffixes),
		cmocka_unit_test(test_placement_order_decides_ties),
		cmocka_unit_test(test_alias_declared_before_target),
		cmocka_unit_test(test_ram_blocks_follow_array_order),
		cmocka_unit_test(test_syntax_error_gives_line_and_column),
		cmocka_unit_test(test_top_level_errors),
		cmocka_unit_test(test_region_errors),
		cmocka_unit_test(test_change_errors_found_at_load),
		cmocka_unit_test(test_build_errors_free_everything),
		cmocka_unit_test(test_changes_apply_in_order),
		cmocka_unit_test(test_every_change_op),
		cmocka_unit_test(test_change_errors_name_the_op),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_malformed_documents_fail_cleanly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
