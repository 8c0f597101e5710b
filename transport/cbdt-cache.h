/* SPDX-License-Identifier: MIT */
/*
 * libcbdt's part of the transport-resident cache (pcache): encoding and
 * validating key sets (format in cache-layout.h).  Every function is
 * pure: safe from any thread.
 */
#ifndef CBD_TRANSPORT_CBDT_CACHE_H
#define CBD_TRANSPORT_CBDT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache-layout.h"

/* What a kset must agree with to be replayed. */
struct cbdt_kset_ctx {
	uint64_t seq;		/* the sequence number expected next */
	uint64_t backend_ident; /* the cache's backend */
	uint64_t backend_size;	/* keys stay inside the backend */
	uint32_t nsegs;		/* segments in the cache's list */
	uint32_t seg_data_size; /* bytes of a segment that keys may name */
	const uint32_t *gens;	/* [nsegs]: each segment's generation now */
};

/* The bytes a kset of @nkeys keys occupies (aligned). */
size_t cbdt_kset_size(unsigned nkeys);

/*
 * Write the kset @seq of @nkeys @keys into @buf (cbdt_kset_size(nkeys)
 * bytes; the padding is zeroed), with @next: the log goes on in segment
 * @next_seg of generation @next_gen.  0, or -EINVAL for too many keys.
 */
int cbdt_kset_encode(void *buf, uint64_t seq, uint64_t backend_ident,
		     const struct cbdt_cache_key *keys, unsigned nkeys,
		     bool next, uint32_t next_seg, uint32_t next_gen);

/*
 * Read the kset at @src (@avail bytes readable) into @out (4096 bytes:
 * a full kset), once, and validate the copy: a concurrent writer of @src
 * cannot change what was checked.  Its size in the log (aligned), or
 *   -ENODATA  no kset here (the end of the log)
 *   -ERANGE   it does not fit in @avail (torn at the end of an area)
 *   -EBADMSG  crc mismatch (torn or corrupt)
 *   -ESTALE   another sequence number or backend, or a key of a reused
 *             segment's former generation: an older log's leftover
 *   -EINVAL   a field out of range (a key outside the backend or its
 *             segment, unknown flags, reserved bits set)
 */
ssize_t cbdt_kset_read(const void *src, size_t avail,
		       const struct cbdt_kset_ctx *ctx,
		       struct cbdt_cache_kset *out);

#endif /* CBD_TRANSPORT_CBDT_CACHE_H */
