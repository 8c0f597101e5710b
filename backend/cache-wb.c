/* SPDX-License-Identifier: MIT */
/*
 * The cache's writeback thread: it reads the log from the tail, writes
 * each key's data (or does its discard) to the disk in log order,
 * fdatasyncs, and only then moves the tail in the control record, so
 * that the disk is always a consistent older image and a crash replays
 * from a tail whose every older write is on the disk.  GC then frees
 * written-back segments, oldest first, above cache_gc_percent (or for a
 * writer waiting for room).  It also publishes the counters cbd-status
 * reads and serves cbd-admin's "write back everything now".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "cache-internal.h"
#include "log.h"
#include "util.h"

#define WB_BATCH_BYTES (8U << 20) /* a pass writes about this much ... */
#define WB_BATCH_SETS  1024U	  /* ... or this many ksets, then syncs */
#define WB_IDLE_MS     100U	  /* how often an idle cache looks */
#define WB_RETRY_MS    1000U	  /* after a failed pass */

/* When @ms from now is, on the clock of the cache's conditions. */
static uint64_t deadline_in(unsigned ms)
{
	return cbdt_now_ns() + (uint64_t)ms * 1000000ULL;
}

void cache_gc(struct cache *c)
{
	uint32_t limit =
		(uint32_t)((uint64_t)c->nsegs * c->conf.gc_percent / 100);
	uint32_t nfree = c->nsegs - c->used;

	/* Above the limit, or a writer waits and what is free is only the
	 * log's last segment (a data head needs another; see
	 * cache_seg_alloc). */
	while (c->used > limit || (c->space_waiters && nfree < 2)) {
		uint32_t best = CACHE_NONE;

		for (uint32_t i = 0; i < c->nsegs; i++) {
			const struct cache_seg *s = &c->segs[i];

			if (s->role == CACHE_FREE || s->head ||
			    s->last_seq >= c->tail.seq || i == c->tail.seg ||
			    i == c->key_next)
				continue;
			if (best == CACHE_NONE ||
			    s->last_seq < c->segs[best].last_seq)
				best = i;
		}
		if (best == CACHE_NONE)
			break;
		pthread_rwlock_wrlock(&c->ixlock);
		cache_index_drop_seg(c->ix, best);
		c->epoch++;
		pthread_rwlock_unlock(&c->ixlock);
		c->segs[best].role = CACHE_FREE;
		c->used--;
		nfree++;
	}
	if (nfree)
		pthread_cond_broadcast(&c->space);
}

/* One key to the disk; a failed discard fails its request, not the
 * writeback. */
