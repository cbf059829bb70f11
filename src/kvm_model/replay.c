// SPDX-License-Identifier: MIT
/*
 * The replay format (docs/kvm-model.md): parse a whole file into a program
 * first -- a file with any error runs nothing -- then execute it one
 * operation at a time against a struct mv_backend.  The text is outside
 * input (tests/fuzz/fuzz_replay.c): every number is range-checked, every
 * key known, and messages print only what was read, made printable.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "replay.h"

#define PAGE 0x1000ull
#define MAX_TOKENS 16
#define MAX_BITS_DIGITS 16384 /* bits=HEX: up to 65536 pages */
#define CAP_MANUAL 168	      /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
#define CAP_RING 192	      /* KVM_CAP_DIRTY_LOG_RING */
#define DEFAULT_MAX_BITMAP (256ull << 20)

/* ---- parsing ----------------------------------------------------------- */

struct token {
	const char *p;
	size_t len;
};

struct parser {
	const char *name;
	unsigned line;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int perr(struct parser *ps,
						      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!ps->errlen)
		return -EINVAL;
	n = snprintf(ps->err, ps->errlen, "%s:%u: ", ps->name, ps->line);
	if (n < 0 || (size_t)n >= ps->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A token as printable text, cut at 40 characters (for messages). */
static const char *shown(struct token t, char *buf, size_t len)
{
	size_t i, n = t.len < 40 ? t.len : 40;

	if (n >= len)
		n = len - 1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t.p[i];

		buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	buf[n] = 0;
	if (t.len > n && n >= 3)
		memcpy(buf + n - 3, "...", 3);
	return buf;
}

static bool tok_is(struct token t, const char *s)
{
	return t.len == strlen(s) && !memcmp(t.p, s, t.len);
}

static bool tok_prefix(struct token *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len < n || memcmp(t->p, s, n))
		return false;
	t->p += n;
	t->len -= n;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decimal or 0x-hex, no sign, no overflow: 0 or -EINVAL. */
static int parse_u64(struct token t, uint64_t *v)
{
	uint64_t x = 0;
	bool hex = t.len > 2 && t.p[0] == '0' && (t.p[1] | 0x20) == 'x';
	size_t i = hex ? 2 : 0;

	if (i >= t.len)
		return -EINVAL;
	for (; i < t.len; i++) {
		int d = hex ? hexval(t.p[i]) :
			      (t.p[i] >= '0' && t.p[i] <= '9' ? t.p[i] - '0' :
								-1);
		unsigned base = hex ? 16 : 10;

		if (d < 0 || x > (UINT64_MAX - (uint64_t)d) / base)
			return -EINVAL;
		x = x * base + (uint64_t)d;
	}
	*v = x;
	return 0;
}

static int parse_num(struct parser *ps, struct token key, struct token val,
		     uint64_t max, uint64_t *v)
{
	char a[48], b[48];

	if (parse_u64(val, v) || *v > max)
		return perr(ps, "%s=%s: not a number (decimal or 0x-hex)%s",
			    shown(key, a, sizeof(a)), shown(val, b, sizeof(b)),
			    max < UINT64_MAX ? " in range" : "");
	return 0;
}

/* hva=A | B | A+OFF | B+OFF | abs:ADDR */
static int parse_hva(struct parser *ps, struct token val,
		     struct mv_replay_op *op)
{
	char a[48];
	struct token t = val;

	op->hva_off = 0;
	if (tok_prefix(&t, "abs:")) {
		op->hva_base = MV_REPLAY_HVA_ABS;
		if (!parse_u64(t, &op->hva_off))
			return 0;
	} else if (t.len && (t.p[0] == 'A' || t.p[0] == 'B')) {
		op->hva_base = t.p[0] == 'A' ? MV_REPLAY_HVA_A :
					       MV_REPLAY_HVA_B;
		t.p++;
		t.len--;
		if (!t.len)
			return 0;
		if (tok_prefix(&t, "+") && !parse_u64(t, &op->hva_off))
			return 0;
	}
	return perr(ps, "hva=%s: expected A, B, A+OFF, B+OFF or abs:ADDR",
		    shown(val, a, sizeof(a)));
}

/* gmem=new:SIZE | fd:INDEX | fd:-1 | memfd */
static int parse_gmem(struct parser *ps, struct token val,
		      struct mv_replay_op *op)
{
	char a[48];
	struct token t = val;
	uint64_t v;

	if (tok_prefix(&t, "new:") && !parse_u64(t, &op->gmem_size)) {
		op->gmem = MV_REPLAY_GMEM_NEW;
		return 0;
	}
	t = val;
	if (tok_prefix(&t, "fd:")) {
		op->gmem = MV_REPLAY_GMEM_FD;
		if (tok_is(t, "-1")) {
			op->gmem_index = -1;
			return 0;
		}
		if (!parse_u64(t, &v) && v <= INT32_MAX) {
			op->gmem_index = (int64_t)v;
			return 0;
		}
	}
	if (tok_is(val, "memfd")) {
		op->gmem = MV_REPLAY_GMEM_MEMFD;
		return 0;
	}
	return perr(ps, "gmem=%s: expected new:SIZE, fd:INDEX, fd:-1 or memfd",
		    shown(val, a, sizeof(a)));
}

/* bits=all | HEX (bit i of the number = page first + i) */
static int parse_bits(struct parser *ps, struct token val,
		      struct mv_replay_op *op)
{
	char a[48];
	struct token t = val;
	size_t i, n;

	if (tok_is(val, "all")) {
		op->bits_all = true;
		return 0;
	}
	if (!tok_prefix(&t, "0x"))
		tok_prefix(&t, "0X");
	if (!t.len || t.len > MAX_BITS_DIGITS)
		return perr(ps, "bits=%s: expected all or 1 to %u hex digits",
			    shown(val, a, sizeof(a)), MAX_BITS_DIGITS);
	n = (t.len + 15) / 16;
	op->bits = calloc(n, sizeof(uint64_t));
	if (!op->bits)
		return -ENOMEM;
	op->bits_words = n;
	op->bits_all = false;
	for (i = 0; i < t.len; i++) {
		int d = hexval(t.p[t.len - 1 - i]);

		if (d < 0)
			return perr(ps, "bits=%s: not a hex number",
				    shown(val, a, sizeof(a)));
		op->bits[i / 16] |= (uint64_t)d << (4 * (i % 16));
	}
	return 0;
}

/* The keys each operation takes; "*" marks the required ones. */
static const struct {
	const char *name;
	enum mv_replay_kind kind;
	const char *keys;
} op_table[] = {
	{ "vm", MV_REPLAY_VM, "" },
	{ "set_region", MV_REPLAY_SET_REGION, "*slot flags gpa *size hva" },
	{ "set_region2", MV_REPLAY_SET_REGION2,
	  "*slot flags gpa *size hva gmem gmem_offset pad" },
	{ "enable_cap", MV_REPLAY_ENABLE_CAP, "*name *arg" },
	{ "create_vcpu", MV_REPLAY_CREATE_VCPU, "" },
	{ "get_dirty_log", MV_REPLAY_GET_DIRTY_LOG, "*slot" },
	{ "clear_dirty_log", MV_REPLAY_CLEAR_DIRTY_LOG,
	  "*slot *first *num bits" },
	{ "guest_write", MV_REPLAY_GUEST_WRITE, "*gpa" },
	{ "reset_rings", MV_REPLAY_RESET_RINGS, "" },
	{ "lookup", MV_REPLAY_LOOKUP, "*gpa" },
};

static const char *const kind_names[] = {
	"vm",	       "set_region",	"set_region2",	   "enable_cap",
	"create_vcpu", "get_dirty_log", "clear_dirty_log", "guest_write",
	"reset_rings", "lookup",
};

/* Index of @key in the space-separated @keys, or -1; *@req if "*key". */
static int key_index(const char *keys, struct token key, bool *req)
{
	int i = 0;

	while (*keys) {
		const char *end = strchr(keys, ' ');
		size_t n = end ? (size_t)(end - keys) : strlen(keys);
		bool r = *keys == '*';

		if (n - r == key.len && !memcmp(keys + r, key.p, key.len)) {
			*req = r;
			return i;
		}
		keys += n + (end != NULL);
		i++;
	}
	return -1;
}

static int parse_value(struct parser *ps, struct token key, struct token val,
		       struct mv_replay_op *op)
{
	uint64_t v;
	int ret = 0;
	char a[48];

	if (tok_is(key, "slot") || tok_is(key, "flags")) {
		ret = parse_num(ps, key, val, UINT32_MAX, &v);
		*(tok_is(key, "slot") ? &op->slot : &op->flags) = (uint32_t)v;
	} else if (tok_is(key, "first") || tok_is(key, "num")) {
		ret = parse_num(ps, key, val, UINT32_MAX, &v);
		*(tok_is(key, "first") ? &op->first : &op->num) = (uint32_t)v;
	} else if (tok_is(key, "gpa")) {
		ret = parse_num(ps, key, val, UINT64_MAX, &op->gpa);
	} else if (tok_is(key, "size")) {
		ret = parse_num(ps, key, val, UINT64_MAX, &op->size);
	} else if (tok_is(key, "gmem_offset")) {
		ret = parse_num(ps, key, val, UINT64_MAX, &op->gmem_offset);
	} else if (tok_is(key, "pad")) {
		ret = parse_num(ps, key, val, UINT64_MAX, &op->pad);
	} else if (tok_is(key, "arg")) {
		ret = parse_num(ps, key, val, UINT64_MAX, &op->arg);
	} else if (tok_is(key, "hva")) {
		ret = parse_hva(ps, val, op);
	} else if (tok_is(key, "gmem")) {
		ret = parse_gmem(ps, val, op);
	} else if (tok_is(key, "bits")) {
		ret = parse_bits(ps, val, op);
	} else if (tok_is(key, "name")) {
		if (tok_is(val, "MANUAL_DIRTY_LOG_PROTECT2"))
			op->cap = CAP_MANUAL;
		else if (tok_is(val, "DIRTY_LOG_RING"))
			op->cap = CAP_RING;
		else
			ret = perr(ps,
				   "name=%s: expected MANUAL_DIRTY_LOG_PROTECT2"
				   " or DIRTY_LOG_RING",
				   shown(val, a, sizeof(a)));
	}
	return ret;
}

/* Every "*key" of @keys is in @seen (bit i = the i-th key). */
static int check_required(struct parser *ps, const char *op, const char *keys,
			  unsigned seen)
{
	unsigned i;

	for (i = 0; *keys; i++) {
		size_t n = strcspn(keys, " ");

		if (*keys == '*' && !(seen & 1u << i))
			return perr(ps, "%s: missing %.*s=", op, (int)n - 1,
				    keys + 1);
		keys += n + (keys[n] == ' ');
	}
	return 0;
}

static int parse_op(struct parser *ps, struct token *tok, unsigned n,
		    struct mv_replay_op *op)
{
	unsigned seen = 0, i;
	size_t k;
	char a[48];
	int ret;

	memset(op, 0, sizeof(*op));
	op->line = ps->line;
	op->bits_all = true;
	for (k = 0; k < sizeof(op_table) / sizeof(op_table[0]); k++)
		if (tok_is(tok[0], op_table[k].name))
			break;
	if (k == sizeof(op_table) / sizeof(op_table[0]))
		return perr(ps, "unknown operation '%s'",
			    shown(tok[0], a, sizeof(a)));
	op->kind = op_table[k].kind;
	for (i = 1; i < n; i++) {
		const char *eq = memchr(tok[i].p, '=', tok[i].len);
		struct token key = { tok[i].p,
				     eq ? (size_t)(eq - tok[i].p) : 0 };
		struct token val;
		bool req;
		int idx = eq ? key_index(op_table[k].keys, key, &req) : -1;

		if (idx < 0)
			return perr(ps, "%s: unexpected '%s'", op_table[k].name,
				    shown(tok[i], a, sizeof(a)));
		if (seen & 1u << idx)
			return perr(ps, "%s: '%s' given twice",
				    op_table[k].name, shown(key, a, sizeof(a)));
		seen |= 1u << idx;
		val.p = eq + 1;
		val.len = tok[i].len - key.len - 1;
		ret = parse_value(ps, key, val, op);
		if (ret)
			return ret;
	}
	return check_required(ps, op_table[k].name, op_table[k].keys, seen);
}

static void op_fini(struct mv_replay_op *op)
{
	free(op->bits);
	op->bits = NULL;
}

void mv_replay_free(struct mv_replay *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nr_ops; i++)
		op_fini(&p->ops[i]);
	free(p->ops);
	free(p);
}

/* Takes @op (and its bits) into @p. */
static int program_push(struct mv_replay *p, struct mv_replay_op *op)
{
	if (p->nr_ops == p->cap_ops) {
		size_t n = p->cap_ops ? 2 * p->cap_ops : 64;
		struct mv_replay_op *o = realloc(p->ops, n * sizeof(*o));

		if (!o)
			return -ENOMEM;
		p->ops = o;
		p->cap_ops = n;
	}
	p->ops[p->nr_ops++] = *op;
	return 0;
}

int mv_replay_append(struct mv_replay *p, const struct mv_replay_op *op)
{
	struct mv_replay_op c = *op;
	int ret;

	if (op->bits) {
		c.bits = malloc(op->bits_words * sizeof(uint64_t));
		if (!c.bits)
			return -ENOMEM;
		memcpy(c.bits, op->bits, op->bits_words * sizeof(uint64_t));
	}
	ret = program_push(p, &c);
	if (ret)
		op_fini(&c);
	return ret;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line, without its newline: 0, or -EINVAL/-ENOMEM. */
static int parse_line(struct parser *ps, const char *s, size_t len,
		      struct mv_replay *p)
{
	struct token tok[MAX_TOKENS];
	struct mv_replay_op op;
	unsigned n = 0;
	size_t i = 0;
	int ret;

	while (i < len && s[i] != '#') {
		size_t start;

		if (is_space(s[i])) {
			i++;
			continue;
		}
		if (n == MAX_TOKENS)
			return perr(ps, "more than %d words", MAX_TOKENS);
		start = i;
		while (i < len && !is_space(s[i]) && s[i] != '#')
			i++;
		tok[n].p = s + start;
		tok[n++].len = i - start;
	}
	if (!n)
		return 0;
	ret = parse_op(ps, tok, n, &op);
	if (!ret)
		ret = program_push(p, &op);
	if (ret)
		op_fini(&op);
	return ret;
}

int mv_replay_parse(const char *text, size_t len, const char *name,
		    struct mv_replay **out, char *err, size_t errlen)
{
	struct parser ps = { .name = name ? name : "replay",
			     .err = err,
			     .errlen = err ? errlen : 0 };
	struct mv_replay *p = calloc(1, sizeof(*p));
	size_t pos = 0;
	int ret = p ? 0 : -ENOMEM;

	if (ps.errlen)
		err[0] = 0;
	while (!ret && pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		ps.line++;
		ret = parse_line(&ps, text + pos, n, p);
		pos += n + 1;
	}
	if (ret == -ENOMEM && ps.errlen)
		snprintf(err, errlen, "%s:%u: out of memory", ps.name, ps.line);
	if (ret) {
		mv_replay_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

/* ---- formatting -------------------------------------------------------- */

static void add(char *buf, size_t len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

static void format_region(const struct mv_replay_op *op, char *buf, size_t len,
			  size_t *pos)
{
	static const char *const base[] = { "abs:", "A+", "B+" };

	add(buf, len, pos,
	    " slot=%#x flags=%#x gpa=%#llx size=%#llx hva=%s%#llx", op->slot,
	    op->flags, (unsigned long long)op->gpa,
	    (unsigned long long)op->size, base[op->hva_base],
	    (unsigned long long)op->hva_off);
	if (op->kind != MV_REPLAY_SET_REGION2)
		return;
	if (op->gmem == MV_REPLAY_GMEM_NEW)
		add(buf, len, pos, " gmem=new:%#llx",
		    (unsigned long long)op->gmem_size);
	else if (op->gmem == MV_REPLAY_GMEM_FD)
		add(buf, len, pos, " gmem=fd:%lld", (long long)op->gmem_index);
	else if (op->gmem == MV_REPLAY_GMEM_MEMFD)
		add(buf, len, pos, " gmem=memfd");
	if (op->gmem_offset)
		add(buf, len, pos, " gmem_offset=%#llx",
		    (unsigned long long)op->gmem_offset);
	if (op->pad)
		add(buf, len, pos, " pad=%#llx", (unsigned long long)op->pad);
}

void mv_replay_op_format(const struct mv_replay_op *op, char *buf, size_t len)
{
	size_t pos = 0, i;

	if (!len)
		return;
	buf[0] = 0;
	add(buf, len, &pos, "%s", kind_names[op->kind]);
	switch (op->kind) {
	case MV_REPLAY_SET_REGION:
	case MV_REPLAY_SET_REGION2:
		format_region(op, buf, len, &pos);
		break;
	case MV_REPLAY_ENABLE_CAP:
		add(buf, len, &pos, " name=%s arg=%#llx",
		    op->cap == CAP_RING ? "DIRTY_LOG_RING" :
					  "MANUAL_DIRTY_LOG_PROTECT2",
		    (unsigned long long)op->arg);
		break;
	case MV_REPLAY_GET_DIRTY_LOG:
		add(buf, len, &pos, " slot=%#x", op->slot);
		break;
	case MV_REPLAY_CLEAR_DIRTY_LOG:
		add(buf, len, &pos, " slot=%#x first=%u num=%u bits=", op->slot,
		    op->first, op->num);
		if (op->bits_all || !op->bits)
			add(buf, len, &pos, "all");
		for (i = op->bits_all ? 0 : op->bits_words; i-- > 0;)
			add(buf, len, &pos,
			    i == op->bits_words - 1 ? "%llx" : "%016llx",
			    (unsigned long long)op->bits[i]);
		break;
	case MV_REPLAY_GUEST_WRITE:
	case MV_REPLAY_LOOKUP:
		add(buf, len, &pos, " gpa=%#llx", (unsigned long long)op->gpa);
		break;
	default:
		break;
	}
}

static const struct {
	int err;
	const char *name;
} errno_names[] = {
	{ EPERM, "EPERM" },   { ENOENT, "ENOENT" },
	{ ESRCH, "ESRCH" },   { EIO, "EIO" },
	{ ENXIO, "ENXIO" },   { E2BIG, "E2BIG" },
	{ EBADF, "EBADF" },   { EAGAIN, "EAGAIN" },
	{ ENOMEM, "ENOMEM" }, { EACCES, "EACCES" },
	{ EFAULT, "EFAULT" }, { EBUSY, "EBUSY" },
	{ EEXIST, "EEXIST" }, { ENODEV, "ENODEV" },
	{ EINVAL, "EINVAL" }, { ENOSPC, "ENOSPC" },
	{ ERANGE, "ERANGE" }, { ENOSYS, "ENOSYS" },
	{ ENOTTY, "ENOTTY" }, { EOPNOTSUPP, "EOPNOTSUPP" },
};

const char *mv_replay_errno_name(int err, char *buf, size_t len)
{
	size_t i;

	if (err < 0)
		err = -err;
	for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].err == err)
			return errno_names[i].name;
	snprintf(buf, len, "E%d", err);
	return buf;
}

void mv_replay_result_format(const struct mv_replay_result *r, char *buf,
			     size_t len)
{
	char e[16];

	if (r->err)
		snprintf(buf, len, "%s",
			 mv_replay_errno_name(r->err, e, sizeof(e)));
	else if (!r->has)
		snprintf(buf, len, "OK");
	else if (r->none)
		snprintf(buf, len, "OK result=none");
	else
		snprintf(buf, len, "OK result=%llu",
			 (unsigned long long)r->value);
}

bool mv_replay_result_equal(const struct mv_replay_result *a,
			    const struct mv_replay_result *b)
{
	size_t i, n = a->words > b->words ? a->words : b->words;

	if (a->err != b->err || a->has != b->has || a->none != b->none ||
	    (a->has && a->value != b->value))
		return false;
	for (i = 0; i < n; i++) {
		uint64_t x = i < a->words ? a->bitmap[i] : 0;
		uint64_t y = i < b->words ? b->bitmap[i] : 0;

		if (x != y)
			return false;
	}
	return true;
}

/* ---- host memory ------------------------------------------------------- */

#define ALIGN_2M (2ull << 20)
#define GUARD ALIGN_2M

int mv_replay_mem_init(struct mv_replay_mem *m)
{
	/* guard A guard B guard runner guard, plus 2 MiB to align */
	size_t len = 4 * GUARD + 2 * MV_REPLAY_MAP_SIZE +
		     MV_REPLAY_RUNNER_SIZE + ALIGN_2M;
	uint8_t *p, *base;
	int ret = 0;

	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	p = mmap(NULL, len, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->map = p;
	m->map_len = len;
	base = (uint8_t *)(((uintptr_t)p + ALIGN_2M - 1) & ~(ALIGN_2M - 1));
	m->a = base + GUARD;
	m->b = m->a + MV_REPLAY_MAP_SIZE + GUARD;
	m->runner = m->b + MV_REPLAY_MAP_SIZE + GUARD;
	if (mprotect(m->a, MV_REPLAY_MAP_SIZE, PROT_READ | PROT_WRITE) ||
	    mprotect(m->b, MV_REPLAY_MAP_SIZE, PROT_READ | PROT_WRITE) ||
	    mprotect(m->runner, MV_REPLAY_RUNNER_SIZE, PROT_READ | PROT_WRITE))
		ret = -errno;
	if (!ret) {
		m->memfd = memfd_create("mv-replay", MFD_CLOEXEC);
		if (m->memfd < 0)
			ret = -errno;
	}
	if (ret)
		mv_replay_mem_fini(m);
	return ret;
}

void mv_replay_mem_fini(struct mv_replay_mem *m)
{
	if (m->map)
		munmap(m->map, m->map_len);
	if (m->memfd >= 0)
		close(m->memfd);
	memset(m, 0, sizeof(*m));
	m->memfd = -1;
}

/* ---- execution --------------------------------------------------------- */

void mv_replay_runner_place(const struct mv_backend_limits *l,
			    struct mv_backend_runner *r)
{
	unsigned bits = l->guest_phys_bits ? l->guest_phys_bits : 48;
	uint64_t top = bits >= 64 ? ~0ull : 1ull << bits;
	uint64_t gmax = l->max_gfn < (~0ull >> 12) ? (l->max_gfn + 1) << 12 :
						     ~0ull;

	if (gmax < top)
		top = gmax;
	memset(r, 0, sizeof(*r));
	r->slot = l->nr_slots ? l->nr_slots - 1 : 0;
	r->size = MV_REPLAY_RUNNER_SIZE;
	r->gpa = (top - r->size) & ~(ALIGN_2M - 1);
}

int mv_replay_exec_init(struct mv_replay_exec *x, struct mv_backend *b,
			struct mv_replay_mem *mem)
{
	memset(x, 0, sizeof(*x));
	x->b = b;
	x->mem = mem;
	x->max_bitmap_bytes = DEFAULT_MAX_BITMAP;
	x->table_len = (size_t)(b->limits.nr_as ? b->limits.nr_as : 1) *
		       b->limits.nr_slots;
	x->table = calloc(x->table_len ? x->table_len : 1, sizeof(*x->table));
	if (!x->table)
		return -ENOMEM;
	return b->ops->vm(b);
}

void mv_replay_exec_fini(struct mv_replay_exec *x)
{
	free(x->gmem);
	free(x->bitmap);
	free(x->clear);
	free(x->table);
	memset(x, 0, sizeof(*x));
}

static uint64_t resolve_hva(struct mv_replay_exec *x,
			    const struct mv_replay_op *op)
{
	uint64_t base = 0;

	if (op->hva_base == MV_REPLAY_HVA_A)
		base = (uintptr_t)x->mem->a;
	else if (op->hva_base == MV_REPLAY_HVA_B)
		base = (uintptr_t)x->mem->b;
	return base + op->hva_off; /* wraps on purpose */
}

/* gmem= to an fd: a new guest_memfd, an earlier one, -1 or the memfd. */
static int resolve_gmem(struct mv_replay_exec *x, const struct mv_replay_op *op,
			uint32_t *fd)
{
	int *list, f;
	int ret;

	*fd = UINT32_MAX;
	switch (op->gmem) {
	case MV_REPLAY_GMEM_NEW:
		list = realloc(x->gmem, (x->nr_gmem + 1) * sizeof(*list));
		if (!list)
			return -ENOMEM;
		x->gmem = list;
		ret = x->b->ops->gmem_create(x->b, op->gmem_size, &f);
		if (ret)
			return ret;
		x->gmem[x->nr_gmem++] = f;
		*fd = (uint32_t)f;
		return 0;
	case MV_REPLAY_GMEM_FD:
		if (op->gmem_index >= 0 && (size_t)op->gmem_index < x->nr_gmem)
			*fd = (uint32_t)x->gmem[op->gmem_index];
		return 0;
	case MV_REPLAY_GMEM_MEMFD:
		*fd = (uint32_t)x->mem->memfd;
		return 0;
	default:
		return 0;
	}
}

static int exec_set_region(struct mv_replay_exec *x,
			   const struct mv_replay_op *op)
{
	struct mv_region2 r = {
		.slot = op->slot,
		.flags = op->flags,
		.guest_phys_addr = op->gpa,
		.memory_size = op->size,
		.userspace_addr = resolve_hva(x, op),
		.guest_memfd_offset = op->gmem_offset,
		.guest_memfd = UINT32_MAX,
	};
	bool v2 = op->kind == MV_REPLAY_SET_REGION2;
	unsigned i;
	int ret;

	if (v2) {
		ret = resolve_gmem(x, op, &r.guest_memfd);
		if (ret)
			return ret;
		r.pad1 = (uint32_t)op->pad;
		for (i = 0; i < 14; i++)
			r.pad2[i] = op->pad;
	}
	return x->b->ops->set_region(x->b, &r, v2);
}

/* A VM's first vCPU brings the runner's slot, on every backend alike. */
static void exec_add_runner(struct mv_replay_exec *x)
{
	struct mv_region2 r = { 0 };

	mv_replay_runner_place(&x->b->limits, &x->r);
	x->r.hva = x->mem->runner;
	r.slot = x->r.slot;
	r.guest_phys_addr = x->r.gpa;
	r.memory_size = x->r.size;
	r.userspace_addr = (uintptr_t)x->r.hva;
	if (x->b->ops->set_region(x->b, &r, false))
		return;
	x->runner = !x->b->ops->set_runner ||
		    !x->b->ops->set_runner(x->b, &x->r);
}

static int exec_create_vcpu(struct mv_replay_exec *x)
{
	int ret = x->b->ops->create_vcpu(x->b);

	if (ret)
		return ret;
	if (!x->nr_vcpus++)
		exec_add_runner(x);
	return 0;
}

/* The slot's bitmap size in words (1 if the table has no such slot). */
static size_t slot_words(struct mv_replay_exec *x, uint32_t slot)
{
	size_t n = x->b->ops->slots(x->b, x->table, x->table_len), i;

	if (n > x->table_len)
		n = x->table_len;
	for (i = 0; i < n; i++)
		if (x->table[i].slot == slot)
			return (size_t)((x->table[i].size / PAGE + 63) / 64);
	return 1;
}

static int grow(uint64_t **buf, size_t *have, size_t words)
{
	uint64_t *p;

	if (words <= *have)
		return 0;
	p = realloc(*buf, words * sizeof(uint64_t));
	if (!p)
		return -ENOMEM;
	*buf = p;
	*have = words;
	return 0;
}

static void exec_get_dirty_log(struct mv_replay_exec *x,
			       const struct mv_replay_op *op,
			       struct mv_replay_result *r)
{
	size_t words = slot_words(x, op->slot);

	if (words > x->max_bitmap_bytes / 8 ||
	    grow(&x->bitmap, &x->bitmap_words, words)) {
		r->err = -ENOMEM;
		return;
	}
	memset(x->bitmap, 0, words * sizeof(uint64_t));
	r->err = x->b->ops->get_dirty_log(x->b, op->slot, x->bitmap, words,
					  &r->value);
	if (r->err)
		return;
	r->has = true;
	r->bitmap = x->bitmap;
	r->words = words;
}

static int exec_clear_dirty_log(struct mv_replay_exec *x,
				const struct mv_replay_op *op)
{
	size_t words = ((size_t)op->num + 63) / 64, n;

	if (!words)
		words = 1;
	if (words > x->max_bitmap_bytes / 8 ||
	    grow(&x->clear, &x->clear_words, words))
		return -ENOMEM;
	if (op->bits_all || !op->bits) {
		memset(x->clear, 0xff, words * sizeof(uint64_t));
	} else {
		n = op->bits_words < words ? op->bits_words : words;
		memset(x->clear, 0, words * sizeof(uint64_t));
		memcpy(x->clear, op->bits, n * sizeof(uint64_t));
	}
	return x->b->ops->clear_dirty_log(x->b, op->slot, op->first, op->num,
					  x->clear);
}

/*
 * guest_write: refused (-EINVAL) where no guest PTE can point (at or above
 * 2^guest_phys_bits) and inside the runner; -ESRCH without a runner.  A
 * store the ring's full exit left pending is retried first: while that
 * retry is refused the new store is not made (EBUSY); a store refused on
 * its first attempt becomes the pending one (`OK result=1`).
 */
static void exec_guest_write(struct mv_replay_exec *x,
			     const struct mv_replay_op *op,
			     struct mv_replay_result *r)
{
	unsigned bits = x->b->limits.guest_phys_bits ?
				x->b->limits.guest_phys_bits :
				48;
	int ret;

	if (bits < 64 && op->gpa >> bits) {
		r->err = -EINVAL;
		return;
	}
	if (!x->runner) {
		r->err = -ESRCH;
		return;
	}
	if (op->gpa >= x->r.gpa && op->gpa - x->r.gpa < x->r.size) {
		r->err = -EINVAL;
		return;
	}
	if (x->pending) {
		ret = x->b->ops->guest_write(x->b, x->pending_gpa);
		if (ret == -EBUSY) {
			r->err = ret;
			return;
		}
		x->pending = false;
	}
	ret = x->b->ops->guest_write(x->b, op->gpa);
	if (ret == -EBUSY) {
		x->pending = true;
		x->pending_gpa = op->gpa;
		r->has = true;
		r->value = 1;
	} else {
		r->err = ret;
	}
}

static void exec_dispatch(struct mv_replay_exec *x,
			  const struct mv_replay_op *op,
			  struct mv_replay_result *r)
{
	struct mv_backend *b = x->b;
	bool found = false;

	switch (op->kind) {
	case MV_REPLAY_VM:
		r->err = b->ops->vm(b);
		x->nr_vcpus = 0;
		x->runner = false;
		x->pending = false;
		break;
	case MV_REPLAY_SET_REGION:
	case MV_REPLAY_SET_REGION2:
		r->err = exec_set_region(x, op);
		break;
	case MV_REPLAY_ENABLE_CAP:
		r->err = b->ops->enable_cap(b, op->cap, op->arg);
		break;
	case MV_REPLAY_CREATE_VCPU:
		r->err = exec_create_vcpu(x);
		break;
	case MV_REPLAY_GET_DIRTY_LOG:
		exec_get_dirty_log(x, op, r);
		break;
	case MV_REPLAY_CLEAR_DIRTY_LOG:
		r->err = exec_clear_dirty_log(x, op);
		break;
	case MV_REPLAY_GUEST_WRITE:
		exec_guest_write(x, op, r);
		break;
	case MV_REPLAY_RESET_RINGS:
		r->err = b->ops->reset_rings(b, &r->value);
		r->has = !r->err;
		break;
	case MV_REPLAY_LOOKUP:
		r->err = b->ops->lookup(b, op->gpa, &r->value, &found);
		r->has = !r->err;
		r->none = !found;
		break;
	}
}

void mv_replay_exec_op(struct mv_replay_exec *x, const struct mv_replay_op *op,
		       struct mv_replay_result *r)
{
	memset(r, 0, sizeof(*r));
	exec_dispatch(x, op, r);
	x->last_err = r->err;
}

/* ---- comparing two backends -------------------------------------------- */

static void slot_text(const struct mv_backend_slot *s, char *buf, size_t len)
{
	if (!s)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len,
			 "slot %#x flags %#x gpa %#llx size %#llx hva %#llx",
			 s->slot, s->flags, (unsigned long long)s->gpa,
			 (unsigned long long)s->size,
			 (unsigned long long)s->hva);
}

int mv_replay_tables_diff(struct mv_replay_exec *a, struct mv_replay_exec *b,
			  char *msg, size_t len)
{
	size_t na = a->b->ops->slots(a->b, a->table, a->table_len);
	size_t nb = b->b->ops->slots(b->b, b->table, b->table_len);
	size_t i, n;
	char ta[128], tb[128];

	na = na < a->table_len ? na : a->table_len;
	nb = nb < b->table_len ? nb : b->table_len;
	n = na > nb ? na : nb;
	for (i = 0; i < n; i++) {
		const struct mv_backend_slot *sa = i < na ? &a->table[i] : NULL;
		const struct mv_backend_slot *sb = i < nb ? &b->table[i] : NULL;

		if (sa && sb && !memcmp(sa, sb, sizeof(*sa)))
			continue;
		slot_text(sa, ta, sizeof(ta));
		slot_text(sb, tb, sizeof(tb));
		snprintf(msg, len, "slot table entry %zu: %s vs %s", i, ta, tb);
		return 1;
	}
	return 0;
}

/* The first differing word of two bitmaps, for the message. */
static void bitmap_diff_text(const struct mv_replay_result *a,
			     const struct mv_replay_result *b, char *buf,
			     size_t len)
{
	size_t i, n = a->words > b->words ? a->words : b->words;

	snprintf(buf, len, "same bitmaps");
	for (i = 0; i < n; i++) {
		uint64_t x = i < a->words ? a->bitmap[i] : 0;
		uint64_t y = i < b->words ? b->bitmap[i] : 0;

		if (x != y) {
			snprintf(buf, len, "bitmap word %zu: %#llx vs %#llx", i,
				 (unsigned long long)x, (unsigned long long)y);
			return;
		}
	}
}

int mv_replay_diff_op(struct mv_replay_exec *a, struct mv_replay_exec *b,
		      const struct mv_replay_op *op, bool tables, char *msg,
		      size_t len)
{
	struct mv_replay_result ra, rb;
	char sa[48], sb[48], extra[96];

	mv_replay_exec_op(a, op, &ra);
	mv_replay_exec_op(b, op, &rb);
	if (!mv_replay_result_equal(&ra, &rb)) {
		mv_replay_result_format(&ra, sa, sizeof(sa));
		mv_replay_result_format(&rb, sb, sizeof(sb));
		bitmap_diff_text(&ra, &rb, extra, sizeof(extra));
		snprintf(msg, len, "%s vs %s (%s)", sa, sb, extra);
		return 1;
	}
	return tables ? mv_replay_tables_diff(a, b, msg, len) : 0;
}
