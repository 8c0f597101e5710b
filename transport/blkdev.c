/* SPDX-License-Identifier: MIT */
/*
 * Client side of mapping a backend: a blkdev slot, the backend's writable
 * lock and one channel segment per queue, published through records, then
 * a wait for the backend's handlers to attach; unmap undoes it in reverse.
 * One thread maps and unmaps a given blkdev; only cbdt_blkdev_heartbeat()
 * may run concurrently with its I/O (it touches the heartbeat word only).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "cbdt.h"

#define BLKDEV_POLL_US	   1000U /* between attach/detach checks */
#define BLKDEV_HB_EVERY_MS 50U	 /* heartbeat while waiting */

static void blkdev_sleep_us(uint32_t us)
{
	struct timespec ts = {.tv_sec = us / 1000000U,
			      .tv_nsec = (long)(us % 1000000U) * 1000L};

	nanosleep(&ts, NULL);
}

/* The backend must be ACTIVE with a sane record; -EROFS for a writable
 * mapping of a read-only backend. */
static int backend_check(const struct cbdt *t, uint32_t id, bool ro,
			 struct cbdt_backend_rec *rec, uint64_t *owner)
{
	if (id >= cbdt_slot_count(t, CBDT_OBJ_BACKEND))
		return -ENOENT;
	*owner = cbdt_slot_owner(t, CBDT_OBJ_BACKEND, id);
	if (CBDT_OWNER_STATE(*owner) != CBDT_SLOT_ACTIVE)
		return -ENOENT;
	if (cbdt_backend_read(t, id, rec) || rec->handlers == 0)
		return -ENOENT;
	if (!ro && (rec->flags & CBDT_BACKEND_RO))
		return -EROFS;
	return 0;
}

/* Claim one segment and make it channel @q of @b. */
static int segment_create(struct cbdt *t, struct cbdt_blkdev *b, unsigned q)
{
	struct cbdt_channel_params p = {
		.backend_id = (uint16_t)b->backend_id,
		.blkdev_id = (uint16_t)b->id,
		.queue = (uint16_t)q,
		.blkdev_owner = b->owner,
		.backend_ident = b->backend_ident,
	};
	uint64_t owner;
	int ret, seg;

	seg = cbdt_slot_claim(t, CBDT_OBJ_SEGMENT, -1, (uint16_t)b->host_id,
			      &owner);
	if (seg < 0)
		return seg;
	ret = cbdt_channel_init(t, (uint32_t)seg, &p);
	if (ret)
		goto err_release_segment;
	b->segs[q] = (uint32_t)seg;
	b->seg_owners[q] = owner;
	return 0;

err_release_segment:
	cbdt_slot_release(t, CBDT_OBJ_SEGMENT, (uint32_t)seg, owner);
	return ret;
}

static int blkdev_record_write(struct cbdt *t, const struct cbdt_blkdev *b,
			       uint64_t backend_owner)
{
	struct cbdt_blkdev_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.host_id = (uint16_t)b->host_id;
	rec.backend_id = (uint16_t)b->backend_id;
	rec.queues = b->queues;
	rec.flags = b->ro ? CBDT_BLKDEV_RO : 0;
	rec.backend_owner = backend_owner;
	memcpy(rec.segs, b->segs, sizeof(rec.segs));
	rec.backend_ident = b->backend_ident;
	return cbdt_record_write(t, CBDT_OBJ_BLKDEV, b->id, &rec, sizeof(rec));
}

static uint32_t handler_state(const struct cbdt *t, uint32_t seg)
{
	/* Pairs with the handler's store-release of handler_state on
	 * attach (cbdt_channel_open) and detach. */
	return smp_load_acquire(&cbdt_segment_ctrl(t, seg)->handler_state);
}

/*
 * Wait until every one of the first @n channels is (@attached) or is not
 * (!@attached) served by a handler, bumping our heartbeat meanwhile so the
 * janitors keep seeing the blkdev alive.  -ETIMEDOUT after @timeout_ms.
 */
/*
 * A janitor (or cbd-admin) may have cleared a stalled client's blkdev and
 * segments, and another host may own those slots now: never write to a
 * slot or segment whose owner word is no longer the one we claimed.
 */
static bool segment_ours(const struct cbdt *t, const struct cbdt_blkdev *b,
			 unsigned q)
{
	return cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, b->segs[q]) ==
	       b->seg_owners[q];
}

static bool blkdev_ours(const struct cbdt *t, const struct cbdt_blkdev *b)
{
	return cbdt_slot_owner(t, CBDT_OBJ_BLKDEV, b->id) == b->owner;
}

