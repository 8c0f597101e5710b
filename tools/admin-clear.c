/* SPDX-License-Identifier: MIT */
/*
 * cbd-admin clear-*: decide from an observed snapshot whether an object may
 * go (dead and unused by anything alive), then let libcbdt's cbdt_*_clear
 * (the janitor's code) do it and report what was freed.  Single-threaded.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "cbdt.h"
#include "log.h"
#include "util.h"

/* How long a clear waits for live handlers to detach from channels. */
#define CLEAR_RETRY_MS		10000U
#define CLEAR_RETRY_STEP_MS	100U

/* "host 1 (node-a, client, pid 42)", "backend 0 (disk0, /d.img)", ... */
const char *admin_describe(const struct status_snap *s, enum cbdt_obj type,
			   uint32_t id, char *buf, size_t len)
{
	const struct status_host *h;
	const struct status_backend *b;
	const struct status_blkdev *d;
	const struct status_segment *g;
	int n = snprintf(buf, len, "%s %" PRIu32, cbdt_obj_name(type), id);

	if (n < 0 || (size_t)n >= len)
		return buf;
	switch (type) {
	case CBDT_OBJ_HOST:
		h = &s->hosts[id];
		if (h->s.rec == STATUS_REC_VALID)
			snprintf(buf + n, len - n, " (%s, %s, pid %" PRIu32 ")",
				 h->r.hostname, status_role_name(h->r.role),
				 h->r.pid);
		break;
	case CBDT_OBJ_BACKEND:
		b = &s->backends[id];
		if (b->s.rec == STATUS_REC_VALID)
			snprintf(buf + n, len - n, " (%s, %s)", b->r.name,
				 b->r.path);
		break;
	case CBDT_OBJ_BLKDEV:
		d = &s->blkdevs[id];
		if (d->s.rec == STATUS_REC_VALID)
			snprintf(buf + n, len - n,
				 " (backend %u, host %u)", d->r.backend_id,
				 d->r.host_id);
		break;
	case CBDT_OBJ_SEGMENT:
		g = &s->segments[id];
		if (g->s.rec == STATUS_REC_VALID &&
		    g->r.type == CBDT_SEG_CHANNEL)
			snprintf(buf + n, len - n,
				 " (channel %u of blkdev %u)", g->r.queue,
				 g->r.blkdev_id);
		break;
	default:
		break;
	}
	return buf;
}

const struct status_slot *admin_slot(const struct status_snap *s,
				     enum cbdt_obj type, uint32_t id)
{
	switch (type) {
	case CBDT_OBJ_HOST:
		return &s->hosts[id].s;
	case CBDT_OBJ_BACKEND:
		return &s->backends[id].s;
	case CBDT_OBJ_BLKDEV:
		return &s->blkdevs[id].s;
	default:
		return &s->segments[id].s;
	}
}

/* A live blkdev mapping backend @be (the instance recorded now), or -1. */
static int live_mapper(const struct status_snap *s, uint32_t be)
{
	const struct status_backend *b = &s->backends[be];

	for (uint32_t i = 0; i < s->nr_blkdevs; i++) {
		const struct status_blkdev *d = &s->blkdevs[i];

		if (!d->s.alive || d->s.rec != STATUS_REC_VALID ||
		    d->r.backend_id != be)
			continue;
		/* a mapping of an earlier backend in this slot does not count,
		 * as in cbdt_backend_clear() */
		if (b->s.rec == STATUS_REC_VALID && b->r.ident &&
		    d->r.backend_ident && d->r.backend_ident != b->r.ident)
			continue;
		return (int)i;
	}
	return -1;
}

/* "blkdev 2 (backend 0, host 1)" of @s, in @buf. */
static const char *blkdev_str(const struct status_snap *s, uint32_t id,
			      char *buf, size_t len)
{
	return admin_describe(s, CBDT_OBJ_BLKDEV, id, buf, len);
}

/* Why host @id must stay: a backend or blkdev of it is alive or used. */
static bool host_blocker(const struct status_snap *s, uint32_t id,
			 const char *what, char *buf, size_t len)
{
	char user[256], dep[256];
	int m;

	for (uint32_t i = 0; i < s->nr_backends; i++) {
		const struct status_slot *sl = &s->backends[i].s;

		if (!sl->active || sl->owner_host != id)
			continue;
		admin_describe(s, CBDT_OBJ_BACKEND, i, dep, sizeof(dep));
		if (sl->alive) {
			snprintf(buf, len, "%s owns live %s", what, dep);
			return true;
		}
		m = live_mapper(s, i);
		if (m >= 0) {
			blkdev_str(s, (uint32_t)m, user, sizeof(user));
			snprintf(buf, len, "%s serves %s, mapped by live %s",
				 what, dep, user);
			return true;
		}
	}
	for (uint32_t i = 0; i < s->nr_blkdevs; i++)
		if (s->blkdevs[i].s.alive && s->blkdevs[i].s.owner_host == id) {
			snprintf(buf, len, "%s owns live %s", what,
				 blkdev_str(s, i, user, sizeof(user)));
			return true;
		}
	return false;
}

/*
 * Why @id of @type must not be cleared although it is dead: something
 * alive still uses it.  False if nothing does.
 */
