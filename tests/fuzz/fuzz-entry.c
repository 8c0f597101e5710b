/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what a handler trusts of a channel: the control
 * area (cbdt_channel_ctrl_validate) and every submission entry
 * (cbdt_se_validate).  Input: 4-byte segment size, 8-byte device size, a
 * 64-byte se, then up to 4 KiB of control area (zero padded).  Accepted
 * values are re-checked here with independent 64-bit arithmetic: a
 * disagreement traps.  Single-threaded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbdt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR (4 + 8 + sizeof(struct cbdt_se))

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static bool inside(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
	return off >= lo && off + len <= hi; /* no overflow: all < 2^34 */
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void check_geom(const struct cbdt_channel_geom *g, uint32_t seg_size)
{
	uint64_t se_len = (uint64_t)g->se_count * sizeof(struct cbdt_se);
	uint64_t ce_len = (uint64_t)g->ce_count * sizeof(struct cbdt_ce);

	if (!pow2(g->se_count) || !pow2(g->ce_count) || !g->data_size ||
	    g->data_size % CBDT_DATA_UNIT || (g->flags & ~CBDT_F_ALL))
		__builtin_trap();
	if (!inside(g->se_off, se_len, CBDT_CTRL_SIZE, seg_size) ||
	    !inside(g->ce_off, ce_len, CBDT_CTRL_SIZE, seg_size) ||
	    !inside(g->data_off, g->data_size, CBDT_CTRL_SIZE, seg_size))
		__builtin_trap();
	if (overlap(g->se_off, se_len, g->ce_off, ce_len) ||
	    overlap(g->se_off, se_len, g->data_off, g->data_size) ||
	    overlap(g->ce_off, ce_len, g->data_off, g->data_size))
		__builtin_trap();
}

static void check_se(const struct cbdt_se *se,
		     const struct cbdt_channel_geom *g, uint64_t dev_size)
{
	bool data = se->op == CBDT_OP_READ || se->op == CBDT_OP_WRITE;

	if (se->op < CBDT_OP_READ || se->op > CBDT_OP_MAX ||
	    (se->flags & ~CBDT_SE_FLAGS_ALL))
		__builtin_trap();
	if (se->op == CBDT_OP_FLUSH) {
		if (se->len || se->data_len)
			__builtin_trap();
		return;
	}
	/* 128-bit sum: the one place a 64-bit overflow could hide */
	if (!se->len || (unsigned __int128)se->offset + se->len >
				(unsigned __int128)dev_size)
		__builtin_trap();
	if (!data) {
		if (se->data_len)
			__builtin_trap();
		return;
	}
	if (se->data_len != se->len ||
	    !inside(se->data_off, se->data_len, 0, g->data_size))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cbdt_channel_geom g = {
		/* the default geometry, when the fuzzed one is refused */
		.se_off = CBDT_CTRL_SIZE,
		.se_count = 256,
		.ce_off = CBDT_CTRL_SIZE + 256 * 64,
		.ce_count = 256,
		.data_off = 64 << 10,
		.data_size = CBDT_SEG_SIZE - (64 << 10),
	};
	struct cbdt_channel_ctrl *ctrl;
	struct cbdt_se se;
	uint32_t seg_size;
	uint64_t dev_size;
	size_t n;

	if (size < HDR)
		return 0;
	memcpy(&seg_size, data, 4);
	memcpy(&dev_size, data + 4, 8);
	memcpy(&se, data + 12, sizeof(se));
	ctrl = calloc(1, sizeof(*ctrl));
	if (!ctrl)
		return 0;
	n = size - HDR < sizeof(*ctrl) ? size - HDR : sizeof(*ctrl);
	memcpy(ctrl, data + HDR, n);
	if (cbdt_channel_ctrl_validate(ctrl, seg_size, &g) == 0)
		check_geom(&g, seg_size);
	if (cbdt_se_validate(&se, &g, dev_size) == 0)
		check_se(&se, &g, dev_size);
	free(ctrl);
	return 0;
}