static int blkdev_wait_handlers(struct cbdt *t, const struct cbdt_blkdev *b,
				unsigned n, bool attached, uint32_t timeout_ms)
{
	uint64_t start = cbdt_now_ms(), hb = start;

	for (;;) {
		unsigned done = 0;
		uint64_t now;

		for (unsigned q = 0; q < n; q++)
			if (!segment_ours(t, b, q) ||
			    (handler_state(t, b->segs[q]) ==
			     CBDT_HANDLER_ATTACHED) == attached)
				done++;
		if (done == n)
			return 0;
		now = cbdt_now_ms();
		if (now - start >= timeout_ms)
			return -ETIMEDOUT;
		if (now - hb >= BLKDEV_HB_EVERY_MS && blkdev_ours(t, b)) {
			cbdt_blkdev_heartbeat(t, b);
			hb = now;
		}
		blkdev_sleep_us(BLKDEV_POLL_US);
	}
}

/*
 * Ask the handlers of the first @n channels to detach and wait for them
 * (bounded), then free those segments.  Handles in b->ch are closed.
 */
static void blkdev_segments_free(struct cbdt *t, struct cbdt_blkdev *b,
				 unsigned n, uint32_t timeout_ms)
{
	for (unsigned q = 0; q < n; q++) {
		struct cbdt_channel_ctrl *ctrl =
			cbdt_segment_ctrl(t, b->segs[q]);

		if (!segment_ours(t, b, q))
			continue;
		if (b->ch[q]) {
			cbdt_channel_client_close(b->ch[q]);
		} else {
			/* No handle (map failed early): the same request.
			 * Pairs with the handler's load-acquire. */
			smp_store_release(&ctrl->client_state,
					  CBDT_CLIENT_CLOSING);
			smp_mb();
			cbdt_doorbell_ring(&ctrl->sq_sleep);
		}
	}
	/* A handler still attached after the timeout belongs to a dead or
	 * stuck backend; it must notice the segment moved on by itself. */
	blkdev_wait_handlers(t, b, n, false, timeout_ms);
	for (unsigned q = 0; q < n; q++) {
		if (b->ch[q]) {
			cbdt_channel_close(b->ch[q]);
			b->ch[q] = NULL;
		}
		cbdt_slot_release(t, CBDT_OBJ_SEGMENT, b->segs[q],
				  b->seg_owners[q]);
	}
}

int cbdt_blkdev_map(struct cbdt *t, uint32_t host_id, uint32_t backend_id,
		    unsigned queues, bool ro, uint32_t attach_timeout_ms,
		    struct cbdt_blkdev **out)
{
	struct cbdt_backend_rec brec;
	struct cbdt_blkdev *b;
	uint64_t backend_owner;
	unsigned created = 0, max;
	int ret;

	if (!t || !out || host_id >= cbdt_slot_count(t, CBDT_OBJ_HOST))
		return -EINVAL;
	ret = backend_check(t, backend_id, ro, &brec, &backend_owner);
	if (ret)
		return ret;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->host_id = host_id;
	b->backend_id = backend_id;
	b->backend_ident = brec.ident;
	b->size = brec.size;
	b->ro = ro;
	max = brec.handlers < CBDT_QUEUES_MAX ? brec.handlers : CBDT_QUEUES_MAX;
	b->queues = (uint16_t)(queues < 1 ? 1 : queues > max ? max : queues);

	ret = cbdt_slot_claim(t, CBDT_OBJ_BLKDEV, -1, (uint16_t)host_id,
			      &b->owner);
	if (ret < 0)
		goto err_free;
	b->id = (uint32_t)ret;

	if (!ro) {
		ret = cbdt_backend_lock(t, backend_id, b->id, b->owner);
		if (ret)
			goto err_release_blkdev;
	}

	for (created = 0; created < b->queues; created++) {
		ret = segment_create(t, b, created);
		if (ret)
			goto err_free_segments;
	}
	ret = blkdev_record_write(t, b, backend_owner);
	if (ret)
		goto err_free_segments;

	for (unsigned q = 0; q < b->queues; q++) {
		ret = cbdt_channel_open(t, b->segs[q], CBDT_CHANNEL_CLIENT, 0,
					&b->ch[q]);
		if (ret)
			goto err_free_segments;
	}
	ret = blkdev_wait_handlers(t, b, b->queues, true, attach_timeout_ms);
	if (ret)
		goto err_free_segments;

	*out = b;
	return 0;

err_free_segments:
	blkdev_segments_free(t, b, created, attach_timeout_ms);
	if (!ro)
		cbdt_backend_unlock(t, backend_id, b->id, b->owner);
err_release_blkdev:
	cbdt_slot_release(t, CBDT_OBJ_BLKDEV, b->id, b->owner);
err_free:
	free(b);
	return ret;
}

void cbdt_blkdev_heartbeat(struct cbdt *t, const struct cbdt_blkdev *b)
{
	cbdt_slot_heartbeat(t, CBDT_OBJ_BLKDEV, b->id);
}

void cbdt_blkdev_unmap(struct cbdt *t, struct cbdt_blkdev *b,
		       uint32_t detach_timeout_ms)
{
	if (!b)
		return;
	blkdev_segments_free(t, b, b->queues, detach_timeout_ms);
	if (!b->ro)
		cbdt_backend_unlock(t, b->backend_id, b->id, b->owner);
	cbdt_slot_release(t, CBDT_OBJ_BLKDEV, b->id, b->owner);
	free(b);
}
