/* SPDX-License-Identifier: MIT */
/*
 * A key log of the transport-resident cache: ksets appended one after
 * the other in a segment, and on to the next segment through a link
 * kset (no keys, NEXT_SEG) written in the room every segment keeps for
 * it at its end.  Replay walks the same way and stops at the first place
 * without a valid kset: every kset that was durable when the writer
 * stopped is found, in order, and nothing after a torn one.
 *
 * One writer per log (its caller serialises appends); replay runs alone
 * at start.
 */
#include <errno.h>
#include <string.h>

#include "cbdt-cache.h"

/* Bytes of a segment that ksets other than the link may use. */
static uint32_t klog_usable(const struct cbdt_klog_area *a)
{
	return a->seg_size - CBDT_KSET_ALIGN;
}

/* Write a kset at @pos (it fits) and make it durable. */
static int klog_put(const struct cbdt_klog_area *a,
		    const struct cbdt_klog_pos *pos,
		    const struct cbdt_kset_hdr *h,
		    const struct cbdt_cache_key *keys, unsigned nkeys)
{
	uint8_t *p = a->seg[pos->seg] + pos->off;
	int ret = cbdt_kset_encode(p, h, keys, nkeys);

	if (!ret && a->persist)
		a->persist(p, cbdt_kset_size(nkeys));
	return ret;
}

int cbdt_klog_append(const struct cbdt_klog_area *a, struct cbdt_klog_pos *pos,
		     const struct cbdt_cache_key *keys, unsigned nkeys,
		     uint32_t next_seg)
{
	size_t size = cbdt_kset_size(nkeys);
	struct cbdt_kset_hdr h = {.backend_ident = a->backend_ident};
	int ret;

	if (nkeys > CBDT_KSET_KEYS_MAX || pos->seg >= a->nsegs ||
	    a->seg_size < 4096 + CBDT_KSET_ALIGN || pos->off > klog_usable(a) ||
	    pos->off % CBDT_KSET_ALIGN)
		return -EINVAL;
	if (pos->off + size > klog_usable(a)) {
		if (next_seg == UINT32_MAX)
			return -ENOSPC;
		if (next_seg >= a->nsegs || next_seg == pos->seg)
			return -EINVAL;
		/* the link first: replay must find the way before the kset */
		h.seq = pos->seq;
		h.seg_gen = a->gens[pos->seg];
		h.next = true;
		h.next_seg = next_seg;
		h.next_gen = a->gens[next_seg];
		ret = klog_put(a, pos, &h, NULL, 0);
		if (ret)
			return ret;
		*pos = (struct cbdt_klog_pos){
			.seg = next_seg, .off = 0, .seq = pos->seq + 1};
		h.next = false;
		h.next_seg = h.next_gen = 0;
	}
	h.seq = pos->seq;
	h.seg_gen = a->gens[pos->seg];
	ret = klog_put(a, pos, &h, keys, nkeys);
	if (ret)
		return ret;
	pos->off += (uint32_t)size;
	pos->seq++;
	return 0;
}

int cbdt_klog_next(const struct cbdt_klog_area *a, struct cbdt_klog_pos *pos,
		   const struct cbdt_kset_ctx *ctx, struct cbdt_klog_pos *at,
		   struct cbdt_cache_kset *out)
{
	struct cbdt_kset_ctx c = *ctx;
	ssize_t n;

	while (pos->seg < a->nsegs && pos->off <= klog_usable(a)) {
		c.seq = pos->seq;
		c.seg_gen = a->gens[pos->seg];
		n = cbdt_kset_read(a->seg[pos->seg] + pos->off,
				   a->seg_size - pos->off, &c, out);
		if (n < 0)
			return -ENODATA; /* the end: the writer goes on here */
		if (out->flags & CBDT_KSET_NEXT_SEG) {
			if (out->next_gen != a->gens[out->next_seg])
				return -ENODATA; /* the next segment moved on */
			*pos = (struct cbdt_klog_pos){.seg = out->next_seg,
						      .off = 0,
						      .seq = pos->seq + 1};
			continue;
		}
		if (at)
			*at = *pos;
		pos->off += (uint32_t)n;
		pos->seq++;
		return out->nkeys;
	}
	return -ENODATA;
}

int cbdt_klog_replay(const struct cbdt_klog_area *a, struct cbdt_klog_pos *pos,
		     const struct cbdt_kset_ctx *ctx,
		     int (*fn)(void *arg, const struct cbdt_cache_key *key),
		     void *arg)
{
	static __thread union {
		struct cbdt_cache_kset k;
		uint8_t b[4096];
	} ks;
	int n, ret;

	while ((n = cbdt_klog_next(a, pos, ctx, NULL, &ks.k)) >= 0)
		for (int i = 0; i < n; i++)
			if ((ret = fn(arg, &ks.k.keys[i])))
				return ret;
	return 0;
}
