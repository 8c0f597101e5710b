/* SPDX-License-Identifier: MIT */
/*
 * Channel discovery: a thread that scans the segment slots every
 * DISCOVER_INTERVAL_MS for channels mapped to our backends and starts a
 * handler for each.  The scan runs under svc->lock; it reads shared slots
 * and control words only, and remembers what it decided not to serve so
 * that an idle scan costs one owner-word load per segment.
 */
#include <errno.h>
#include <string.h>

#include "backend.h"
#include "barrier.h"
#include "log.h"

/* Between 50 and 100 ms: a mapping client waits for us this long. */
#define DISCOVER_INTERVAL_MS 50U

static struct backend *backend_by_rec(struct service *svc,
				      const struct cbdt_segment_rec *rec)
{
	for (struct backend *b = svc->backends; b; b = b->next)
		if (b->id == rec->backend_id && b->ident == rec->backend_ident)
			return b->lost ? NULL : b;
	return NULL;
}

enum verdict {
	V_SKIP,	 /* not ours (or never servable): until the slot moves */
	V_LATER, /* ours, but not ready or no handler free: look again */
	V_SERVE,
};

/* Is ACTIVE segment @seg a channel we should serve? */
static enum verdict discover_judge(struct service *svc, uint32_t seg,
				   struct backend **bp)
{
	struct cbdt *t = svc->t;
	struct cbdt_segment_rec rec;
	struct cbdt_channel_ctrl *ctrl;
	struct backend *b;
	uint64_t bo;
	int ret;

	ret = cbdt_segment_read(t, seg, &rec);
	if (ret == -EBADMSG)
		return V_LATER; /* being rewritten: torn right now */
	if (ret || rec.type != CBDT_SEG_CHANNEL)
		return V_SKIP;
	b = backend_by_rec(svc, &rec);
	if (!b)
		return V_SKIP;
	/* A channel of a blkdev that is gone or was remapped is stale: the
	 * janitor frees it.  Generations only grow, so this never heals. */
	bo = cbdt_slot_owner(t, CBDT_OBJ_BLKDEV, rec.blkdev_id);
	if (CBDT_OWNER_STATE(bo) != CBDT_SLOT_ACTIVE || bo != rec.blkdev_owner)
		return V_SKIP;
	ctrl = cbdt_segment_ctrl(t, seg);
	/* Pairs with the store-release of magic in cbdt_channel_init():
	 * the control words below were written before it. */
	if (smp_load_acquire(&ctrl->magic) != CBDT_CHANNEL_MAGIC ||
	    READ_ONCE(ctrl->blkdev_owner) != rec.blkdev_owner)
		return V_LATER; /* the client is still initialising it */
	/* Pairs with the store-release of client_state in client_close(). */
	if (smp_load_acquire(&ctrl->client_state) != CBDT_CLIENT_OPEN)
		return V_SKIP;
	if (b->nr_handlers >= b->conf.handlers) {
		if (!b->cap_warned)
			log_warn(
				"backend %s: segment %u: all %u handlers busy; the channel waits",
				b->conf.name, seg, b->conf.handlers);
		b->cap_warned = true;
		return V_LATER;
	}
	*bp = b;
	return V_SERVE;
}

static void discover_attach(struct service *svc, struct backend *b,
			    uint32_t seg, uint64_t o, struct seg_seen *seen)
{
	struct cbdt_channel *ch;
	int ret;

	ret = cbdt_channel_open(svc->t, seg, CBDT_CHANNEL_HANDLER, b->owner,
				&ch);
	if (ret) {
		log_warn("backend %s: segment %u: cannot attach: %s",
			 b->conf.name, seg, strerror(-ret));
		seen->skip = true;
		return;
	}
	/*
	 * The client may have unmapped and another one re-claimed the
	 * segment since @o was sampled: serve only the channel we judged.
	 * Once we are attached, a client's unmap waits for our detach.
	 */
	if (cbdt_slot_owner(svc->t, CBDT_OBJ_SEGMENT, seg) != o) {
		log_dbg("backend %s: segment %u: moved on while attaching",
			b->conf.name, seg);
		cbdt_channel_close(ch);
		return;
	}
	ret = handler_start(svc, b, seg, o, ch);
	if (ret) {
		log_err("backend %s: segment %u: cannot start a handler: %s",
			b->conf.name, seg, strerror(-ret));
		cbdt_channel_close(ch);
	}
}

void discover_scan(struct service *svc)
{
	struct cbdt *t = svc->t;

	for (struct backend *b = svc->backends; b; b = b->next)
		handlers_reap(svc, b);
	if (!svc->backends)
		return;

	for (uint32_t seg = 0; seg < svc->nr_segs; seg++) {
		uint64_t o = cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, seg);
		struct seg_seen *seen = &svc->seen[seg];
		struct handler *h = svc->served[seg];
		struct cbdt_slot *slot;
		struct backend *b = NULL;
		uint64_t seq[2];

		if (CBDT_OWNER_STATE(o) != CBDT_SLOT_ACTIVE) {
			seen->skip = false;
			continue;
		}
		/* Served, or its old handler is still on its way out. */
		if (h)
			continue;
		slot = cbdt_slot_get(t, CBDT_OBJ_SEGMENT, seg);
		/* A sample to notice rewrites; the record itself is read
		 * (with its crc) by cbdt_segment_read. */
		seq[0] = READ_ONCE(slot->rec[0].hdr.seq);
		seq[1] = READ_ONCE(slot->rec[1].hdr.seq);
		if (seen->skip && seen->owner == o && seen->seq[0] == seq[0] &&
		    seen->seq[1] == seq[1])
			continue;
		seen->owner = o;
		seen->seq[0] = seq[0];
		seen->seq[1] = seq[1];
		seen->skip = false;
		switch (discover_judge(svc, seg, &b)) {
		case V_SKIP:
			seen->skip = true;
			break;
		case V_LATER:
			break;
		case V_SERVE:
			discover_attach(svc, b, seg, o, seen);
			break;
		}
	}
}

static void *discover_main(void *arg)
{
	struct service *svc = arg;

	while (worker_sleep(&svc->disc, DISCOVER_INTERVAL_MS)) {
		pthread_mutex_lock(&svc->lock);
		discover_scan(svc);
		pthread_mutex_unlock(&svc->lock);
	}
	return NULL;
}

int discover_start(struct service *svc)
{
	return worker_start(&svc->disc, "discover", discover_main, svc);
}

void discover_stop(struct service *svc)
{
	worker_stop(&svc->disc);
}
