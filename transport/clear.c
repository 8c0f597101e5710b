/* SPDX-License-Identifier: MIT */
/*
 * Clearing dead objects, shared by the janitor and cbd-admin.  Nothing the
 * caller's observer calls alive is cleared, and dependents go first.  Any
 * process may run these concurrently with the objects' owners and with each
 * other: every state change is a CAS on an owner word, and a handler that
 * may still serve a channel is asked to detach before its segment is freed.
 */
#include <errno.h>
#include <stdlib.h>

#include "barrier.h"
#include "cbdt-cache.h"
#include "cbdt.h"

static bool owner_active(uint64_t owner)
{
	return CBDT_OWNER_STATE(owner) == CBDT_SLOT_ACTIVE;
}

/* Say what keeps an object: -EBUSY (or -EAGAIN for a handler that has
 * not detached yet) with *@by filled if asked for. */
static int blocked(struct cbdt_blocker *by, int ret, enum cbdt_block why,
		   enum cbdt_obj type, uint32_t id)
{
	if (by) {
		by->why = why;
		by->type = type;
		by->id = id;
		by->via_type = CBDT_OBJ_NR;
	}
	return ret;
}

/*
 * True once no live handler can touch the channel any more: it never
 * attached, it detached, or the backend instance it belongs to is gone
 * (slot released or taken over by a restart) or dead.
 */
static bool seg_handler_gone(struct cbdt *t, struct cbdt_channel_ctrl *ctrl,
			     const struct cbdt_segment_rec *rec,
			     struct cbdt_observer *obs)
{
	/* Pairs with the handler's store-release of handler_state on
	 * attach (which follows its write of handler_owner) and detach. */
	uint32_t hs = smp_load_acquire(&ctrl->handler_state);
	uint64_t howner;

	if (hs != CBDT_HANDLER_ATTACHED)
		return true;
	howner = READ_ONCE(ctrl->handler_owner);
	if (cbdt_slot_owner(t, CBDT_OBJ_BACKEND, rec->backend_id) != howner)
		return true;
	return !cbdt_observer_alive(obs, CBDT_OBJ_BACKEND, rec->backend_id);
}

/*
 * Free a segment the caller decided is no longer in use (its blkdev is
 * dead or gone).  A channel's handler is asked to detach first; -EAGAIN
 * while a live one has not done so yet.  -ESTALE if the slot moved on.
 */
static int seg_free(struct cbdt *t, uint32_t id, uint64_t owner,
		    const struct cbdt_segment_rec *rec,
		    struct cbdt_observer *obs, struct cbdt_blocker *by)
{
	struct cbdt_channel_ctrl *ctrl = cbdt_segment_ctrl(t, id);

	if (rec && rec->type == CBDT_SEG_CHANNEL && ctrl &&
	    READ_ONCE(ctrl->magic) == CBDT_CHANNEL_MAGIC) {
		/*
		 * Re-check right before touching the control area, so that a
		 * concurrent clear + new claim of this slot (cbd-admin racing
		 * a janitor) is not hit by our CLOSING but for a window of a
		 * few instructions.
		 */
		if (cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, id) != owner)
			return -ESTALE;
		/* Pairs with the handler's load-acquire of client_state. */
		smp_store_release(&ctrl->client_state, CBDT_CLIENT_CLOSING);
		/* Order the store above before reading the doorbell. */
		smp_mb();
		cbdt_doorbell_ring(&ctrl->sq_sleep);
		if (!seg_handler_gone(t, ctrl, rec, obs))
			return blocked(by, -EAGAIN, CBDT_BLOCK_DETACHING,
				       CBDT_OBJ_BACKEND, rec->backend_id);
	}
	return cbdt_slot_release(t, CBDT_OBJ_SEGMENT, id, owner);
}

/* True if an ACTIVE segment is index 0 of the cache of backend @ident. */
static bool cache_has_index0(const struct cbdt *t, uint64_t ident)
{
	uint32_t n = cbdt_slot_count(t, CBDT_OBJ_SEGMENT);
	struct cbdt_segment_rec rec;

	for (uint32_t id = 0; id < n; id++)
		if (owner_active(cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, id)) &&
		    !cbdt_segment_read(t, id, &rec) &&
		    rec.type == CBDT_SEG_CACHE && rec.backend_ident == ident &&
		    rec.queue == 0)
			return true;
	return false;
}

