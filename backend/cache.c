/* SPDX-License-Identifier: MIT */
/*
 * The cache's life: finding or making its segments in the transport,
 * replaying the log from the tail into the index, handing out segments,
 * and closing (write back, then give the segments back).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "cache-internal.h"
#include "log.h"
#include "util.h"

/* Writing back a previous run's cache before giving it up: at most. */
#define CACHE_RETIRE_TIMEOUT_MS 600000U

uint64_t cache_size(const struct cache *c)
{
	return (uint64_t)c->nsegs * CBDT_CACHE_AREA_SIZE;
}

static uint32_t gen_next(uint32_t gen)
{
	return gen + 1 ? gen + 1 : 1; /* 0 is never a generation */
}

int cache_tail_write(struct cache *c)
{
	struct cache_seg *s0 = &c->segs[0];

	s0->s.rec.cache_tail_seg = c->tail.seg;
	s0->s.rec.cache_tail_off = c->tail.off;
	s0->s.rec.cache_tail_seq = c->tail.seq;
	return cbdt_cache_rec_write(c->o.t, &s0->s, c->persist);
}

int cache_seg_alloc(struct cache *c, enum cache_role role, uint32_t *out)
{
	struct cache_seg *s;
	int ret;

	for (;;) {
		/* The last free segment is the log's: with every other one a
		 * head, only a key segment lets the heads' ksets in. */
		bool may = role == CACHE_KEYS || c->used + 1 < c->nsegs;

		for (uint32_t i = 0; may && i < c->nsegs; i++) {
			s = &c->segs[i];
			if (s->role != CACHE_FREE)
				continue;
			/* The new generation is durable before any key or
			 * link names it: a replay then tells this use from
			 * the segment's former ones. */
			s->s.rec.cache_gen = gen_next(s->s.rec.cache_gen);
			ret = cbdt_cache_rec_write(c->o.t, &s->s, c->persist);
			if (ret)
				return ret;
			c->gens[i] = s->s.rec.cache_gen;
			s->role = role;
			s->head = true;
			s->last_seq = 0;
			c->used++;
			*out = i;
			return 0;
		}
		/* Full: back-pressure until the writeback lets GC free one;
		 * a stop gives up only while the writeback cannot go on. */
		if (c->closing && c->wb_failing)
			return -EIO;
		c->space_waiters++;
		cache_wb_room(c);
		pthread_cond_wait(&c->space, &c->lock);
		c->space_waiters--;
	}
}

/* ---- replay ----------------------------------------------------------- */

static int replay_role(struct cache *c, uint32_t seg, enum cache_role role,
		       uint64_t seq)
{
	struct cache_seg *s = &c->segs[seg];

	if (s->role != CACHE_FREE && s->role != role) {
		log_err("backend %s: cache: segment %u is named both as keys and as data: the cache is corrupt",
			c->o.name, s->s.id);
		return -EBADMSG;
	}
	if (s->role == CACHE_FREE)
		c->used++;
	s->role = role;
	if (seq > s->last_seq)
		s->last_seq = seq;
	return 0;
}

