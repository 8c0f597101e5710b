/* SPDX-License-Identifier: MIT */
/*
 * cbdfs: which backends the directory shows, mapping and unmapping their
 * blkdevs on open and release, and the heartbeat thread.
 *
 * Concurrency: open/release (map/unmap) are serialised by fs->open_lock;
 * fs->bdevs[] and the observer are under fs->lock, taken after open_lock.
 * The heartbeat thread only takes fs->lock, so it keeps beating while an
 * open waits for handlers or a release drains.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbdfs.h"
#include "log.h"
#include "util.h"

int cbdfs_state_init(struct cbdfs *fs)
{
	int ret;

	pthread_mutex_init(&fs->open_lock, NULL);
	pthread_mutex_init(&fs->lock, NULL);
	/*
	 * The observer only keeps ages: whether a backend is dead is decided
	 * against its own host's advertised timeout (backend_alive).
	 */
	ret = cbdt_observer_new(fs->t, UINT32_MAX, &fs->obs);
	return ret;
}

void cbdfs_state_destroy(struct cbdfs *fs)
{
	cbdt_observer_free(fs->obs);
	fs->obs = NULL;
	pthread_mutex_destroy(&fs->open_lock);
	pthread_mutex_destroy(&fs->lock);
}

/* Timeout after which backends of host @host_id count as dead. */
static uint64_t host_timeout_ms(struct cbdfs *fs, uint32_t host_id)
{
	struct cbdt_host_rec h;

	if (cbdt_host_read(fs->t, host_id, &h) || h.hb_timeout_ms == 0)
		return CBDFS_HB_TIMEOUT_MS;
	return h.hb_timeout_ms;
}

/* Backend @id alive in the transport: 0 and *rec, or -ENOENT (fs->lock). */
static int backend_alive(struct cbdfs *fs, uint32_t id,
			 struct cbdt_backend_rec *rec)
{
	uint64_t owner;

	if (id >= cbdt_slot_count(fs->t, CBDT_OBJ_BACKEND))
		return -ENOENT;
	owner = cbdt_slot_owner(fs->t, CBDT_OBJ_BACKEND, id);
	if (CBDT_OWNER_STATE(owner) != CBDT_SLOT_ACTIVE)
		return -ENOENT;
	if (cbdt_backend_read(fs->t, id, rec))
		return -ENOENT;
	if (!cbdt_observer_alive(fs->obs, CBDT_OBJ_BACKEND, id))
		return -ENOENT;
	if (cbdt_observer_age_ms(fs->obs, CBDT_OBJ_BACKEND, id) >
	    host_timeout_ms(fs, rec->host_id))
		return -ENOENT;
	return 0;
}

int cbdfs_backend_info(struct cbdfs *fs, uint32_t id,
		       struct cbdfs_backend_info *info)
{
	struct cbdt_backend_rec rec;
	struct cbdfs_blkdev *bd;
	int ret = 0;

