/* SPDX-License-Identifier: MIT */
/*
 * Private to the cache: cache.c (setting up, replay, segments, closing),
 * cache-io.c (the requests) and cache-wb.c (writeback and GC).
 *
 * Locks, taken in this order: c->lock (the log, the segments, the
 * counters), then c->ixlock (the index; readers share it).  A handler
 * copies data into its own head segment without either.
 */
#ifndef CBD_BACKEND_CACHE_INTERNAL_H
#define CBD_BACKEND_CACHE_INTERNAL_H

#include <pthread.h>

#include "cache-index.h"
#include "cache.h"
#include "cbdt-cache.h"

#define CACHE_NONE UINT32_MAX
#define CACHE_ERRS 16U /* failed discards remembered for their waiters */

enum cache_role {
	CACHE_FREE = 0,
	CACHE_KEYS, /* holds ksets of the log */
	CACHE_DATA, /* holds written data */
};

struct cache_seg {
	struct cbdt_cache_seg s; /* slot, owner word, record (generation) */
	uint8_t *area;
	enum cache_role role;
	bool head;	   /* a handler's data head, or the log's */
	uint64_t last_seq; /* newest kset in it or naming data in it */
};

struct cache_head {
	uint32_t seg; /* CACHE_NONE until the first write */
	uint32_t off;
};

struct cache {
	struct cache_owner o;
	struct cache_conf conf;
	cbdt_persist_fn persist; /* NULL: a volatile (file) transport */
	struct cbdt_cache_hdr *hdr;
	uint32_t nsegs;
	struct cache_seg *segs;
	uint8_t **areas; /* [nsegs], for the log */
	uint32_t *gens;	 /* [nsegs]: each segment's generation */
	struct cbdt_klog_area klog;
	struct cbdt_kset_ctx kctx;

	pthread_mutex_t lock;
	pthread_cond_t space;	 /* a segment was freed */
	pthread_cond_t wb_wake;	 /* to the writeback thread */
	pthread_cond_t wb_moved; /* from it: wb_seq / tail moved */
	unsigned space_waiters;
	struct cbdt_klog_pos head; /* where the next kset goes */
	struct cbdt_klog_pos tail; /* durable: the oldest not written back */
	uint32_t key_next;	   /* a segment ready for the log, or NONE */
	uint32_t used;		   /* segments not FREE */
	uint64_t dirty;		   /* data bytes between tail and head */
	uint64_t wb_seq;	   /* ksets below it are on the disk */
	uint64_t wb_want;	   /* write back below it, paused or not */
	uint64_t req_seen, req_target; /* cbd-admin's last request: */
	uint64_t req_done;	       /* done once tail reaches target */
	uint32_t *wb_gens;	       /* the writeback's copy of gens */
	struct {
		uint64_t seq; /* a discard the disk failed ... */
		int err;      /* ... and how */
	} errs[CACHE_ERRS];   /* the last CACHE_ERRS of them */
	uint64_t nerrs;
	bool wb_stop;
	bool wb_failing; /* the last writeback pass failed */
	bool closing;	 /* cache_quiesce: stopping */

	pthread_mutex_t rmw_lock; /* writes not on sector boundaries */
	pthread_rwlock_t ixlock;
	struct cache_index *ix;
	uint64_t epoch; /* bumped when extents leave the index */

	/* counters, atomic; published in the header by the writeback */
	uint64_t read_bytes, hit_bytes, write_bytes, wb_bytes;
	pthread_t wb_thread;
	bool wb_running;
};

/* cache.c: a free segment for @role, made the head of its use (its new
 * generation durable); waits for GC while none is free.  Under lock. */
int cache_seg_alloc(struct cache *c, enum cache_role role, uint32_t *out);

/* cache.c: write the control record (the tail), durable.  Under lock. */
int cache_tail_write(struct cache *c);

/* cache-io.c: append a kset of @keys to the log (under lock); its seq
 * in *@seq. */
int cache_log_append(struct cache *c, const struct cbdt_cache_key *keys,
		     unsigned n, uint64_t *seq);

/* cache-io.c: the index learns a kset's keys (replay and the writers). */
int cache_index_apply(struct cache *c, const struct cbdt_cache_key *keys,
		      unsigned n, uint64_t seq);

/* cache-io.c: the writeback did discard key @k of kset @seq: the index
 * forgets the older data of its range. */
int cache_index_discarded(struct cache *c, const struct cbdt_cache_key *k,
			  uint64_t seq);

/* cache-wb.c: start / stop the writeback thread. */
int cache_wb_start(struct cache *c);
void cache_wb_stop(struct cache *c);

/* cache-wb.c: the kset below @seq go to the disk even while the
 * writeback is paused; wakes it (under lock). */
void cache_wb_want(struct cache *c, uint64_t seq);
/* cache-wb.c: a writer waits for room: want what frees a segment. */
void cache_wb_room(struct cache *c);

/* cache-wb.c: free written-back segments (under lock). */
void cache_gc(struct cache *c);

#endif /* CBD_BACKEND_CACHE_INTERNAL_H */
