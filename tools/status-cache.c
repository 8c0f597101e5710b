/* SPDX-License-Identifier: MIT */
/*
 * What cbd-status shows of the transport-resident caches: each cache
 * (found by the record of its index-0 segment), the counters its
 * backend publishes in the cache header, read at the start and at the
 * end of the sampling window, and, from the log itself, whether a cache
 * whose backend is not running still holds writes not on its disk.
 * Reads only; single-threaded.
 */
#include <errno.h>
#include <stdlib.h>

#include "barrier.h"
#include "status.h"

static void hdr_copy(struct cbdt_cache_hdr *dst, const struct cbdt_cache_hdr *h)
{
	dst->magic = smp_load_acquire(&h->magic);
	dst->gc_percent = READ_ONCE(h->gc_percent);
	dst->size = READ_ONCE(h->size);
	dst->used = READ_ONCE(h->used);
	dst->dirty = READ_ONCE(h->dirty);
	dst->read_bytes = READ_ONCE(h->read_bytes);
	dst->hit_bytes = READ_ONCE(h->hit_bytes);
	dst->write_bytes = READ_ONCE(h->write_bytes);
	dst->wb_bytes = READ_ONCE(h->wb_bytes);
	dst->wb_pause = READ_ONCE(h->wb_pause);
}

/* The caches at the start of the window. */
static int cache_list(const struct cbdt *t, struct status_snap *s)
{
	struct cbdt_segment_rec rec;

	s->caches = calloc(s->nr_segments + 1, sizeof(*s->caches));
	if (!s->caches)
		return -ENOMEM;
	for (uint32_t id = 0; id < s->nr_segments; id++) {
		struct status_cache *c = &s->caches[s->nr_caches];

		if (CBDT_OWNER_STATE(cbdt_slot_owner(t, CBDT_OBJ_SEGMENT,
						     id)) != CBDT_SLOT_ACTIVE ||
		    cbdt_segment_read(t, id, &rec) ||
		    rec.type != CBDT_SEG_CACHE || rec.queue)
			continue;
		c->seg0 = id;
		c->backend_id = rec.backend_id;
		c->ident = rec.backend_ident;
		c->nsegs = rec.cache_nsegs;
		hdr_copy(&c->h0, cbdt_cache_hdr(t, id));
		s->nr_caches++;
	}
	return 0;
}

int status_cache_sample(const struct cbdt *t, struct status_snap *s, bool first)
{
	struct cbdt_cache_seg *segs;
	double secs = (double)s->io_ns / 1e9;

	if (first)
		return cache_list(t, s);
	segs = calloc(s->nr_segments + 1, sizeof(*segs));
	if (!segs)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nr_caches; i++) {
		struct status_cache *c = &s->caches[i];
		int n = cbdt_cache_find(t, c->ident, segs, s->nr_segments);

		hdr_copy(&c->h, cbdt_cache_hdr(t, c->seg0));
		/* set up, until a kill -9: status_cache_liveness() decides */
		c->running = c->h.magic == CBDT_CACHE_HDR_MAGIC;
		c->paused = c->h.wb_pause;
		c->whole = n > 0 && (uint32_t)n == c->nsegs;
		c->log_dirty =
			c->whole ? cbdt_cache_dirty(t, segs, (uint32_t)n) : -1;
		if (secs > 0 && c->h.wb_bytes >= c->h0.wb_bytes)
			c->wb_mib_s = (double)(c->h.wb_bytes - c->h0.wb_bytes) /
				      (1 << 20) / secs;
	}
	free(segs);
	return 0;
}

void status_cache_liveness(struct status_snap *s)
{
	for (uint32_t i = 0; i < s->nr_caches; i++) {
		struct status_cache *c = &s->caches[i];

		c->running = c->running && status_cache_of(s, c->backend_id) &&
			     s->backends[c->backend_id].s.alive;
	}
}

const struct status_cache *status_cache_of(const struct status_snap *s,
					   uint32_t backend_id)
{
	const struct status_backend *b =
		backend_id < s->nr_backends ? &s->backends[backend_id] : NULL;

	for (uint32_t i = 0; b && i < s->nr_caches; i++)
		if (s->caches[i].backend_id == backend_id &&
		    b->s.rec == STATUS_REC_VALID &&
		    s->caches[i].ident == b->r.ident)
			return &s->caches[i];
	return NULL;
}

bool status_cache_dirty_kept(const struct status_cache *c)
{
	return !c->running && c->log_dirty != 0;
}

const char *status_cache_state(const struct status_cache *c)
{
	if (c->running)
		return c->paused ? "running, writeback paused" : "running";
	if (!c->whole)
		return "stopped, incomplete: kept";
	return c->log_dirty ? "stopped, dirty: kept for its backend's restart" :
			      "stopped, clean";
}

double status_cache_hit_ratio(const struct status_cache *c)
{
	return c->h.read_bytes ?
		       (double)c->h.hit_bytes / (double)c->h.read_bytes :
		       -1;
}
