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
#include "layout.h"

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
 * Read the kset at *@pos into @out (4096 bytes: a full kset), following
 * link ksets into the next segment: the number of keys it has, with
 * *@at (if given) where it was and *@pos where the next one goes; or
 * -ENODATA at the first place without a valid kset (the end of the log,
 * a torn or stale one).  Readers may run beside the log's writer: what
 * is read is a validated private copy.
 */
int cbdt_klog_next(const struct cbdt_klog_area *a, struct cbdt_klog_pos *pos,
		   const struct cbdt_kset_ctx *ctx, struct cbdt_klog_pos *at,
		   struct cbdt_cache_kset *out);

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

/* ---- a backend's cache in the transport (cache.c) -------------------- */

struct cbdt;

/* Makes [p, p + len) of the mapping durable; NULL: nothing can (a file). */
typedef void (*cbdt_persist_fn)(const void *p, size_t len);

/*
 * What makes stores to @t durable: the platform's CPU cache flush on a
 * dax device (libpmem2's persist), NULL on a file transport, which is
 * only as durable as the page cache of its kernel (volatile).
 */
cbdt_persist_fn cbdt_persist_get(const struct cbdt *t);

/* A segment of a cache, as found in the transport. */
struct cbdt_cache_seg {
	uint32_t id;	/* segment slot */
	uint64_t owner; /* its owner word when read */
	struct cbdt_segment_rec rec;
};

/* Segment @seg_id's area (after its header) and header; NULL if out of
 * range. */
uint8_t *cbdt_cache_area(const struct cbdt *t, uint32_t seg_id);
struct cbdt_cache_hdr *cbdt_cache_hdr(const struct cbdt *t, uint32_t seg_id);

/* Bytes of a cache segment's area. */
#define CBDT_CACHE_AREA_SIZE (CBDT_SEG_SIZE - CBDT_CACHE_HDR_SIZE)

/*
 * The ACTIVE cache segments of the backend @ident into @out (at most @max),
 * sorted by cache index: how many (0: no cache), -E2BIG, or -EBADMSG if
 * they are not one whole cache (an index missing or twice, the counts
 * disagree).
 */
int cbdt_cache_find(const struct cbdt *t, uint64_t ident,
		    struct cbdt_cache_seg *out, uint32_t max);

/* Write @s->rec as segment @s->id's record, durable with @persist. */
int cbdt_cache_rec_write(struct cbdt *t, const struct cbdt_cache_seg *s,
			 cbdt_persist_fn persist);

/*
 * 1 if the cache of @segs (all @nsegs of it, from cbdt_cache_find) holds
 * anything not written back: a kset with keys after the tail its index-0
 * record names.  0 if clean, -ENOMEM.
 */
int cbdt_cache_dirty(const struct cbdt *t, const struct cbdt_cache_seg *segs,
		     uint32_t nsegs);

/*
 * 1 if any cache in @t is dirty (*@seg_id: its index-0 segment), 0 if
 * none is, -ENOMEM.  Formatting over it would lose acknowledged writes.
 */
int cbdt_cache_dirty_find(const struct cbdt *t, uint32_t *seg_id);

#endif /* CBD_TRANSPORT_CBDT_CACHE_H */