static int wb_key(struct cache *c, const struct cbdt_cache_key *k, uint64_t seq)
{
	const uint8_t *data;
	int ret;

	if (k->flags & CBDT_KEY_DISCARD) {
		ret = k->flags & CBDT_KEY_ZEROES ?
			      store_write_zeroes(c->o.store, k->off, k->len) :
			      store_discard(c->o.store, k->off, k->len);
		if (ret) {
			log_warn("backend %s: cache: %s of %u bytes at %" PRIu64
				 ": %s",
				 c->o.name,
				 k->flags & CBDT_KEY_ZEROES ? "write zeroes" :
							      "discard",
				 k->len, k->off, strerror(-ret));
			pthread_mutex_lock(&c->lock);
			c->errs[c->nerrs % CACHE_ERRS].seq = seq;
			c->errs[c->nerrs % CACHE_ERRS].err = ret;
			c->nerrs++;
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		return cache_index_discarded(c, k, seq);
	}
	data = c->areas[k->seg] + k->seg_off;
	if ((k->flags & CBDT_KEY_CRC) &&
	    cbdt_crc32c(0, data, k->len) != k->data_crc) {
		log_err("backend %s: cache: the data of %u bytes at %" PRIu64
			" fails its crc: not written back",
			c->o.name, k->len, k->off);
		return -EBADMSG;
	}
	ret = store_write(c->o.store, data, k->off, k->len);
	if (!ret)
		__atomic_fetch_add(&c->wb_bytes, k->len, __ATOMIC_RELAXED);
	return ret;
}

/* Write back a batch from the tail; 0 (also when clean) or -errno. */
static int wb_pass(struct cache *c)
{
	static __thread union {
		struct cbdt_cache_kset k;
		uint8_t b[4096];
	} ks;
	struct cbdt_klog_area a;
	struct cbdt_kset_ctx ctx;
	struct cbdt_klog_pos pos, old, start;
	uint64_t end, head, bytes = 0;
	unsigned sets = 0;
	int n, ret;

	pthread_mutex_lock(&c->lock);
	end = head = c->head.seq;
	pos = start = c->tail;
	/* Paused: what must go, at least one kset (GC may wait on it). */
	if (READ_ONCE(c->hdr->wb_pause) && c->wb_want < end)
		end = c->wb_want > pos.seq ? c->wb_want : pos.seq + 1;
	memcpy(c->wb_gens, c->gens, c->nsegs * sizeof(*c->gens));
	pthread_mutex_unlock(&c->lock);
	a = c->klog;
	a.gens = c->wb_gens;
	ctx = c->kctx;
	ctx.gens = c->wb_gens;

	while (pos.seq < end && bytes < WB_BATCH_BYTES &&
	       sets < WB_BATCH_SETS) {
		uint64_t seq = pos.seq;

		n = cbdt_klog_next(&a, &pos, &ctx, NULL, &ks.k);
		/* A log that ends just past a link (its host died before the
		 * next kset): the link took us to the head, which is no error. */
		if (n < 0 && pos.seq == head)
			break;
		if (n < 0) {
			log_err("backend %s: cache: the log ends at kset %" PRIu64
				", before its head %" PRIu64,
				c->o.name, seq, end);
			return -EBADMSG;
		}
		for (int i = 0; i < n; i++) {
			ret = wb_key(c, &ks.k.keys[i], ks.k.seq);
			if (ret)
				return ret;
			if (!(ks.k.keys[i].flags & CBDT_KEY_DISCARD))
				bytes += ks.k.keys[i].len;
		}
		sets++;
	}
	/* nothing, or only a link: the tail moves past it all the same */
	if (!sets && pos.seq == start.seq && pos.seg == start.seg &&
	    pos.off == start.off)
		return 0;
	ret = store_flush(c->o.store);
	if (ret)
		return ret;
	pthread_mutex_lock(&c->lock);
	old = c->tail;
	c->tail = pos;
	ret = cache_tail_write(c);
	if (ret) {
		c->tail = old; /* GC goes by the durable tail only */
	} else {
		c->wb_seq = pos.seq;
		c->dirty -= bytes < c->dirty ? bytes : c->dirty;
		cache_gc(c);
	}
	pthread_cond_broadcast(&c->wb_moved);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* The counters cbd-status reads (under lock). */
static void wb_publish(struct cache *c)
{
	struct cbdt_cache_hdr *h = c->hdr;

	WRITE_ONCE(h->used, (uint64_t)c->used * CBDT_CACHE_AREA_SIZE);
	WRITE_ONCE(h->dirty, c->dirty);
	WRITE_ONCE(h->read_bytes,
		   __atomic_load_n(&c->read_bytes, __ATOMIC_RELAXED));
	WRITE_ONCE(h->hit_bytes,
		   __atomic_load_n(&c->hit_bytes, __ATOMIC_RELAXED));
	WRITE_ONCE(h->write_bytes,
		   __atomic_load_n(&c->write_bytes, __ATOMIC_RELAXED));
	WRITE_ONCE(h->wb_bytes,
		   __atomic_load_n(&c->wb_bytes, __ATOMIC_RELAXED));
}

/* cbd-admin cache-writeback: done once what was dirty when it asked is
 * on the disk (under lock). */
static void wb_request(struct cache *c)
{
	uint64_t req = __atomic_load_n(&c->hdr->wb_request, __ATOMIC_ACQUIRE);

	if (req != c->req_seen) {
		c->req_seen = req;
		c->req_target = c->head.seq;
		cache_wb_want(c, c->head.seq);
	}
	if (c->req_done != c->req_seen && c->tail.seq >= c->req_target) {
		c->req_done = c->req_seen;
		/* Pairs with cbd-admin's load-acquire of wb_done. */
		__atomic_store_n(&c->hdr->wb_done, c->req_done,
				 __ATOMIC_RELEASE);
	}
}

void cache_wb_want(struct cache *c, uint64_t seq)
{
	if (seq > c->wb_want)
		c->wb_want = seq;
	pthread_cond_signal(&c->wb_wake);
}

/*
 * A writer waits for a segment: write back what frees the oldest one
 * that is no head, and no more (a paused writeback keeps the rest).
 */
void cache_wb_room(struct cache *c)
{
	uint64_t want = c->head.seq;

	for (uint32_t i = 0; i < c->nsegs; i++) {
		const struct cache_seg *s = &c->segs[i];

		if (s->role != CACHE_FREE && !s->head && s->last_seq < want)
			want = s->last_seq + 1;
	}
	cache_wb_want(c, want);
}

/*
 * Dirty, and not paused (or what must go is not on the disk yet, or a
 * writer waits for room that GC could not make yet).  Once two segments
 * are free every waiter gets one (cache_seg_alloc) as soon as it runs:
 * a paused writeback that went on until then wrote back a kset per pass
 * for as long as the woken writer waited for a CPU.
 */
static bool wb_due(const struct cache *c)
{
	return !READ_ONCE(c->hdr->wb_pause) ||
	       (c->space_waiters && c->nsegs - c->used < 2) ||
	       c->tail.seq < c->wb_want;
}

static void *wb_main(void *arg)
{
	struct cache *c = arg;
	unsigned fails = 0;
	uint64_t until;
	int ret;

	pthread_mutex_lock(&c->lock);
	while (!c->wb_stop) {
		wb_request(c);
		wb_publish(c);
		if (c->tail.seq == c->head.seq || !wb_due(c)) {
			cache_gc(c);
			cbdt_cond_wait_until(&c->wb_wake, &c->lock,
					     deadline_in(WB_IDLE_MS));
			continue;
		}
		pthread_mutex_unlock(&c->lock);
		ret = wb_pass(c);
		pthread_mutex_lock(&c->lock);
		if (!ret) {
			if (fails)
				log_info("backend %s: cache: writeback goes on",
					 c->o.name);
			fails = 0;
			c->wb_failing = false;
			continue;
		}
		c->wb_failing = true;
		if (c->closing) { /* requests waiting for room give up */
			pthread_cond_broadcast(&c->space);
			pthread_cond_broadcast(&c->wb_moved);
		}
		if (!fails++)
			log_err("backend %s: cache: writeback failed: %s; retrying every %u ms",
				c->o.name, strerror(-ret), WB_RETRY_MS);
		until = deadline_in(WB_RETRY_MS);
		while (!c->wb_stop &&
		       !cbdt_cond_wait_until(&c->wb_wake, &c->lock, until))
			;
	}
	wb_publish(c);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int cache_wb_start(struct cache *c)
{
	int ret;

	c->wb_gens = calloc(c->nsegs, sizeof(*c->wb_gens));
	if (!c->wb_gens)
		return -ENOMEM;
	c->req_seen = c->req_done =
		__atomic_load_n(&c->hdr->wb_request, __ATOMIC_ACQUIRE);
	ret = pthread_create(&c->wb_thread, NULL, wb_main, c);
	if (ret)
		return -ret;
	thread_name(c->wb_thread, "cache-wb");
	c->wb_running = true;
	return 0;
}

void cache_wb_stop(struct cache *c)
{
	if (!c->wb_running)
		return;
	pthread_mutex_lock(&c->lock);
	c->wb_stop = true;
	pthread_cond_broadcast(&c->wb_wake);
	pthread_cond_broadcast(&c->wb_moved);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->wb_thread, NULL);
	c->wb_running = false;
}

int cache_writeback(struct cache *c, unsigned timeout_ms)
{
	uint64_t target, until = deadline_in(timeout_ms);
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	target = c->head.seq;
	if (timeout_ms) /* 0: only say whether it is clean */
		cache_wb_want(c, target);
	while (timeout_ms && c->tail.seq < target && !c->wb_stop && !ret)
		ret = cbdt_cond_wait_until(&c->wb_moved, &c->lock, until);
	ret = c->tail.seq >= target		? 0 :
	      ret || !timeout_ms || !c->wb_stop ? -ETIMEDOUT :
						  -EIO;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void cache_quiesce(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	pthread_cond_broadcast(&c->space);
	pthread_cond_broadcast(&c->wb_moved);
	pthread_mutex_unlock(&c->lock);
}
