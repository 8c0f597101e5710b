/* SPDX-License-Identifier: MIT */
/*
 * The in-memory index of a backend's transport-resident cache (pcache):
 * which byte ranges of the backend are held where in the cache.  Extents
 * never overlap: a newer key replaces what it covers of older ones (log
 * order resolves overlapping writes), splitting them where it must.
 * Rebuilt from the key sets at start; never stored.
 *
 * A treap keyed by extent start: expected O(log n) insert, removal and
 * lookup.  Not thread-safe: the cache serialises access (one lock per
 * backend's index).
 */
#ifndef CBD_BACKEND_CACHE_INDEX_H
#define CBD_BACKEND_CACHE_INDEX_H

#include <stdbool.h>
#include <stdint.h>

/* Where a byte range of the backend lives in the cache. */
struct cache_ext {
	uint64_t off; /* backend byte offset */
	uint32_t len; /* bytes, > 0 */
	uint32_t seg; /* cache segment (index in the cache's segment list) */
	uint32_t seg_off; /* byte offset of the data in that segment */
	uint32_t seg_gen; /* the segment's generation when it was written */
	uint64_t seq;	  /* of the kset that wrote it: log order */
};

struct cache_index;

struct cache_index *cache_index_new(void);
void cache_index_free(struct cache_index *ix);

/* Extents held, and the bytes they cover. */
uint64_t cache_index_count(const struct cache_index *ix);
uint64_t cache_index_bytes(const struct cache_index *ix);

/*
 * @e is the newest data for its range: what older extents held of it is
 * forgotten (they are trimmed or split around it).  0 or -ENOMEM (the
 * index is unchanged then).
 */
int cache_index_insert(struct cache_index *ix, const struct cache_ext *e);

/* Forget [off, off + len) (a DISCARD or WRITE_ZEROES went to the disk):
 * 0 or -ENOMEM (unchanged). */
int cache_index_remove(struct cache_index *ix, uint64_t off, uint64_t len);

/*
 * Call @fn for every piece of the cache within [off, off + len), in
 * order, each clipped to the range (a hole between pieces is on the
 * disk).  Stops at, and returns, the first non-zero return of @fn.
 */
typedef int (*cache_index_fn)(void *arg, const struct cache_ext *piece);
int cache_index_lookup(const struct cache_index *ix, uint64_t off, uint64_t len,
		       cache_index_fn fn, void *arg);

/* Forget every extent in segment @seg (of any generation): GC is about
 * to reuse it.  Returns how many were dropped. */
uint64_t cache_index_drop_seg(struct cache_index *ix, uint32_t seg);

#endif /* CBD_BACKEND_CACHE_INDEX_H */
