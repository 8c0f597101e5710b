/* SPDX-License-Identifier: MIT */
/*
 * The cache's requests.  A write copies its data into the handler's own
 * head segment (no lock), makes it durable, then appends one kset naming
 * it and updates the index under c->lock: the order of the ksets is the
 * order of the writes, for the index, the replay and the writeback
 * alike.  A read copies what the index holds and reads the rest from
 * the disk.  A discard is logged and done by the writeback in log order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "cache-internal.h"

/* A write is cut into one piece per segment it lands in, each of at
 * least this much (the last may be less); each piece is logged before
 * the write moves on to its next segment. */
#define CACHE_PIECE_MIN (256U << 10)
/* Data starts on this boundary in a segment (direct I/O to the disk). */
#define CACHE_DATA_ALIGN 4096U

static bool aligned(uint64_t v)
{
	return !(v % CBDT_SECTOR_SIZE);
}

int cache_log_append(struct cache *c, const struct cbdt_cache_key *keys,
		     unsigned n, uint64_t *seq)
{
	for (;;) {
		struct cbdt_klog_pos before = c->head;
		uint32_t s;
		int ret = cbdt_klog_append(&c->klog, &c->head, keys, n,
					   c->key_next);

		if (ret == -ENOSPC) {
			/* The log needs its next segment; waiting for one
			 * lets others in, who may have found one first. */
			if (c->key_next != CACHE_NONE)
				continue;
			ret = cache_seg_alloc(c, CACHE_KEYS, &s);
			if (ret)
				return ret;
			if (c->key_next == CACHE_NONE) {
				c->key_next = s;
			} else {
				c->segs[s].role = CACHE_FREE;
				c->segs[s].head = false;
				c->used--;
			}
			continue;
		}
		if (ret)
			return ret;
		if (c->head.seg != before.seg) {
			c->segs[before.seg].head = false;
			c->segs[before.seg].last_seq = before.seq;
			c->key_next = CACHE_NONE;
		}
		*seq = c->head.seq - 1;
		c->segs[c->head.seg].last_seq = *seq;
		return 0;
	}
}

struct pieces {
	struct cache_ext *v;
	size_t n, cap;
};

static int pieces_add(void *arg, const struct cache_ext *e)
{
	struct pieces *p = arg;

	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		struct cache_ext *v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = *e;
	return 0;
}

/* Forget what the index holds of [off, off + len) from ksets before
 * @seq (under ixlock, written). */
static int index_forget_older(struct cache *c, uint64_t off, uint64_t len,
			      uint64_t seq)
{
	struct pieces p = {0};
	int ret = cache_index_lookup(c->ix, off, len, pieces_add, &p);

	for (size_t i = 0; !ret && i < p.n; i++)
		if (p.v[i].seq < seq)
			ret = cache_index_remove(c->ix, p.v[i].off, p.v[i].len);
	free(p.v);
	c->epoch++;
	return ret;
}

int cache_index_apply(struct cache *c, const struct cbdt_cache_key *keys,
		      unsigned n, uint64_t seq)
{
	int ret = 0;

	pthread_rwlock_wrlock(&c->ixlock);
	for (unsigned i = 0; !ret && i < n; i++) {
		const struct cbdt_cache_key *k = &keys[i];
		struct cache_ext e = {.off = k->off,
				      .len = k->len,
				      .seg = k->seg,
				      .seg_off = k->seg_off,
				      .seg_gen = k->seg_gen,
				      .seq = seq};

		/* A discard leaves the index only once the writeback did it
		 * (cache_index_discarded): until then it was not
		 * acknowledged, and the older data is what reads see. */
		if (!(k->flags & CBDT_KEY_DISCARD))
			ret = cache_index_insert(c->ix, &e);
	}
	pthread_rwlock_unlock(&c->ixlock);
	return ret;
}

int cache_index_discarded(struct cache *c, const struct cbdt_cache_key *k,
			  uint64_t seq)
{
	int ret;

	pthread_rwlock_wrlock(&c->ixlock);
	ret = index_forget_older(c, k->off, k->len, seq);
	pthread_rwlock_unlock(&c->ixlock);
	return ret;
}

/* ---- heads ---------------------------------------------------------------- */

struct cache_head *cache_head_new(struct cache *c)
{
	struct cache_head *h = malloc(sizeof(*h));

	(void)c;
	if (h)
		*h = (struct cache_head){.seg = CACHE_NONE};
	return h;
}

void cache_head_free(struct cache *c, struct cache_head *h)
{
	if (!h)
		return;
	if (h->seg != CACHE_NONE) {
		pthread_mutex_lock(&c->lock);
		c->segs[h->seg].head = false; /* GC may take it now */
		pthread_mutex_unlock(&c->lock);
	}
	free(h);
}