/* Rebuild the index from the tail on; the head is where it ends. */
static int cache_replay(struct cache *c)
{
	static union {
		struct cbdt_cache_kset k;
		uint8_t b[4096];
	} ks;
	struct cbdt_klog_pos pos = c->tail, at;
	uint32_t kseg = c->tail.seg;
	uint64_t nsets = 0;
	int n, ret;

	/* The tail's segment holds the log even when the tail sits at its
	 * link, and the first kset replayed is already in the next one. */
	ret = replay_role(c, c->tail.seg, CACHE_KEYS, 0);
	if (ret)
		return ret;
	while ((n = cbdt_klog_next(&c->klog, &pos, &c->kctx, &at, &ks.k)) >=
	       0) {
		/* A key segment left by its link ends with the link's seq,
		 * as when it was written (GC frees it past that). */
		if (at.seg != kseg)
			replay_role(c, kseg, CACHE_KEYS, ks.k.seq - 1);
		kseg = at.seg;
		ret = replay_role(c, at.seg, CACHE_KEYS, ks.k.seq);
		for (int i = 0; !ret && i < n; i++) {
			const struct cbdt_cache_key *k = &ks.k.keys[i];

			if (k->flags & CBDT_KEY_DISCARD)
				continue;
			if ((k->flags & CBDT_KEY_CRC) &&
			    cbdt_crc32c(0, c->areas[k->seg] + k->seg_off,
					k->len) != k->data_crc) {
				log_err("backend %s: cache: the data of %u bytes at %" PRIu64
					" (kset %" PRIu64
					") fails its crc: the cache is corrupt",
					c->o.name, k->len, k->off, ks.k.seq);
				return -EBADMSG;
			}
			ret = replay_role(c, k->seg, CACHE_DATA, ks.k.seq);
			c->dirty += k->len;
		}
		if (!ret)
			ret = cache_index_apply(c, ks.k.keys, (unsigned)n,
						ks.k.seq);
		if (ret)
			return ret;
		nsets++;
	}
	c->head = pos;
	if (pos.seg != kseg) /* the log's end is just past a link */
		replay_role(c, kseg, CACHE_KEYS, pos.seq - 1);
	ret = replay_role(c, pos.seg, CACHE_KEYS, 0);
	if (ret)
		return ret;
	c->segs[pos.seg].head = true;
	c->wb_seq = c->tail.seq;
	if (nsets)
		log_info("backend %s: cache: replayed %" PRIu64
			 " key sets: %" PRIu64 " bytes to write back",
			 c->o.name, nsets, c->dirty);
	return 0;
}

/* ---- segments in the transport ----------------------------------------- */

static void segs_release(struct cache *c)
{
	for (uint32_t i = c->nsegs; i-- > 0;)
		if (cbdt_slot_release(c->o.t, CBDT_OBJ_SEGMENT, c->segs[i].s.id,
				      c->segs[i].s.owner))
			log_warn(
				"backend %s: cache: segment %u: cannot release it",
				c->o.name, c->segs[i].s.id);
}

/* Claim @n free segments and make them a new, empty cache.  Index 0's
 * record goes last: a cache without it is no cache (the janitor frees
 * what a crash part way left). */
static int segs_create(struct cache *c, uint32_t n)
{
	uint32_t gen;
	int ret = 0;

	for (c->nsegs = 0; c->nsegs < n; c->nsegs++) {
		struct cache_seg *s = &c->segs[c->nsegs];

		ret = cbdt_slot_claim(c->o.t, CBDT_OBJ_SEGMENT, -1,
				      c->o.host_id, &s->s.owner);
		if (ret < 0)
			break;
		s->s.id = (uint32_t)ret;
		ret = 0;
	}
	if (ret) {
		log_err("backend %s: cache: only %u of the %u free segments it needs",
			c->o.name, c->nsegs, n);
		segs_release(c);
		return -ENOSPC;
	}
	/* What a former user left in the header is not this cache's. */
	memset(cbdt_cache_hdr(c->o.t, c->segs[0].s.id), 0,
	       sizeof(struct cbdt_cache_hdr));
	/* A random first generation: nothing a former cache left in these
	 * segments can pass for this one's. */
	if (getrandom(&gen, sizeof(gen), 0) != sizeof(gen))
		gen = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	for (uint32_t i = n; i-- > 0;) {
		struct cache_seg *s = &c->segs[i];

		s->s.rec = (struct cbdt_segment_rec){
			.type = CBDT_SEG_CACHE,
			.queue = (uint16_t)i,
			.backend_id = c->o.backend_id,
			.backend_ident = c->o.ident,
			.cache_gen = gen_next(gen + i),
			.cache_nsegs = n,
			.cache_tail_seq = 1,
		};
		ret = cbdt_cache_rec_write(c->o.t, &s->s, c->persist);
		if (ret) {
			segs_release(c);
			return ret;
		}
	}
	return 0;
}