/*
 * A cache segment goes only with its whole cache: when the host that
 * owns it is dead and nothing in the cache is dirty.  A dirty cache is
 * kept for its backend's restart, which adopts and writes it back.
 */
static int cache_seg_clear(struct cbdt *t, uint32_t id, uint64_t owner,
			   const struct cbdt_segment_rec *rec,
			   struct cbdt_observer *obs, struct cbdt_blocker *by)
{
	uint32_t host = CBDT_OWNER_HOST(owner), n;
	struct cbdt_cache_seg *segs;
	int found, dirty;

	if (host < cbdt_slot_count(t, CBDT_OBJ_HOST) &&
	    cbdt_observer_alive(obs, CBDT_OBJ_HOST, host))
		return blocked(by, -EBUSY, CBDT_BLOCK_ALIVE, CBDT_OBJ_HOST,
			       host);
	n = rec->cache_nsegs ? rec->cache_nsegs : 1;
	segs = calloc(n, sizeof(*segs));
	if (!segs)
		return -ENOMEM;
	found = cbdt_cache_find(t, rec->backend_ident, segs, n);
	if (found == -EBADMSG && !cache_has_index0(t, rec->backend_ident)) {
		/* what is left of a cache freed part way: no log to replay */
		free(segs);
		return seg_free(t, id, owner, rec, obs, by);
	}
	/* Half a cache (or a corrupt one) may still hold data: keep it. */
	dirty = found < 0 ? 1 : cbdt_cache_dirty(t, segs, (uint32_t)found);
	if (dirty) {
		free(segs);
		return dirty < 0 ? dirty :
				   blocked(by, -EBUSY, CBDT_BLOCK_DIRTY,
					   CBDT_OBJ_BACKEND, rec->backend_id);
	}
	/* The whole cache at once, index 0 (its log's tail) last. */
	for (int i = found - 1; i >= 0; i--) {
		int r = seg_free(t, segs[i].id, segs[i].owner, &segs[i].rec,
				 obs, by);

		if (r && r != -ESTALE) {
			free(segs);
			return r;
		}
	}
	free(segs);
	return 0;
}

int cbdt_segment_clear(struct cbdt *t, uint32_t id, struct cbdt_observer *obs,
		       struct cbdt_blocker *by)
{
	struct cbdt_segment_rec rec;
	uint64_t owner, bowner;
	int ret;

	if (!cbdt_slot_get(t, CBDT_OBJ_SEGMENT, id))
		return -ERANGE;
	owner = cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, id);
	if (!owner_active(owner))
		return 0;

	ret = cbdt_segment_read(t, id, &rec);
	if (ret) {
		/*
		 * Claimed but no record yet: a mapping being set up.  Nobody
		 * bumps a segment's heartbeat, so the observer calls it
		 * alive only for the timeout after its claim: a grace period.
		 */
		if (cbdt_observer_alive(obs, CBDT_OBJ_SEGMENT, id))
			return blocked(by, -EBUSY, CBDT_BLOCK_ALIVE,
				       CBDT_OBJ_SEGMENT, id);
		return seg_free(t, id, owner, NULL, obs, by);
	}
	if (rec.type == CBDT_SEG_NONE) {
		if (cbdt_observer_alive(obs, CBDT_OBJ_SEGMENT, id))
			return blocked(by, -EBUSY, CBDT_BLOCK_ALIVE,
				       CBDT_OBJ_SEGMENT, id);
		return seg_free(t, id, owner, NULL, obs, by);
	}
	if (rec.type == CBDT_SEG_CACHE)
		return cache_seg_clear(t, id, owner, &rec, obs, by);
	if (rec.type != CBDT_SEG_CHANNEL)
		return -EOPNOTSUPP; /* a type this version does not know */

	bowner = cbdt_slot_owner(t, CBDT_OBJ_BLKDEV, rec.blkdev_id);
	if (bowner == rec.blkdev_owner) {
		if (cbdt_observer_alive(obs, CBDT_OBJ_BLKDEV, rec.blkdev_id))
			return blocked(by, -EBUSY, CBDT_BLOCK_BELONGS,
				       CBDT_OBJ_BLKDEV, rec.blkdev_id);
	} else if (cbdt_observer_alive(obs, CBDT_OBJ_SEGMENT, id)) {
		/*
		 * The record may be left over from the slot's previous use
		 * while a new mapper, who just claimed it, has not written
		 * its own yet: the same grace as above.
		 */
		return blocked(by, -EBUSY, CBDT_BLOCK_ALIVE, CBDT_OBJ_SEGMENT,
			       id);
	}
	return seg_free(t, id, owner, &rec, obs, by);
}

