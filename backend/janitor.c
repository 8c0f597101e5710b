/* SPDX-License-Identifier: MIT */
/*
 * The janitor: finds dead objects with the daemon's observer and clears
 * them through libcbdt's clear functions in dependency order, logging each.
 * Runs in one thread of the daemon; across hosts, one pass at a time under
 * the transport's janitor lease.
 */
#include <errno.h>
#include <string.h>

#include "janitor.h"
#include "log.h"

struct janitor {
	struct cbdt *t;
	struct cbdt_observer *obs;
	int cleared;
};

static bool slot_active(const struct cbdt *t, enum cbdt_obj type, uint32_t id,
			uint64_t *owner)
{
	*owner = cbdt_slot_owner(t, type, id);
	return CBDT_OWNER_STATE(*owner) == CBDT_SLOT_ACTIVE;
}

static unsigned long long age_ms(const struct janitor *j, enum cbdt_obj type,
				 uint32_t id)
{
	return (unsigned long long)cbdt_observer_age_ms(j->obs, type, id);
}

/* A clear that failed for a reason other than "not yet" is worth a line. */
static void janitor_clear_failed(enum cbdt_obj type, uint32_t id, int ret)
{
	if (ret == -EBUSY || ret == -EAGAIN || ret == -ESTALE)
		log_dbg("janitor: %s %u: not cleared yet: %s",
			cbdt_obj_name(type), id, strerror(-ret));
	else
		log_warn("janitor: %s %u: cannot clear: %s",
			 cbdt_obj_name(type), id, strerror(-ret));
}

struct seg_seen {
	uint32_t id;
	uint64_t owner;
	uint16_t queue;
};

/* The channel segments blkdev (@id, @owner) has now, so that the ones its
 * clear frees can be logged by name. */
static unsigned blkdev_segments(const struct cbdt *t, uint32_t id,
				uint64_t owner, struct seg_seen *out,
				unsigned max)
{
	uint32_t n = cbdt_slot_count(t, CBDT_OBJ_SEGMENT);
	struct cbdt_segment_rec rec;
	unsigned found = 0;

	for (uint32_t s = 0; s < n && found < max; s++) {
		uint64_t so;

		if (!slot_active(t, CBDT_OBJ_SEGMENT, s, &so) ||
		    cbdt_segment_read(t, s, &rec) ||
		    rec.type != CBDT_SEG_CHANNEL || rec.blkdev_id != id ||
		    rec.blkdev_owner != owner)
			continue;
		out[found++] = (struct seg_seen){s, so, rec.queue};
	}
	return found;
}

static void janitor_blkdev(struct janitor *j, uint32_t id, uint64_t owner)
{
	struct seg_seen segs[CBDT_QUEUES_MAX];
	struct cbdt_blkdev_rec rec;
	unsigned nsegs;
	int ret;

	if (cbdt_blkdev_read(j->t, id, &rec))
		rec.backend_id = 0xffff; /* died before writing it */
	nsegs = blkdev_segments(j->t, id, owner, segs, CBDT_QUEUES_MAX);
	ret = cbdt_blkdev_clear(j->t, id, j->obs, NULL);

	for (unsigned i = 0; i < nsegs; i++) {
		if (cbdt_slot_owner(j->t, CBDT_OBJ_SEGMENT, segs[i].id) ==
		    segs[i].owner)
			continue;
		log_info(
			"janitor: segment %u: cleared: channel %u of dead blkdev %u",
			segs[i].id, segs[i].queue, id);
		j->cleared++;
	}
	if (ret) {
		janitor_clear_failed(CBDT_OBJ_BLKDEV, id, ret);
		return;
	}
	log_info("janitor: blkdev %u: cleared: heartbeat stopped %llu ms ago "
		 "(host %u, backend %d)",
		 id, age_ms(j, CBDT_OBJ_BLKDEV, id), CBDT_OWNER_HOST(owner),
		 rec.backend_id == 0xffff ? -1 : (int)rec.backend_id);
	j->cleared++;
}

static void janitor_blkdevs(struct janitor *j)
{
	uint32_t n = cbdt_slot_count(j->t, CBDT_OBJ_BLKDEV);
	uint64_t owner;

	for (uint32_t id = 0; id < n; id++)
		if (slot_active(j->t, CBDT_OBJ_BLKDEV, id, &owner) &&
		    !cbdt_observer_alive(j->obs, CBDT_OBJ_BLKDEV, id))
			janitor_blkdev(j, id, owner);
}