/*
 * Log the pieces a write put in its head so far (one kset), under
 * c->lock: they become the newest data of their ranges.
 */
static int log_pieces(struct cache *c, const struct cbdt_cache_key *keys,
		      unsigned n)
{
	uint64_t seq, bytes = 0;
	int ret = cache_log_append(c, keys, n, &seq);

	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++) {
		if (seq > c->segs[keys[i].seg].last_seq)
			c->segs[keys[i].seg].last_seq = seq;
		bytes += keys[i].len;
	}
	c->dirty += bytes;
	return cache_index_apply(c, keys, n, seq);
}

/*
 * Room for @want bytes (or a whole piece) at the head, else a new head.
 * What this write put in the old head is logged first: GC may have the
 * old head as soon as it is no head, never before its data is named.
 * So a handler holds one segment at most, also while it waits for one.
 */
static int head_room(struct cache *c, struct cache_head *h, uint32_t want,
		     struct cbdt_cache_key *keys, unsigned *n)
{
	uint32_t need = want < CACHE_PIECE_MIN ? want : CACHE_PIECE_MIN;
	int ret = 0;

	if (h->seg != CACHE_NONE && CBDT_CACHE_AREA_SIZE - h->off >= need)
		return 0;
	pthread_mutex_lock(&c->lock);
	if (*n)
		ret = log_pieces(c, keys, *n);
	*n = 0;
	if (h->seg != CACHE_NONE)
		c->segs[h->seg].head = false;
	h->seg = CACHE_NONE;
	if (!ret)
		ret = cache_seg_alloc(c, CACHE_DATA, &h->seg);
	pthread_mutex_unlock(&c->lock);
	h->off = 0;
	return ret;
}

/* ---- requests --------------------------------------------------------- */

int cache_write(struct cache *c, struct cache_head *h, uint64_t off,
		uint32_t len, const void *data)
{
	struct cbdt_cache_key keys[1]; /* the piece not logged yet */
	uint32_t done = 0;
	unsigned n = 0;
	int ret = 0;

	/* a key that replay would refuse must never reach the log */
	if (!aligned(off) || !aligned(len))
		return -EINVAL;
	while (done < len) {
		uint32_t piece = len - done, room;
		uint8_t *dst;

		ret = head_room(c, h, piece, keys, &n);
		if (ret)
			break;
		room = CBDT_CACHE_AREA_SIZE - h->off;
		if (piece > room)
			piece = room;
		dst = c->segs[h->seg].area + h->off;
		memcpy(dst, (const uint8_t *)data + done, piece);
		if (c->persist)
			c->persist(dst, piece);
		keys[n++] = (struct cbdt_cache_key){
			.off = off + done,
			.len = piece,
			.seg = h->seg,
			.seg_off = h->off,
			.seg_gen = c->gens[h->seg],
			.data_crc = c->conf.data_crc ?
					    cbdt_crc32c(0, dst, piece) :
					    0,
			.flags = c->conf.data_crc ? CBDT_KEY_CRC : 0,
		};
		h->off += (piece + CACHE_DATA_ALIGN - 1) &
			  ~(CACHE_DATA_ALIGN - 1);
		if (h->off > CBDT_CACHE_AREA_SIZE)
			h->off = CBDT_CACHE_AREA_SIZE;
		done += piece;
	}
	if (!ret && n) {
		pthread_mutex_lock(&c->lock);
		ret = log_pieces(c, keys, n);
		pthread_mutex_unlock(&c->lock);
	}
	__atomic_fetch_add(&c->write_bytes, len, __ATOMIC_RELAXED);
	return ret;
}

struct read_ctx {
	struct cache *c;
	uint64_t off;
	uint8_t *buf;
	uint64_t held; /* bytes the cache holds of the range */
};

static int read_piece(void *arg, const struct cache_ext *e)
{
	struct read_ctx *r = arg;

	r->held += e->len;
	memcpy(r->buf + (e->off - r->off), r->c->segs[e->seg].area + e->seg_off,
	       e->len);
	return 0;
}

