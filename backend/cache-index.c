/* SPDX-License-Identifier: MIT */
/*
 * The cache index: a treap (binary search tree on extent start, heap on a
 * random priority) of non-overlapping extents.  Updates split the tree at
 * the boundaries of the new range, trim the extents that cross them, drop
 * what lies inside and merge the pieces back; every allocation happens
 * before the first change, so a failed update leaves the index as it was.
 */
#include <errno.h>
#include <stdlib.h>

#include "cache-index.h"

struct node {
	struct cache_ext e;
	uint64_t prio;
	struct node *l, *r;
};

struct cache_index {
	struct node *root;
	uint64_t count, bytes;
	uint64_t rng; /* xorshift64 state: the priorities */
};

static uint64_t ext_end(const struct cache_ext *e)
{
	return e->off + e->len;
}

/* Cut the first @n bytes off @e. */
static void ext_advance(struct cache_ext *e, uint32_t n)
{
	e->off += n;
	e->seg_off += n;
	e->len -= n;
}

struct cache_index *cache_index_new(void)
{
	struct cache_index *ix = calloc(1, sizeof(*ix));

	if (ix)
		ix->rng = 0x9e3779b97f4a7c15ULL;
	return ix;
}

static void nodes_free(struct cache_index *ix, struct node *t)
{
	if (!t)
		return;
	nodes_free(ix, t->l);
	nodes_free(ix, t->r);
	ix->count--;
	ix->bytes -= t->e.len;
	free(t);
}

void cache_index_free(struct cache_index *ix)
{
	if (!ix)
		return;
	nodes_free(ix, ix->root);
	free(ix);
}

uint64_t cache_index_count(const struct cache_index *ix)
{
	return ix->count;
}

uint64_t cache_index_bytes(const struct cache_index *ix)
{
	return ix->bytes;
}

static struct node *node_new(struct cache_index *ix)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n) {
		ix->rng ^= ix->rng << 13;
		ix->rng ^= ix->rng >> 7;
		ix->rng ^= ix->rng << 17;
		n->prio = ix->rng;
	}
	return n;
}

/* @t into the extents starting before @key (*l) and the others (*r). */
static void split(struct node *t, uint64_t key, struct node **l,
		  struct node **r)
{
	if (!t) {
		*l = *r = NULL;
	} else if (t->e.off < key) {
		split(t->r, key, &t->r, r);
		*l = t;
	} else {
		split(t->l, key, l, &t->l);
		*r = t;
	}
}

/* Every extent of @l starts before every extent of @r. */
static struct node *merge(struct node *l, struct node *r)
{
	if (!l)
		return r;
	if (!r)
		return l;
	if (l->prio > r->prio) {
		l->r = merge(l->r, r);
		return l;
	}
	r->l = merge(l, r->l);
	return r;
}

static struct node *last(struct node *t)
{
	while (t && t->r)
		t = t->r;
	return t;
}

/* The extent covering byte @off, if any. */
static const struct node *covering(const struct node *t, uint64_t off)
{
	const struct node *best = NULL;

	while (t) {
		if (t->e.off <= off) {
			best = t;
			t = t->r;
		} else {
			t = t->l;
		}
	}
	return best && ext_end(&best->e) > off ? best : NULL;
}

/*
 * Forget [off, end) and put @n (NULL: nothing) in its place.  @tail is a
 * node for the far end of an extent that covers the whole range (the
 * caller allocated it when covering() said so), else NULL.
 */
static void replace(struct cache_index *ix, uint64_t off, uint64_t end,
		    struct node *n, struct node *tail)
{
	struct node *l, *m, *r, *lm, *mx;