	if (id >= CBDT_BACKENDS_NR)
		return -ENOENT;
	pthread_mutex_lock(&fs->lock);
	bd = fs->bdevs[id];
	if (bd) {
		/* an open file stays visible even while its backend is down */
		info->size = bd->size;
		info->ro = bd->backend_ro || fs->cfg.ro;
		memcpy(info->name, bd->name, sizeof(info->name));
	} else {
		ret = backend_alive(fs, id, &rec);
		if (!ret) {
			info->size = rec.size;
			info->ro = (rec.flags & CBDT_BACKEND_RO) || fs->cfg.ro;
			memcpy(info->name, rec.name, sizeof(info->name));
			info->name[sizeof(info->name) - 1] = '\0';
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

static unsigned default_queues(const struct cbdt_backend_rec *rec)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = rec->handlers ? rec->handlers : 1;

	if (ncpu > 0 && (unsigned long)ncpu < n)
		n = (unsigned)ncpu;
	return MIN(n, CBDT_QUEUES_MAX);
}

/*
 * A writable open was refused: say who holds the backend and what will
 * free it.  The holder's heartbeat is watched for a moment (twice its
 * host's interval) to tell a live writer from a dead one that a janitor
 * has not cleared yet.
 */
static void busy_explain(struct cbdfs *fs, uint32_t id)
{
	struct cbdt_host_rec h;
	uint32_t bd, wait_ms = 500;
	uint64_t owner, hb;
	char who[256];

	if (cbdt_backend_lock_holder(fs->t, id, &bd))
		return;
	cbdt_obj_describe(fs->t, CBDT_OBJ_BLKDEV, bd, who, sizeof(who));
	owner = cbdt_slot_owner(fs->t, CBDT_OBJ_BLKDEV, bd);
	if (!cbdt_host_read(fs->t, CBDT_OWNER_HOST(owner), &h) &&
	    h.hb_interval_ms)
		wait_ms = MIN(2 * h.hb_interval_ms, 5000U);
	hb = cbdt_slot_heartbeat_read(fs->t, CBDT_OBJ_BLKDEV, bd);
	cbdt_sleep_ms(wait_ms);
	if (cbdt_slot_heartbeat_read(fs->t, CBDT_OBJ_BLKDEV, bd) != hb)
		log_warn(
			"backend%u: writable open refused: %s writes it (alive)",
			id, who);
	else
		log_warn(
			"backend%u: writable open refused: held by %s, whose heartbeat stopped: a janitor clears it once it has been still for its heartbeat timeout, or now: cbd-admin clear-blkdev %u",
			id, who, bd);
}

static int bdev_map(struct cbdfs *fs, uint32_t id, bool writable,
		    struct cbdfs_blkdev **out)
{
	struct cbdt_backend_rec rec;
	struct cbdt_blkdev *b;
	struct cbdfs_blkdev *bd;
	uint32_t attach_ms;
	unsigned queues;
	int ret;

	pthread_mutex_lock(&fs->lock);
	ret = backend_alive(fs, id, &rec);
	pthread_mutex_unlock(&fs->lock);
	if (ret)
		return ret;
	if (writable && (rec.flags & CBDT_BACKEND_RO))
		return -EROFS;
	queues = fs->cfg.queues ? fs->cfg.queues : default_queues(&rec);
	attach_ms = fs->cfg.timeout_s ? fs->cfg.timeout_s * 1000U :
					CBDFS_ATTACH_MS;
	ret = cbdt_blkdev_map(fs->t, fs->host_id, id, queues, !writable,
			      attach_ms, &b);
	if (ret == -EBUSY && writable) {
		busy_explain(fs, id);
		return ret;
	}
	if (ret) {
		log_warn("backend%u: map %s: %s", id, writable ? "rw" : "ro",
			 cbdt_strerror(ret));
		return ret;
	}
	bd = calloc(1, sizeof(*bd));
	if (!bd) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	bd->fs = fs;
	bd->b = b;
	bd->backend_id = id;
	bd->size = b->size;
	bd->ro = b->ro;
	bd->backend_ro = rec.flags & CBDT_BACKEND_RO;
	memcpy(bd->name, rec.name, sizeof(bd->name));
	bd->name[sizeof(bd->name) - 1] = '\0';
	ret = cbdfs_engine_start(bd);
	if (ret)
		goto err_free;
	log_info("backend%u: mapped as blkdev %u, %u queues, %s", id, b->id,
		 b->queues, b->ro ? "read-only" : "writable");
	*out = bd;
	return 0;

err_free:
	free(bd);
err_unmap:
	cbdt_blkdev_unmap(fs->t, b, CBDFS_DRAIN_MS);
	return ret;
}

int cbdfs_blkdev_open(struct cbdfs *fs, uint32_t id, bool writable,
		      struct cbdfs_blkdev **out)
{
	struct cbdfs_blkdev *bd;
	int ret = 0;

	if (id >= CBDT_BACKENDS_NR)
		return -ENOENT;
	if (writable && fs->cfg.ro)
		return -EROFS;
	pthread_mutex_lock(&fs->open_lock);
	bd = fs->bdevs[id];
	if (bd) {
		/* no upgrade of a shared read-only mapping under its users */
		if (writable && bd->backend_ro)
			ret = -EROFS;
		else if (writable && bd->ro)
			ret = -EBUSY;
		else
			bd->refs++;
	} else {
		ret = bdev_map(fs, id, writable, &bd);
		if (!ret) {
			bd->refs = 1;
			pthread_mutex_lock(&fs->lock);
			fs->bdevs[id] = bd;
			pthread_mutex_unlock(&fs->lock);
		}
	}
	pthread_mutex_unlock(&fs->open_lock);
	if (!ret)
		*out = bd;
	return ret;
}

/* Drain (still heartbeating), then take it out of the table and unmap. */
static void bdev_unmap(struct cbdfs *fs, struct cbdfs_blkdev *bd)
{
	uint32_t drain_ms = fs->cfg.timeout_s ? fs->cfg.timeout_s * 1000U :
						CBDFS_DRAIN_MS;

	pthread_mutex_lock(&fs->lock);
	bd->unmapping = true; /* its queues go away: no bdev_lost() now */
	pthread_mutex_unlock(&fs->lock);
	cbdfs_engine_stop(bd, drain_ms);
	pthread_mutex_lock(&fs->lock);
	fs->bdevs[bd->backend_id] = NULL;
	pthread_mutex_unlock(&fs->lock);
	if (bd->lost) {
		/* the janitor freed the slots: only our private handles remain */
		for (unsigned i = 0; i < bd->b->queues; i++)
			cbdt_channel_close(bd->b->ch[i]);
		free(bd->b);
	} else {
		log_info("backend%u: unmapping blkdev %u", bd->backend_id,
			 bd->b->id);
		cbdt_blkdev_unmap(fs->t, bd->b, CBDFS_DRAIN_MS);
	}
	free(bd);
}

void cbdfs_blkdev_release(struct cbdfs *fs, struct cbdfs_blkdev *bd)
{
	pthread_mutex_lock(&fs->open_lock);
	if (--bd->refs == 0)
		bdev_unmap(fs, bd);
	pthread_mutex_unlock(&fs->open_lock);
}

void cbdfs_blkdev_release_all(struct cbdfs *fs)
{
	unsigned i;

	pthread_mutex_lock(&fs->open_lock);
	for (i = 0; i < CBDT_BACKENDS_NR; i++) {
		if (fs->bdevs[i])
			bdev_unmap(fs, fs->bdevs[i]);
	}
	pthread_mutex_unlock(&fs->open_lock);
}

/* ---- heartbeats ------------------------------------------------------ */

/*
 * Someone took us for dead (this process stalled longer than a janitor's
 * heartbeat timeout) and cleared our host: our blkdevs and channels are
 * gone and may already be someone else's.  Nothing can be saved: stop.
 */
static void host_lost(struct cbdfs *fs)
{
	if (fs->host_lost)
		return;
	fs->host_lost = true;
	log_err("host %u (%s): cleared by a janitor while we were stalled; "
		"failing all I/O and unmounting",
		fs->host_id, fs->cfg.hostname);
	pthread_kill(fs->main_thread, SIGTERM);
}

/* Our blkdev slot moved on without us: fail its I/O, never touch it again. */
static void bdev_lost(struct cbdfs_blkdev *bd)
{
	unsigned i;

	if (bd->lost)
		return;
	bd->lost = true;
	log_err("backend%u: blkdev %u was cleared by a janitor; failing its I/O",
		bd->backend_id, bd->b->id);
	for (i = 0; i < bd->nq; i++)
		cbdfs_queue_break(&bd->q[i]);
}

static void heartbeat_once(struct cbdfs *fs)
{
	uint32_t i, n = cbdt_slot_count(fs->t, CBDT_OBJ_BACKEND);
	struct cbdfs_blkdev *bd;

	if (cbdt_slot_owner(fs->t, CBDT_OBJ_HOST, fs->host_id) ==
	    fs->host_owner)
		cbdt_slot_heartbeat(fs->t, CBDT_OBJ_HOST, fs->host_id);
	else
		host_lost(fs);
	pthread_mutex_lock(&fs->lock);
	for (i = 0; i < CBDT_BACKENDS_NR; i++) {
		bd = fs->bdevs[i];
		if (!bd || bd->lost)
			continue;
		if (cbdt_slot_owner(fs->t, CBDT_OBJ_BLKDEV, bd->b->id) ==
		    bd->b->owner)
			cbdt_blkdev_heartbeat(fs->t, bd->b);
		else if (!bd->unmapping)
			bdev_lost(bd);
	}
	/* keep the ages of live backends current, for backend_alive() */
	for (i = 0; i < n; i++) {
		if (CBDT_OWNER_STATE(cbdt_slot_owner(fs->t, CBDT_OBJ_BACKEND,
						     i)) == CBDT_SLOT_ACTIVE)
			cbdt_observer_alive(fs->obs, CBDT_OBJ_BACKEND, i);
	}
	pthread_mutex_unlock(&fs->lock);
}

static void *heartbeat_thread(void *arg)
{
	struct cbdfs *fs = arg;

	do
		heartbeat_once(fs);
	while (worker_sleep(&fs->hb, CBDFS_HB_INTERVAL_MS));
	return NULL;
}

int cbdfs_heartbeat_start(struct cbdfs *fs)
{
	return worker_start(&fs->hb, "heartbeat", heartbeat_thread, fs);
}

void cbdfs_heartbeat_stop(struct cbdfs *fs)
{
	worker_stop(&fs->hb);
}