int cache_read(struct cache *c, uint64_t off, uint32_t len, void *data)
{
	struct read_ctx r = {.c = c, .off = off, .buf = data};
	uint64_t epoch;
	int ret;

	pthread_rwlock_rdlock(&c->ixlock);
	cache_index_lookup(c->ix, off, len, read_piece, &r);
	while (r.held != len) {
		epoch = c->epoch;
		pthread_rwlock_unlock(&c->ixlock);
		/* The disk, then what the cache holds on top: newer. */
		ret = store_read(c->o.store, data, off, len);
		if (ret)
			return ret;
		pthread_rwlock_rdlock(&c->ixlock);
		r.held = 0;
		cache_index_lookup(c->ix, off, len, read_piece, &r);
		/* Extents that left the index meanwhile were written back,
		 * maybe after our read of the disk: read it again. */
		if (c->epoch == epoch)
			break;
	}
	pthread_rwlock_unlock(&c->ixlock);
	__atomic_fetch_add(&c->read_bytes, len, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->hit_bytes, r.held, __ATOMIC_RELAXED);
	return 0;
}

int cache_discard(struct cache *c, uint64_t off, uint32_t len, bool zeroes)
{
	struct cbdt_cache_key k = {
		.off = off,
		.len = len,
		.flags = CBDT_KEY_DISCARD | (zeroes ? CBDT_KEY_ZEROES : 0),
	};
	uint64_t seq;
	int ret;

	if (!len)
		return 0;
	if (!aligned(off) || !aligned(len))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	ret = cache_log_append(c, &k, 1, &seq);
	if (!ret) {
		/* The writeback does it, after every older write. */
		cache_wb_want(c, seq + 1);
		while (c->wb_seq <= seq && !c->wb_stop &&
		       !(c->closing && c->wb_failing))
			pthread_cond_wait(&c->wb_moved, &c->lock);
		if (c->wb_seq <= seq)
			ret = -EIO;
		for (unsigned i = 0; !ret && i < CACHE_ERRS; i++)
			if (c->errs[i].err && c->errs[i].seq == seq)
				ret = c->errs[i].err;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/*
 * Keys name whole sectors: a write that starts or ends inside one is
 * written as the whole sectors, read first around it (@data NULL:
 * zeroes).  Such writes are serialised among themselves, so two of
 * them in one sector do not undo each other.
 */
static int write_unaligned(struct cache *c, struct cache_head *h, uint64_t off,
			   uint32_t len, const void *data)
{
	uint64_t a = off & ~(uint64_t)(CBDT_SECTOR_SIZE - 1);
	uint64_t end = (off + len + CBDT_SECTOR_SIZE - 1) &
		       ~(uint64_t)(CBDT_SECTOR_SIZE - 1);
	uint8_t *buf = malloc(end - a);
	int ret;

	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&c->rmw_lock);
	ret = cache_read(c, a, (uint32_t)(end - a), buf);
	if (!ret) {
		if (data)
			memcpy(buf + (off - a), data, len);
		else
			memset(buf + (off - a), 0, len);
		ret = cache_write(c, h, a, (uint32_t)(end - a), buf);
	}
	pthread_mutex_unlock(&c->rmw_lock);
	free(buf);
	return ret;
}

/* DISCARD / WRITE_ZEROES: whole sectors through the log, the partial
 * ones at either end zeroed (what a discard of a file reads as too). */
static int discard_any(struct cache *c, struct cache_head *h, uint64_t off,
		       uint32_t len, bool zeroes)
{
	uint64_t end = off + len;
	uint64_t a = (off + CBDT_SECTOR_SIZE - 1) &
		     ~(uint64_t)(CBDT_SECTOR_SIZE - 1);
	uint64_t b = end & ~(uint64_t)(CBDT_SECTOR_SIZE - 1);
	int ret = 0;

	if (aligned(off) && aligned(len))
		return cache_discard(c, off, len, zeroes);
	if (a >= b) /* within one or two sectors */
		return write_unaligned(c, h, off, len, NULL);
	if (off < a)
		ret = write_unaligned(c, h, off, (uint32_t)(a - off), NULL);
	if (!ret)
		ret = cache_discard(c, a, (uint32_t)(b - a), zeroes);
	if (!ret && b < end)
		ret = write_unaligned(c, h, b, (uint32_t)(end - b), NULL);
	return ret;
}

int cache_request(struct cache *c, struct cache_head *h,
		  const struct cbdt_request *rq, void *data)
{
	switch (rq->op) {
	case CBDT_OP_READ:
		return cache_read(c, rq->offset, rq->len, data);
	case CBDT_OP_WRITE:
		if (!aligned(rq->offset) || !aligned(rq->len))
			return write_unaligned(c, h, rq->offset, rq->len, data);
		return cache_write(c, h, rq->offset, rq->len, data);
	case CBDT_OP_FLUSH:
		return 0; /* every completed write is in the log already */
	case CBDT_OP_DISCARD:
	case CBDT_OP_WRITE_ZEROES:
		return discard_any(c, h, rq->offset, rq->len,
				   rq->op == CBDT_OP_WRITE_ZEROES);
	default:
		return -EINVAL;
	}
}
