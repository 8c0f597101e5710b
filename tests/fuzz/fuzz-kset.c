/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what a cache replay trusts: a key set from the log
 * (cbdt_kset_read).  Input: 8-byte backend size, 1-byte segment count
 * (1..16), 4-byte expected sequence number, then the log bytes.  The
 * segment generations are fixed (gen = 3 * index + 1; the log's own
 * segment has 5).  An accepted kset
 * is re-checked here with independent 128-bit arithmetic: a disagreement
 * traps.  Single-threaded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbdt-cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR	 13
#define SEG_DATA (16U << 20)
#define IDENT	 0x0123456789abcdefULL
#define SEG_GEN	 5U /* of the segment the log is in */

static union {
	struct cbdt_cache_kset k;
	uint8_t b[4096];
} out;

static void check(const struct cbdt_cache_kset *k, ssize_t r, size_t avail,
		  const struct cbdt_kset_ctx *ctx)
{
	if (r <= 0 || (size_t)r > avail || r % CBDT_KSET_ALIGN ||
	    k->nkeys > CBDT_KSET_KEYS_MAX || k->seq != ctx->seq ||
	    k->backend_ident != IDENT || k->seg_gen != SEG_GEN)
		__builtin_trap();
	if ((k->flags & CBDT_KSET_NEXT_SEG) && k->next_seg >= ctx->nsegs)
		__builtin_trap();
	for (unsigned i = 0; i < k->nkeys; i++) {
		const struct cbdt_cache_key *key = &k->keys[i];
		unsigned __int128 end = (unsigned __int128)key->off + key->len;

		if (!key->len || end > ctx->backend_size || key->off % 512 ||
		    key->len % 512)
			__builtin_trap();
		if (key->flags & CBDT_KEY_DISCARD)
			continue;
		if (key->seg >= ctx->nsegs ||
		    (uint64_t)key->seg_off + key->len > SEG_DATA ||
		    key->seg_gen != ctx->gens[key->seg])
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t gens[16];
	struct cbdt_kset_ctx ctx = {
		.backend_ident = IDENT,
		.seg_data_size = SEG_DATA,
		.gens = gens,
		.seg_gen = SEG_GEN,
	};
	uint32_t seq;
	uint8_t *log;
	ssize_t r;

	if (size < HDR)
		return 0;
	memcpy(&ctx.backend_size, data, 8);
	ctx.nsegs = 1 + data[8] % 16;
	memcpy(&seq, data + 9, 4);
	ctx.seq = seq;
	for (unsigned i = 0; i < 16; i++)
		gens[i] = 3 * i + 1;
	/* a copy of exactly the log bytes: reads past it are caught */
	size -= HDR;
	log = malloc(size ? size : 1);
	if (!log)
		return 0;
	memcpy(log, data + HDR, size);
	for (size_t at = 0; at < size;) {
		r = cbdt_kset_read(log + at, size - at, &ctx, &out.k);
		if (r <= 0)
			break;
		check(&out.k, r, size - at, &ctx);
		at += (size_t)r;
		ctx.seq++;
	}
	free(log);
	return 0;
}