static bool clear_blocker(const struct status_snap *s, enum cbdt_obj type,
			  uint32_t id, char *buf, size_t len)
{
	const struct status_segment *g;
	char what[256], user[256];
	int m;

	admin_describe(s, type, id, what, sizeof(what));
	switch (type) {
	case CBDT_OBJ_HOST:
		return host_blocker(s, id, what, buf, len);
	case CBDT_OBJ_BACKEND:
		m = live_mapper(s, id);
		if (m < 0)
			return false;
		snprintf(buf, len, "%s is mapped by live %s", what,
			 blkdev_str(s, (uint32_t)m, user, sizeof(user)));
		return true;
	case CBDT_OBJ_SEGMENT:
		g = &s->segments[id];
		if (g->s.rec != STATUS_REC_VALID ||
		    g->r.type != CBDT_SEG_CHANNEL || g->orphaned ||
		    g->r.blkdev_id >= s->nr_blkdevs ||
		    !s->blkdevs[g->r.blkdev_id].s.alive)
			return false;
		snprintf(buf, len, "%s belongs to live %s", what,
			 blkdev_str(s, g->r.blkdev_id, user, sizeof(user)));
		return true;
	default:
		return false;
	}
}

static int clear_call(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		      struct cbdt_observer *obs)
{
	switch (type) {
	case CBDT_OBJ_HOST:
		return cbdt_host_clear(t, id, obs);
	case CBDT_OBJ_BACKEND:
		return cbdt_backend_clear(t, id, obs);
	case CBDT_OBJ_BLKDEV:
		return cbdt_blkdev_clear(t, id, obs);
	default:
		return cbdt_segment_clear(t, id, obs);
	}
}

/* Print what went from ACTIVE in @before to FREE in @after. */
static void clear_report(const struct status_snap *before,
			 const struct status_snap *after, bool done)
{
	static const enum cbdt_obj types[] = { CBDT_OBJ_HOST, CBDT_OBJ_BACKEND,
					       CBDT_OBJ_BLKDEV,
					       CBDT_OBJ_SEGMENT };
	const uint32_t nr[] = { before->nr_hosts, before->nr_backends,
				before->nr_blkdevs, before->nr_segments };
	char what[512];
	unsigned n = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(types); i++) {
		for (uint32_t id = 0; id < nr[i]; id++) {
			if (!admin_slot(before, types[i], id)->active ||
			    admin_slot(after, types[i], id)->active)
				continue;
			admin_describe(before, types[i], id, what,
				       sizeof(what));
			printf("cleared %s\n", what);
			n++;
		}
	}
	if (!n && done)
		printf("nothing was cleared\n");
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

int admin_clear(const char *path, enum cbdt_obj type, const char *cmd,
		const char *arg, uint32_t window_ms)
{
	struct status_opts so = { .window_ms = window_ms };
	struct status_opts quick = { .no_liveness = true };
	struct status_snap *before = NULL, *after = NULL;
	struct cbdt_observer *obs = NULL;
	struct cbdt *t;
	const struct status_slot *sl;
	char why[1024], what[512];
	uint64_t id, deadline;
	bool waited = false;
	int ret, rc = 1;

	ret = cbdt_open(path, 0, &t);
	if (ret) {
		err("%s: %s", path, cbdt_strerror(ret));
		return 1;
	}
	if (cbdt_slot_count(t, type) == 0 ||
	    parse_uint(arg, 0, cbdt_slot_count(t, type) - 1, &id)) {
		err("%s: %s: no %s %s in this transport (ids 0..%u)", path,
		    cmd, cbdt_obj_name(type), arg,
		    cbdt_slot_count(t, type) - 1);
		goto out_close;
	}
	if (!so.window_ms)
		so.window_ms = status_default_window(t);
	/*
	 * The observer handed to the library watches over the same window as
	 * our snapshot: sampled before and after it, so a counter that did
	 * not move for the whole window is dead to both.
	 */
	ret = cbdt_observer_new(t, so.window_ms, &obs);
	if (ret) {
		err("%s: %s", path, strerror(-ret));
		goto out_close;
	}
	cbdt_observer_sample(obs);
	ret = status_collect(t, &so, &before);
	if (ret) {
		err("%s: %s", path, strerror(-ret));
		goto out_free_obs;
	}
	cbdt_observer_sample(obs);

	sl = admin_slot(before, type, (uint32_t)id);
	admin_describe(before, type, (uint32_t)id, what, sizeof(what));
	if (!sl->active) {
		printf("%s is free: nothing to clear\n", what);
		rc = 0;
		goto out_free_snap;
	}
	if (sl->alive) {
		err("%s: %s: %s is alive (its heartbeat moved within %u ms)",
		    path, cmd, what, before->window_ms);
		goto out_free_snap;
	}
	if (clear_blocker(before, type, (uint32_t)id, why, sizeof(why))) {
		err("%s: %s: %s", path, cmd, why);
		goto out_free_snap;
	}

	deadline = cbdt_now_ms() + CLEAR_RETRY_MS;
	while ((ret = clear_call(t, type, (uint32_t)id, obs)) == -EAGAIN &&
	       cbdt_now_ms() < deadline) {
		if (!waited)
			info("%s: waiting for live handlers to detach", what);
		waited = true;
		sleep_ms(CLEAR_RETRY_STEP_MS);
	}
	/* Report what went, also when only part of it could. */
	if (status_collect(t, &quick, &after) == 0) {
		clear_report(before, after, ret == 0);
		status_snap_free(after);
	}
	if (ret == -EBUSY)
		err("%s: %s: %s or something it depends on is alive or in use",
		    path, cmd, what);
	else if (ret == -EAGAIN)
		err("%s: %s: %s: live handlers did not detach within %u s",
		    path, cmd, what, CLEAR_RETRY_MS / 1000);
	else if (ret == -EOPNOTSUPP)
		err("%s: %s: %s: a segment type this version does not know",
		    path, cmd, what);
	else if (ret)
		err("%s: %s: %s: %s", path, cmd, what, strerror(-ret));
	else
		rc = 0;
out_free_snap:
	status_snap_free(before);
out_free_obs:
	cbdt_observer_free(obs);
out_close:
	cbdt_close(t);
	return rc;
}

