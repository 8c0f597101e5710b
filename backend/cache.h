/* SPDX-License-Identifier: MIT */
/*
 * The transport-resident write-back cache (pcache) of one backend.  A
 * write is copied into cache segments of the transport and logged as a
 * key in a kset made durable before the write completes; a flush then
 * has nothing left to do.  A writeback thread copies the logged writes
 * to the disk in log order (the disk is always a consistent older
 * image), fdatasyncs, and moves the log's tail; GC frees written-back
 * segments.  A restart replays the log from the tail.
 *
 * Every function may be called from any handler thread at once; each
 * handler thread writes through its own struct cache_head.
 */
#ifndef CBD_BACKEND_CACHE_H
#define CBD_BACKEND_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "cbdt.h"
#include "store.h"

#define CACHE_GC_PERCENT_DEFAULT 70U
#define CACHE_GC_PERCENT_MAX	 90U

struct cache;
struct cache_head;

/* What the cache serves, and for whom. */
struct cache_owner {
	struct cbdt *t;
	uint16_t host_id;
	uint16_t backend_id;
	uint64_t ident; /* the backend's */
	struct store *store;
	const char *name; /* the backend's, for log lines */
};

struct cache_conf {
	uint64_t size;	     /* bytes of data; whole segments; 0: none */
	unsigned gc_percent; /* GC frees clean segments above this use */
	bool data_crc;	     /* keys carry a crc32c of their data */
	unsigned handlers;   /* at most this many cache heads at once */
};

/*
 * Set up the cache of the backend @o: adopt the one a previous run left
 * (replaying its log), or make one of @conf->size.  An existing cache of
 * another size (or of a backend now configured without one) is written
 * back first and given up.  *@out is NULL when there is no cache to
 * run.  0, -ENOSPC (not enough free segments), -EBUSY (its segments are
 * another live host's), -EBADMSG (a cache that cannot be replayed: not
 * touched), -errno.
 */
int cache_open(const struct cache_owner *o, const struct cache_conf *conf,
	       struct cache **out);

/*
 * A stop is coming: from now on a request waiting for room (or for its
 * discard) gives up with -EIO while the writeback cannot go on, so that
 * the handlers can finish.  A healthy cache makes them wait as before.
 */
void cache_quiesce(struct cache *c);

/*
 * Stop the cache (no request may be running): write back what is dirty
 * for at most @timeout_ms, then, if nothing is left, give its segments
 * back; else leave it for the next start (logged).
 */
void cache_close(struct cache *c, unsigned timeout_ms);

/* A handler's own place to write data; NULL on ENOMEM. */
struct cache_head *cache_head_new(struct cache *c);
void cache_head_free(struct cache *c, struct cache_head *h);

/* The request ops.  0 or -errno. */
int cache_write(struct cache *c, struct cache_head *h, uint64_t off,
		uint32_t len, const void *data);
int cache_read(struct cache *c, uint64_t off, uint32_t len, void *data);
/* DISCARD / WRITE_ZEROES: done by the writeback in log order; returns
 * once it is on the disk. */
int cache_discard(struct cache *c, uint64_t off, uint32_t len, bool zeroes);

/*
 * A request of a channel, as a handler's exec does it (FUA and FLUSH
 * have nothing left to do: a completed write is durable in the log).
 */
int cache_request(struct cache *c, struct cache_head *h,
		  const struct cbdt_request *rq, void *data);

/* Write back everything dirty now; -ETIMEDOUT after @timeout_ms. */
int cache_writeback(struct cache *c, unsigned timeout_ms);

/* Bytes of data the cache holds room for. */
uint64_t cache_size(const struct cache *c);

#endif /* CBD_BACKEND_CACHE_H */