/* Take over the @n segments of a cache a previous run left. */
static int segs_adopt(struct cache *c, const struct cbdt_cache_seg *found,
		      uint32_t n)
{
	for (c->nsegs = 0; c->nsegs < n; c->nsegs++) {
		const struct cbdt_cache_seg *f = &found[c->nsegs];
		struct cache_seg *s = &c->segs[c->nsegs];
		uint32_t host = CBDT_OWNER_HOST(f->owner);
		int ret;

		if (host != c->o.host_id &&
		    CBDT_OWNER_STATE(cbdt_slot_owner(
			    c->o.t, CBDT_OBJ_HOST, host)) == CBDT_SLOT_ACTIVE) {
			log_err("backend %s: cache: segment %u is held by host %u",
				c->o.name, f->id, host);
			ret = -EBUSY;
		} else {
			s->s = *f;
			ret = cbdt_slot_takeover(c->o.t, CBDT_OBJ_SEGMENT,
						 f->id, f->owner, c->o.host_id,
						 &s->s.owner);
		}
		if (ret) /* what we took stays ours, with its data */
			return ret == -ESTALE ? -EBUSY : ret;
	}
	return 0;
}

/* ---- open and close ------------------------------------------------------- */

static struct cache *cache_alloc(const struct cache_owner *o,
				 const struct cache_conf *conf, uint32_t n)
{
	struct cache *c = calloc(1, sizeof(*c));
	pthread_rwlockattr_t ra;

	if (!c)
		return NULL;
	c->o = *o;
	c->conf = *conf;
	c->persist = cbdt_persist_get(o->t);
	c->segs = calloc(n, sizeof(*c->segs));
	c->areas = calloc(n, sizeof(*c->areas));
	c->gens = calloc(n, sizeof(*c->gens));
	c->ix = cache_index_new();
	if (!c->segs || !c->areas || !c->gens || !c->ix) {
		cache_index_free(c->ix);
		free(c->segs);
		free(c->areas);
		free(c->gens);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->rmw_lock, NULL);
	pthread_cond_init(&c->space, NULL);
	cbdt_cond_init_mono(&c->wb_wake);
	cbdt_cond_init_mono(&c->wb_moved);
	/* Writers must not starve behind a stream of reads. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(
		&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c->ixlock, &ra);
	pthread_rwlockattr_destroy(&ra);
	c->key_next = CACHE_NONE;
	return c;
}

static void cache_free(struct cache *c)
{
	pthread_rwlock_destroy(&c->ixlock);
	pthread_cond_destroy(&c->wb_moved);
	pthread_cond_destroy(&c->wb_wake);
	pthread_cond_destroy(&c->space);
	pthread_mutex_destroy(&c->rmw_lock);
	pthread_mutex_destroy(&c->lock);
	cache_index_free(c->ix);
	free(c->wb_gens);
	free(c->segs);
	free(c->areas);
	free(c->gens);
	free(c);
}

/* The views of the segments the log and the index work on. */
static void cache_views(struct cache *c)
{
	struct cache_seg *s0 = &c->segs[0];

	for (uint32_t i = 0; i < c->nsegs; i++) {
		c->segs[i].area = cbdt_cache_area(c->o.t, c->segs[i].s.id);
		c->areas[i] = c->segs[i].area;
		c->gens[i] = c->segs[i].s.rec.cache_gen;
	}
	c->klog = (struct cbdt_klog_area){
		.seg = c->areas,
		.gens = c->gens,
		.nsegs = c->nsegs,
		.seg_size = CBDT_CACHE_AREA_SIZE,
		.backend_ident = c->o.ident,
		.persist = c->persist,
	};
	c->kctx = (struct cbdt_kset_ctx){
		.backend_ident = c->o.ident,
		.backend_size = c->o.store->size,
		.nsegs = c->nsegs,
		.seg_data_size = CBDT_CACHE_AREA_SIZE,
		.gens = c->gens,
	};
	c->tail = (struct cbdt_klog_pos){.seg = s0->s.rec.cache_tail_seg,
					 .off = s0->s.rec.cache_tail_off,
					 .seq = s0->s.rec.cache_tail_seq};
	c->hdr = cbdt_cache_hdr(c->o.t, s0->s.id);
}

/* The header cbd-status reads; cbd-admin's requests start from here. */
static void hdr_init(struct cache *c)
{
	struct cbdt_cache_hdr *h = c->hdr;

	WRITE_ONCE(h->size, cache_size(c));
	WRITE_ONCE(h->gc_percent, c->conf.gc_percent);
	WRITE_ONCE(h->wb_done, READ_ONCE(h->wb_request));
	smp_store_release(&h->magic, CBDT_CACHE_HDR_MAGIC);
}

/* Start a cache on segments set up in c->segs (new or adopted). */
static int cache_run(struct cache *c)
{
	int ret;

	cache_views(c);
	if (c->tail.seg >= c->nsegs) {
		log_err("backend %s: cache: its tail names segment %u of %u: the cache is corrupt",
			c->o.name, c->tail.seg, c->nsegs);
		return -EBADMSG;
	}
	ret = cache_replay(c);
	if (ret)
		return ret;
	hdr_init(c);
	return cache_wb_start(c);
}

/* A cache left by a previous run that we may not keep: write it back,
 * then let it go. */
static int cache_retire(struct cache *c)
{
	int ret;

	log_info(
		"backend %s: cache: writing back the cache of a previous run (%" PRIu64
		" bytes dirty) before it is given up",
		c->o.name, c->dirty);
	ret = cache_writeback(c, CACHE_RETIRE_TIMEOUT_MS);
	cache_wb_stop(c);
	if (ret) {
		log_err("backend %s: cache: cannot write the previous cache back: %s",
			c->o.name, strerror(-ret));
		return ret;
	}
	segs_release(c);
	return 0;
}

int cache_open(const struct cache_owner *o, const struct cache_conf *conf,
	       struct cache **out)
{
	uint32_t max = cbdt_slot_count(o->t, CBDT_OBJ_SEGMENT);
	uint32_t want = (uint32_t)(conf->size / CBDT_SEG_SIZE);
	struct cbdt_cache_seg *found;
	struct cache *c = NULL;
	int n, ret;

	*out = NULL;
	found = calloc(max, sizeof(*found));
	if (!found)
		return -ENOMEM;
	n = cbdt_cache_find(o->t, o->ident, found, max);
	if (n < 0) {
		log_err("backend %s: cache: its segments in the transport are not one whole cache: %s; left as they are",
			o->name, strerror(-n));
		ret = n;
		goto out;
	}
	if (n) {
		ret = -ENOMEM;
		c = cache_alloc(o, conf, (uint32_t)n);
		if (!c)
			goto out;
		ret = segs_adopt(c, found, (uint32_t)n);
		if (!ret)
			ret = cache_run(c);
		if (ret)
			goto out_free;
		if ((uint32_t)n == want) {
			log_info("backend %s: cache: adopted %u segments",
				 o->name, n);
			*out = c;
			goto out;
		}
		ret = cache_retire(c);
		cache_free(c);
		c = NULL;
		if (ret)
			goto out;
	}
	ret = 0;
	if (!want)
		goto out;
	ret = -ENOMEM;
	c = cache_alloc(o, conf, want);
	if (!c)
		goto out;
	ret = segs_create(c, want);
	if (!ret) {
		ret = cache_run(c);
		if (ret)
			segs_release(c);
	}
	if (ret)
		goto out_free;
	*out = c;
	goto out;

out_free:
	cache_wb_stop(c);
	cache_free(c);
out:
	free(found);
	return ret;
}

void cache_close(struct cache *c, unsigned timeout_ms)
{
	char sz[32];
	int ret;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	format_size(c->dirty, sz, sizeof(sz));
	pthread_mutex_unlock(&c->lock);
	log_info("backend %s: cache: writing back %s before stopping",
		 c->o.name, sz);
	ret = cache_writeback(c, timeout_ms);
	cache_wb_stop(c);
	if (c->tail.seq == c->head.seq)
		ret = 0; /* the pass running at the stop finished it */
	if (ret) {
		format_size(c->dirty, sz, sizeof(sz));
		log_warn(
			"backend %s: cache: %s not written back (%s): kept in the transport; the next start writes it back",
			c->o.name, sz, strerror(-ret));
	} else {
		WRITE_ONCE(c->hdr->magic, 0U);
		segs_release(c);
		log_info(
			"backend %s: cache: written back, %u segments released",
			c->o.name, c->nsegs);
	}
	cache_free(c);
}
