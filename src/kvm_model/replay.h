/* SPDX-License-Identifier: MIT */
/*
 * The replay format of `memvirt kvm-model replay` (docs/kvm-model.md, "The
 * replay format"): a parser that turns a text file into a program of
 * operations, and an executor that runs the program against a struct
 * mv_backend -- the model or the real kernel -- one result per operation.
 * The differential tests build programs directly and run them on both.
 */
#ifndef MV_KVM_MODEL_REPLAY_H
#define MV_KVM_MODEL_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backend.h"

enum mv_replay_kind {
	MV_REPLAY_VM,
	MV_REPLAY_SET_REGION,
	MV_REPLAY_SET_REGION2,
	MV_REPLAY_ENABLE_CAP,
	MV_REPLAY_CREATE_VCPU,
	MV_REPLAY_GET_DIRTY_LOG,
	MV_REPLAY_CLEAR_DIRTY_LOG,
	MV_REPLAY_GUEST_WRITE,
	MV_REPLAY_RESET_RINGS,
	MV_REPLAY_LOOKUP,
};

/* What hva= names: a literal address, or an offset into mapping A or B. */
enum mv_replay_hva {
	MV_REPLAY_HVA_ABS,
	MV_REPLAY_HVA_A,
	MV_REPLAY_HVA_B,
};

/* gmem= of set_region2: none (fd -1), new:SIZE, fd:INDEX, or memfd. */
enum mv_replay_gmem {
	MV_REPLAY_GMEM_NONE,
	MV_REPLAY_GMEM_NEW,
	MV_REPLAY_GMEM_FD,
	MV_REPLAY_GMEM_MEMFD,
};

/*
 * struct mv_replay_op - one operation.  Only the fields of @kind matter.
 * @gmem_index: fd:INDEX, the INDEX-th guest_memfd the run created (from
 *              0, across `vm`); -1 passes fd -1.
 * @bits:       clear_dirty_log's bitmap (bit i = page first + i), owned by
 *              the program; @bits_all (the default) sets every bit.
 */
struct mv_replay_op {
	enum mv_replay_kind kind;
	unsigned line;
	uint32_t slot, flags;
	uint64_t gpa, size;
	enum mv_replay_hva hva_base;
	uint64_t hva_off;
	enum mv_replay_gmem gmem;
	uint64_t gmem_size;
	int64_t gmem_index;
	uint64_t gmem_offset;
	uint64_t pad;
	uint32_t cap;
	uint64_t arg;
	uint32_t first, num;
	bool bits_all;
	uint64_t *bits;
	size_t bits_words;
};

/* struct mv_replay - a parsed program; ops[] in file order. */
struct mv_replay {
	struct mv_replay_op *ops;
	size_t nr_ops, cap_ops;
};

/**
 * mv_replay_parse() - parse @len bytes of @text (not necessarily
 * terminated) into *@out.  @name is the file name used in messages.
 * On error nothing is allocated and @err receives "NAME:LINE: problem".
 * Return: 0, -EINVAL (syntax; @err says where), -ENOMEM.
 */
int mv_replay_parse(const char *text, size_t len, const char *name,
		    struct mv_replay **out, char *err, size_t errlen);
void mv_replay_free(struct mv_replay *p);
/* Append @op to @p (copying @op->bits): 0 or -ENOMEM. */
int mv_replay_append(struct mv_replay *p, const struct mv_replay_op *op);
/* @op as one line of the replay format (no newline), for reproduction. */
void mv_replay_op_format(const struct mv_replay_op *op, char *buf, size_t len);

/*
 * struct mv_replay_mem - the host memory of a run, shared by every
 * backend of it: hva A and B (two 64 MiB mappings, 2 MiB-aligned, each
 * between two inaccessible guard areas) and the runner's memory.
 */
#define MV_REPLAY_MAP_SIZE (64ull << 20)
#define MV_REPLAY_RUNNER_SIZE (8ull << 20)
struct mv_replay_mem {
	uint8_t *a, *b, *runner;
	void *map;
	size_t map_len;
	int memfd; /* gmem=memfd: a plain memfd, not a guest_memfd */
};

int mv_replay_mem_init(struct mv_replay_mem *m);
void mv_replay_mem_fini(struct mv_replay_mem *m);

/* The result of one operation: @err 0 or -errno, then data if @has. */
struct mv_replay_result {
	int err;
	bool has;  /* print " result=" */
	bool none; /* lookup found nothing: "result=none" */
	uint64_t value;
	const uint64_t *bitmap; /* get_dirty_log: the bitmap read */
	size_t words;
};

/*
 * struct mv_replay_exec - running a program on one backend.  The runner
 * (the kernel backend's guest-writer) gets slot id nr_slots - 1 and the
 * top 8 MiB below min(2^guest_phys_bits, (max_gfn + 1) * 4 KiB), created
 * at a VM's first successful create_vcpu on every backend alike.
 * @max_bitmap_bytes: clear_dirty_log and get_dirty_log bitmaps larger
 *                    than this give ENOMEM without reaching the backend.
 */
struct mv_replay_exec {
	struct mv_backend *b;
	struct mv_replay_mem *mem;
	int *gmem;
	size_t nr_gmem;
	unsigned nr_vcpus;
	bool runner;
	struct mv_backend_runner r;
	bool pending; /* a store left pending by a full exit, at pending_gpa */
	uint64_t pending_gpa;
	uint64_t *bitmap; /* the last get_dirty_log's bitmap */
	size_t bitmap_words;
	uint64_t *clear; /* clear_dirty_log's argument */
	size_t clear_words;
	struct mv_backend_slot *table; /* scratch for ops->slots */
	size_t table_len;
	size_t max_bitmap_bytes;
	int last_err; /* the last operation's result */
};

/* Starts with a fresh VM (ops->vm).  Return: 0 or -errno. */
int mv_replay_exec_init(struct mv_replay_exec *x, struct mv_backend *b,
			struct mv_replay_mem *mem);
void mv_replay_exec_fini(struct mv_replay_exec *x);
/* Run one operation; *@r stays valid until the next call. */
void mv_replay_exec_op(struct mv_replay_exec *x, const struct mv_replay_op *op,
		       struct mv_replay_result *r);
/* The runner's reserved slot and GPA range for @l. */
void mv_replay_runner_place(const struct mv_backend_limits *l,
			    struct mv_backend_runner *r);

/*
 * Comparing two backends (the differential tests, `replay --diff`):
 * mv_replay_diff_op() runs @op on both and compares the results (errno,
 * data, get_dirty_log's bitmap) and, with @tables, the slot tables after
 * it.  Return: 0 if equal, 1 with @msg saying what differs.
 */
int mv_replay_diff_op(struct mv_replay_exec *a, struct mv_replay_exec *b,
		      const struct mv_replay_op *op, bool tables, char *msg,
		      size_t len);
int mv_replay_tables_diff(struct mv_replay_exec *a, struct mv_replay_exec *b,
			  char *msg, size_t len);

/* "OK", "OK result=N", "OK result=none" or the errno name. */
void mv_replay_result_format(const struct mv_replay_result *r, char *buf,
			     size_t len);
bool mv_replay_result_equal(const struct mv_replay_result *a,
			    const struct mv_replay_result *b);
/* "EINVAL", "EEXIST", ...; "E<number>" for the rest. */
const char *mv_replay_errno_name(int err, char *buf, size_t len);

#endif /* MV_KVM_MODEL_REPLAY_H */