	split(ix->root, off, &l, &r);
	lm = last(l);
	if (lm && ext_end(&lm->e) > off) {
		/* starts before the range and reaches into it */
		if (tail && ext_end(&lm->e) > end) {
			tail->e = lm->e;
			ext_advance(&tail->e, (uint32_t)(end - lm->e.off));
			ix->count++;
			ix->bytes += tail->e.len;
			r = merge(tail, r);
			tail = NULL;
		}
		ix->bytes -= ext_end(&lm->e) - off;
		lm->e.len = (uint32_t)(off - lm->e.off);
	}
	split(r, end, &m, &r);
	mx = last(m);
	if (mx && ext_end(&mx->e) > end) {
		/* starts in the range and reaches past it: keep its end */
		split(m, mx->e.off, &m, &mx);
		ix->bytes -= end - mx->e.off;
		ext_advance(&mx->e, (uint32_t)(end - mx->e.off));
		r = merge(mx, r);
	}
	nodes_free(ix, m);
	free(tail); /* never: tail_for() saw what we did */
	if (n) {
		ix->count++;
		ix->bytes += n->e.len;
		l = merge(l, n);
	}
	ix->root = merge(l, r);
}

/* A node for the far end of an extent that starts before [off, end)
 * and ends after it, if one does: 0, or -ENOMEM. */
static int tail_for(struct cache_index *ix, uint64_t off, uint64_t end,
		    struct node **tail)
{
	const struct node *c = covering(ix->root, off);

	*tail = NULL;
	if (!c || c->e.off == off || ext_end(&c->e) <= end)
		return 0;
	*tail = node_new(ix);
	return *tail ? 0 : -ENOMEM;
}

int cache_index_insert(struct cache_index *ix, const struct cache_ext *e)
{
	struct node *n, *tail;

	if (!e->len)
		return 0;
	n = node_new(ix);
	if (!n || tail_for(ix, e->off, ext_end(e), &tail)) {
		free(n);
		return -ENOMEM;
	}
	n->e = *e;
	replace(ix, e->off, ext_end(e), n, tail);
	return 0;
}

int cache_index_remove(struct cache_index *ix, uint64_t off, uint64_t len)
{
	struct node *tail;

	if (!len)
		return 0;
	if (tail_for(ix, off, off + len, &tail))
		return -ENOMEM;
	replace(ix, off, off + len, NULL, tail);
	return 0;
}

/* In order, the pieces of extents under @t within [off, end). */
static int walk(const struct node *t, uint64_t off, uint64_t end,
		cache_index_fn fn, void *arg)
{
	struct cache_ext p;
	int ret;

	if (!t)
		return 0;
	/* extents do not overlap: the left ones end before t starts */
	if (t->e.off > off && (ret = walk(t->l, off, end, fn, arg)))
		return ret;
	if (t->e.off < end && ext_end(&t->e) > off) {
		p = t->e;
		if (p.off < off)
			ext_advance(&p, (uint32_t)(off - p.off));
		if (ext_end(&p) > end)
			p.len = (uint32_t)(end - p.off);
		if ((ret = fn(arg, &p)))
			return ret;
	}
	if (t->e.off < end)
		return walk(t->r, off, end, fn, arg);
	return 0;
}

int cache_index_lookup(const struct cache_index *ix, uint64_t off, uint64_t len,
		       cache_index_fn fn, void *arg)
{
	return len ? walk(ix->root, off, off + len, fn, arg) : 0;
}

static struct node *drop_seg(struct cache_index *ix, struct node *t,
			     uint32_t seg, uint64_t *n)
{
	struct node *m;

	if (!t)
		return NULL;
	t->l = drop_seg(ix, t->l, seg, n);
	t->r = drop_seg(ix, t->r, seg, n);
	if (t->e.seg != seg)
		return t;
	/* the children's priorities are below t's: m fits where t was */
	m = merge(t->l, t->r);
	ix->count--;
	ix->bytes -= t->e.len;
	free(t);
	(*n)++;
	return m;
}

uint64_t cache_index_drop_seg(struct cache_index *ix, uint32_t seg)
{
	uint64_t n = 0;

	ix->root = drop_seg(ix, ix->root, seg, &n);
	return n;
}