/* Free every channel segment recorded as belonging to blkdev (@id, @owner). */
static int blkdev_segments_clear(struct cbdt *t, uint32_t id, uint64_t owner,
				 struct cbdt_observer *obs,
				 struct cbdt_blocker *by)
{
	uint32_t n = cbdt_slot_count(t, CBDT_OBJ_SEGMENT);
	struct cbdt_segment_rec rec;
	int ret = 0;

	/* Scan rather than trust the blkdev record: a mapper that died
	 * before writing it still left its segments' records behind. */
	for (uint32_t s = 0; s < n; s++) {
		uint64_t sowner = cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, s);
		int r;

		if (!owner_active(sowner) || cbdt_segment_read(t, s, &rec) ||
		    rec.type != CBDT_SEG_CHANNEL || rec.blkdev_id != id ||
		    rec.blkdev_owner != owner)
			continue;
		r = seg_free(t, s, sowner, &rec, obs, by);
		if (r == -EAGAIN)
			ret = -EAGAIN;
	}
	return ret;
}

/* Drop the writable lock of whichever backend blkdev (@id, @owner) holds. */
static void blkdev_locks_drop(struct cbdt *t, uint32_t id, uint64_t owner)
{
	uint32_t n = cbdt_slot_count(t, CBDT_OBJ_BACKEND);

	/* Unlock only CASes a lease that is exactly ours: cheap and safe
	 * on every slot, and needs no record that may be missing. */
	for (uint32_t b = 0; b < n; b++)
		cbdt_backend_unlock(t, b, id, owner);
}

int cbdt_blkdev_clear(struct cbdt *t, uint32_t id, struct cbdt_observer *obs,
		      struct cbdt_blocker *by)
{
	uint64_t owner;
	int ret;

	if (!cbdt_slot_get(t, CBDT_OBJ_BLKDEV, id))
		return -ERANGE;
	owner = cbdt_slot_owner(t, CBDT_OBJ_BLKDEV, id);
	if (!owner_active(owner))
		return 0;
	if (cbdt_observer_alive(obs, CBDT_OBJ_BLKDEV, id))
		return blocked(by, -EBUSY, CBDT_BLOCK_ALIVE, CBDT_OBJ_BLKDEV,
			       id);

	ret = blkdev_segments_clear(t, id, owner, obs, by);
	if (ret)
		return ret;
	blkdev_locks_drop(t, id, owner);
	return cbdt_slot_release(t, CBDT_OBJ_BLKDEV, id, owner);
}

/* A live blkdev that maps backend @id (the instance with @ident), or -1. */
static int backend_mapper(struct cbdt *t, uint32_t id, uint64_t ident,
			  struct cbdt_observer *obs)
{
	uint32_t n = cbdt_slot_count(t, CBDT_OBJ_BLKDEV);
	struct cbdt_blkdev_rec rec;

	for (uint32_t b = 0; b < n; b++) {
		if (!owner_active(cbdt_slot_owner(t, CBDT_OBJ_BLKDEV, b)) ||
		    cbdt_blkdev_read(t, b, &rec) || rec.backend_id != id)
			continue;
		if (ident && rec.backend_ident && rec.backend_ident != ident)
			continue; /* maps an earlier user of the slot */
		if (cbdt_observer_alive(obs, CBDT_OBJ_BLKDEV, b))
			return (int)b;
	}
	return -1;
}

