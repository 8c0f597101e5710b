/* SPDX-License-Identifier: MIT */
/*
 * A backend's cache as the transport holds it: its segments (found by
 * the backend's ident in their records), their areas and header, the
 * control fields in the record of index 0, and whether anything dirty
 * is left in it.  The backend that owns the cache uses these to set it
 * up and to adopt it after a restart; the janitor, cbd-admin and
 * cbd-status to judge a cache whose backend is gone.  Readers only,
 * apart from cbdt_cache_rec_write (the owner).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cbdt-cache.h"
#include "cbdt.h"

uint8_t *cbdt_cache_area(const struct cbdt *t, uint32_t seg_id)
{
	uint8_t *base = cbdt_segment_base(t, seg_id);

	return base ? base + CBDT_CACHE_HDR_SIZE : NULL;
}

struct cbdt_cache_hdr *cbdt_cache_hdr(const struct cbdt *t, uint32_t seg_id)
{
	return cbdt_segment_base(t, seg_id);
}

static int seg_cmp(const void *a, const void *b)
{
	const struct cbdt_cache_seg *x = a, *y = b;

	return (x->rec.queue > y->rec.queue) - (x->rec.queue < y->rec.queue);
}

int cbdt_cache_find(const struct cbdt *t, uint64_t ident,
		    struct cbdt_cache_seg *out, uint32_t max)
{
	uint32_t n = cbdt_slot_count(t, CBDT_OBJ_SEGMENT), found = 0;
	struct cbdt_segment_rec rec;

	for (uint32_t id = 0; id < n; id++) {
		uint64_t o = cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, id);

		if (CBDT_OWNER_STATE(o) != CBDT_SLOT_ACTIVE ||
		    cbdt_segment_read(t, id, &rec) ||
		    rec.type != CBDT_SEG_CACHE || rec.backend_ident != ident)
			continue;
		if (found == max)
			return -E2BIG;
		out[found++] = (struct cbdt_cache_seg){
			.id = id, .owner = o, .rec = rec};
	}
	if (found > 1)
		qsort(out, found, sizeof(*out), seg_cmp);
	/* A whole cache: indices 0..nsegs-1, each once, as index 0 says. */
	for (uint32_t i = 0; i < found; i++)
		if (out[i].rec.queue != i ||
		    out[i].rec.cache_nsegs != out[0].rec.cache_nsegs)
			return -EBADMSG;
	if (found && found != out[0].rec.cache_nsegs)
		return -EBADMSG;
	return (int)found;
}

int cbdt_cache_rec_write(struct cbdt *t, const struct cbdt_cache_seg *s,
			 cbdt_persist_fn persist)
{
	int ret = cbdt_record_write(t, CBDT_OBJ_SEGMENT, s->id, &s->rec,
				    sizeof(s->rec));

	if (!ret && persist)
		persist(cbdt_slot_get(t, CBDT_OBJ_SEGMENT, s->id),
			sizeof(struct cbdt_slot));
	return ret;
}

int cbdt_cache_dirty(const struct cbdt *t, const struct cbdt_cache_seg *segs,
		     uint32_t nsegs)
{
	union {
		struct cbdt_cache_kset k;
		uint8_t b[4096];
	} ks;
	struct cbdt_klog_pos pos;
	struct cbdt_klog_area a = {
		.nsegs = nsegs,
		.seg_size = CBDT_SEG_SIZE - CBDT_CACHE_HDR_SIZE,
	};
	struct cbdt_kset_ctx ctx = {
		.backend_size = UINT64_MAX, /* any key counts */
		.nsegs = nsegs,
		.seg_data_size = a.seg_size,
	};
	uint8_t **areas;
	uint32_t *gens;
	int ret;

	if (!nsegs)
		return 0;
	areas = calloc(nsegs, sizeof(*areas));
	gens = calloc(nsegs, sizeof(*gens));
	if (!areas || !gens) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < nsegs; i++) {
		areas[i] = cbdt_cache_area(t, segs[i].id);
		gens[i] = segs[i].rec.cache_gen;
	}
	a.seg = areas;
	a.gens = gens;
	a.backend_ident = ctx.backend_ident = segs[0].rec.backend_ident;
	ctx.gens = gens;
	pos = (struct cbdt_klog_pos){.seg = segs[0].rec.cache_tail_seg,
				     .off = segs[0].rec.cache_tail_off,
				     .seq = segs[0].rec.cache_tail_seq};
	/* Dirty: a kset with keys after the tail; a written-back cache has
	 * none (a kset of no keys is never written but as a link). */
	ret = 0;
	while (cbdt_klog_next(&a, &pos, &ctx, NULL, &ks.k) >= 0)
		if (ks.k.nkeys) {
			ret = 1;
			break;
		}
out:
	free(areas);
	free(gens);
	return ret;
}

int cbdt_cache_dirty_find(const struct cbdt *t, uint32_t *seg_id)
{
	uint32_t n = cbdt_slot_count(t, CBDT_OBJ_SEGMENT);
	struct cbdt_cache_seg *segs = calloc(n ? n : 1, sizeof(*segs));
	struct cbdt_segment_rec rec;
	int found, ret = 0;

	if (!segs)
		return -ENOMEM;
	for (uint32_t id = 0; id < n && !ret; id++) {
		uint64_t o = cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, id);

		if (CBDT_OWNER_STATE(o) != CBDT_SLOT_ACTIVE ||
		    cbdt_segment_read(t, id, &rec) ||
		    rec.type != CBDT_SEG_CACHE || rec.queue)
			continue;
		found = cbdt_cache_find(t, rec.backend_ident, segs, n);
		/* half a cache may hold data too: count it dirty */
		ret = found < 0 ? 1 :
				  cbdt_cache_dirty(t, segs, (uint32_t)found);
		if (ret > 0 && seg_id)
			*seg_id = id;
	}
	free(segs);
	return ret;
}