/* Segments no live blkdev accounts for: left by a mapper that died half
 * way, or whose blkdev slot was cleared while a handler held on. */
static void janitor_segments(struct janitor *j)
{
	uint32_t n = cbdt_slot_count(j->t, CBDT_OBJ_SEGMENT);
	uint64_t owner;

	for (uint32_t id = 0; id < n; id++) {
		int ret;

		if (!slot_active(j->t, CBDT_OBJ_SEGMENT, id, &owner))
			continue;
		ret = cbdt_segment_clear(j->t, id, j->obs, NULL);
		if (ret == -EBUSY || ret == -EOPNOTSUPP)
			continue; /* in use, or a type we do not know */
		if (ret) {
			janitor_clear_failed(CBDT_OBJ_SEGMENT, id, ret);
			continue;
		}
		log_info("janitor: segment %u: cleared: orphaned (host %u)", id,
			 CBDT_OWNER_HOST(owner));
		j->cleared++;
	}
}

static void janitor_backends(struct janitor *j)
{
	uint32_t n = cbdt_slot_count(j->t, CBDT_OBJ_BACKEND);
	struct cbdt_backend_rec rec;
	uint64_t owner;

	for (uint32_t id = 0; id < n; id++) {
		int ret;

		if (!slot_active(j->t, CBDT_OBJ_BACKEND, id, &owner) ||
		    cbdt_observer_alive(j->obs, CBDT_OBJ_BACKEND, id))
			continue;
		if (cbdt_backend_read(j->t, id, &rec))
			strcpy(rec.name, "?");
		ret = cbdt_backend_clear(j->t, id, j->obs, NULL);
		if (ret == -EBUSY) {
			log_dbg("janitor: backend %u (%s): dead but kept: a live "
				"blkdev maps it",
				id, rec.name);
			continue;
		}
		if (ret) {
			janitor_clear_failed(CBDT_OBJ_BACKEND, id, ret);
			continue;
		}
		log_info("janitor: backend %u (%s): cleared: heartbeat stopped "
			 "%llu ms ago (host %u)",
			 id, rec.name, age_ms(j, CBDT_OBJ_BACKEND, id),
			 CBDT_OWNER_HOST(owner));
		j->cleared++;
	}
}

static void janitor_hosts(struct janitor *j)
{
	uint32_t n = cbdt_slot_count(j->t, CBDT_OBJ_HOST);
	struct cbdt_host_rec rec;
	uint64_t owner;

	for (uint32_t id = 0; id < n; id++) {
		int ret;

		if (!slot_active(j->t, CBDT_OBJ_HOST, id, &owner) ||
		    cbdt_observer_alive(j->obs, CBDT_OBJ_HOST, id))
			continue;
		if (cbdt_host_read(j->t, id, &rec))
			strcpy(rec.hostname, "?");
		ret = cbdt_host_clear(j->t, id, j->obs, NULL);
		if (ret) {
			janitor_clear_failed(CBDT_OBJ_HOST, id, ret);
			continue;
		}
		log_info(
			"janitor: host %u (%s): cleared: heartbeat stopped %llu ms "
			"ago",
			id, rec.hostname, age_ms(j, CBDT_OBJ_HOST, id));
		j->cleared++;
	}
}

int janitor_pass(struct cbdt *t, struct cbdt_observer *obs, uint32_t host_id)
{
	struct janitor j = {.t = t, .obs = obs};
	int ret;

	if (!t || !obs)
		return -EINVAL;
	cbdt_observer_sample(obs);
	ret = cbdt_janitor_lease_acquire(t, host_id, obs);
	if (ret == -EBUSY)
		return 0; /* another host's janitor is at work */
	if (ret)
		return ret;

	/* Dependents first: a blkdev's segments and lock, then backends no
	 * live blkdev maps, then hosts that own nothing any more. */
	janitor_blkdevs(&j);
	janitor_segments(&j);
	janitor_backends(&j);
	janitor_hosts(&j);

	cbdt_janitor_lease_release(t, host_id);
	return j.cleared;
}