int cbdt_backend_clear(struct cbdt *t, uint32_t id, struct cbdt_observer *obs,
		       struct cbdt_blocker *by)
{
	struct cbdt_backend_rec rec;
	uint64_t owner;
	int m;

	if (!cbdt_slot_get(t, CBDT_OBJ_BACKEND, id))
		return -ERANGE;
	owner = cbdt_slot_owner(t, CBDT_OBJ_BACKEND, id);
	if (!owner_active(owner))
		return 0;
	if (cbdt_observer_alive(obs, CBDT_OBJ_BACKEND, id))
		return blocked(by, -EBUSY, CBDT_BLOCK_ALIVE, CBDT_OBJ_BACKEND,
			       id);
	/*
	 * A live client's I/O waits for a dead backend to come back: keep
	 * the slot (and its id and records) for the restarted daemon to
	 * re-adopt.
	 */
	if (cbdt_backend_read(t, id, &rec))
		rec.ident = 0;
	m = backend_mapper(t, id, rec.ident, obs);
	if (m >= 0)
		return blocked(by, -EBUSY, CBDT_BLOCK_MAPPED, CBDT_OBJ_BLKDEV,
			       (uint32_t)m);
	return cbdt_slot_release(t, CBDT_OBJ_BACKEND, id, owner);
}

/*
 * Clear every slot of @type owned by host @host: the first error other
 * than "already gone" is returned, after trying them all.
 */
static int host_objects_clear(struct cbdt *t, enum cbdt_obj type, uint32_t host,
			      struct cbdt_observer *obs,
			      struct cbdt_blocker *by)
{
	struct cbdt_blocker b;
	uint32_t n = cbdt_slot_count(t, type);
	int ret = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t o = cbdt_slot_owner(t, type, i);
		int r;

		if (!owner_active(o) || CBDT_OWNER_HOST(o) != host)
			continue;
		switch (type) {
		case CBDT_OBJ_BLKDEV:
			r = cbdt_blkdev_clear(t, i, obs, &b);
			break;
		case CBDT_OBJ_BACKEND:
			r = cbdt_backend_clear(t, i, obs, &b);
			break;
		default:
			r = cbdt_segment_clear(t, i, obs, &b);
			break;
		}
		if (r && r != -ESTALE && !ret) {
			ret = r;
			if (by && (r == -EBUSY || r == -EAGAIN)) {
				*by = b;
				/* the host's object through which it blocks */
				by->via_type = type;
				by->via_id = i;
			}
		}
	}
	return ret;
}

int cbdt_host_clear(struct cbdt *t, uint32_t id, struct cbdt_observer *obs,
		    struct cbdt_blocker *by)
{
	uint64_t owner;
	int ret, r;

	if (!cbdt_slot_get(t, CBDT_OBJ_HOST, id))
		return -ERANGE;
	owner = cbdt_slot_owner(t, CBDT_OBJ_HOST, id);
	if (!owner_active(owner))
		return 0;
	if (cbdt_observer_alive(obs, CBDT_OBJ_HOST, id))
		return blocked(by, -EBUSY, CBDT_BLOCK_ALIVE, CBDT_OBJ_HOST, id);

	/* Blkdevs free their segments and locks; backends then see no
	 * mapping from this host; leftover segments last.  The first
	 * blocker found is the one reported. */
	ret = host_objects_clear(t, CBDT_OBJ_BLKDEV, id, obs, by);
	r = host_objects_clear(t, CBDT_OBJ_BACKEND, id, obs, ret ? NULL : by);
	if (!ret)
		ret = r;
	r = host_objects_clear(t, CBDT_OBJ_SEGMENT, id, obs, ret ? NULL : by);
	if (!ret)
		ret = r;
	/* Until all of them are gone the slot stays: objects carry only
	 * the host id, which a new host in this slot would inherit. */
	if (ret)
		return ret;
	return cbdt_slot_release(t, CBDT_OBJ_HOST, id, owner);
}
