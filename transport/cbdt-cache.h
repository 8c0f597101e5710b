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
	uint32_t seg_gen;	/* that of the segment the kset is read from */
};

/* The bytes a kset of @nkeys keys occupies (aligned). */
size_t cbdt_kset_size(unsigned nkeys);

/* Where a kset goes and what it says beyond its keys. */
struct cbdt_kset_hdr {
	uint64_t seq;
	uint64_t backend_ident;
	uint32_t seg_gen; /* of the segment it is written to */
	bool next;	  /* the log goes on in segment next_seg ... */
	uint32_t next_seg;
	uint32_t next_gen; /* ... of this generation */
};

/*
 * Write a kset of @nkeys @keys into @buf (cbdt_kset_size(nkeys) bytes;
 * the padding is zeroed).  0, or -EINVAL for too many keys.
 */
int cbdt_kset_encode(void *buf, const struct cbdt_kset_hdr *h,
		     const struct cbdt_cache_key *keys, unsigned nkeys);

/*
 * Read the kset at @src (@avail bytes readable) into @out (4096 bytes:
 * a full kset), once, and validate the copy: a concurrent writer of @src
 * cannot change what was checked.  Its size in the log (aligned), or
 *   -ENODATA  no kset here (the end of the log)
 *   -ERANGE   it does not fit in @avail (torn at the end of an area)
 *   -EBADMSG  crc mismatch (torn or corrupt)
 *   -ESTALE   another sequence number, backend or segment generation, or
 *             a key of a reused segment's former generation: an older
 *             log's leftover
 *   -EINVAL   a field out of range (a key outside the backend or its
 *             segment, unknown flags, reserved bits set)
 */
ssize_t cbdt_kset_read(const void *src, size_t avail,
		       const struct cbdt_kset_ctx *ctx,
		       struct cbdt_cache_kset *out);

/* ---- a key log: ksets appended across segments ---------------------- */

/*
 * The segments a log may use: seg[i] is cache segment i's mapping, of
 * @seg_size bytes (its last CBDT_KSET_ALIGN bytes are kept for the link
 * to the next segment), and gens[i] its generation.  @persist makes
 * [p, p + len) durable (NULL: nothing to do, a volatile cache).
 */
struct cbdt_klog_area {
	uint8_t **seg;
	const uint32_t *gens;
	uint32_t nsegs;
	uint32_t seg_size;
	uint64_t backend_ident;
	void (*persist)(const void *p, size_t len);
};

/* Where a log is: the next kset goes at @off of segment @seg, as @seq. */
struct cbdt_klog_pos {
	uint32_t seg;
	uint32_t off;
	uint64_t seq;
};

/*
 * Append a kset of @nkeys @keys at *@pos and advance it.  When it does
 * not fit in the segment, @next_seg (a free segment with generation
 * gens[next_seg], chosen by the caller) takes the log: a link kset goes
 * first.  0, -ENOSPC (it does not fit and @next_seg is UINT32_MAX: the
 * caller must find a segment), -EINVAL.  Durable (persist) on return.
 */
int cbdt_klog_append(const struct cbdt_klog_area *a, struct cbdt_klog_pos *pos,
		     const struct cbdt_cache_key *keys, unsigned nkeys,
		     uint32_t next_seg);

/*
 * Replay a log from *@pos: @fn gets every key of every valid kset in
 * order (a non-zero return stops and is returned).  *@pos ends where the
 * next kset goes, and 0 is returned, at the first place that holds no
 * valid kset (the end of the log, a torn or stale one).
 */
int cbdt_klog_replay(const struct cbdt_klog_area *a, struct cbdt_klog_pos *pos,
		     const struct cbdt_kset_ctx *ctx,
		     int (*fn)(void *arg, const struct cbdt_cache_key *key),
		     void *arg);

#endif /* CBD_TRANSPORT_CBDT_CACHE_H */
