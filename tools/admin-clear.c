/* SPDX-License-Identifier: MIT */
/*
 * cbd-admin clear-*: watch the heartbeats for a window, then let libcbdt's
 * cbdt_*_clear (the janitor's code, judging with the same observer) clear
 * what is dead and unused, and report what was freed or which live object
 * kept it.  Single-threaded.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "cbdt.h"
#include "log.h"
#include "util.h"

/* How long a clear waits for live handlers to detach from channels. */
#define CLEAR_RETRY_MS	    10000U
#define CLEAR_RETRY_STEP_MS 100U

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

/* Why the library refused: one line naming the live object. */
static void blocker_say(const struct cbdt *t, const char *path, const char *cmd,
			const char *what, const struct cbdt_blocker *by,
			uint32_t window_ms)
{
	char live[512], via[512];

	cbdt_obj_describe(t, by->type, by->id, live, sizeof(live));
	if (by->via_type != CBDT_OBJ_NR)
		cbdt_obj_describe(t, by->via_type, by->via_id, via,
				  sizeof(via));
	switch (by->why) {
	case CBDT_BLOCK_ALIVE:
		if (by->via_type == CBDT_OBJ_NR && !strcmp(live, what))
			log_err("%s: %s: %s is alive (its heartbeat moved within %u ms)",
				path, cmd, what, window_ms);
		else
			log_err("%s: %s: %s owns live %s", path, cmd, what,
				live);
		break;
	case CBDT_BLOCK_MAPPED:
		if (by->via_type != CBDT_OBJ_NR)
			log_err("%s: %s: %s serves %s, mapped by live %s", path,
				cmd, what, via, live);
		else
			log_err("%s: %s: %s is mapped by live %s", path, cmd,
				what, live);
		break;
	case CBDT_BLOCK_BELONGS:
		log_err("%s: %s: %s belongs to live %s", path, cmd, what, live);
		break;
	case CBDT_BLOCK_DIRTY:
		log_err("%s: %s: %s holds data of the cache of %s not yet written back to its disk: start that backend again, and it writes it back",
			path, cmd, what, live);
		break;
	case CBDT_BLOCK_DETACHING:
		log_err("%s: %s: %s: live handlers of %s did not detach within %u s",
			path, cmd, what, live, CLEAR_RETRY_MS / 1000);
		break;
	}
}

static int clear_call(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		      struct cbdt_observer *obs, struct cbdt_blocker *by)
{
	switch (type) {
	case CBDT_OBJ_HOST:
		return cbdt_host_clear(t, id, obs, by);
	case CBDT_OBJ_BACKEND:
		return cbdt_backend_clear(t, id, obs, by);
	case CBDT_OBJ_BLKDEV:
		return cbdt_blkdev_clear(t, id, obs, by);
	default:
		return cbdt_segment_clear(t, id, obs, by);
	}
}

/* Print what went from ACTIVE in @before to FREE in @after. */
static void clear_report(const struct cbdt *t, const struct status_snap *before,
			 const struct status_snap *after, bool done)
{
	static const enum cbdt_obj types[] = {CBDT_OBJ_HOST, CBDT_OBJ_BACKEND,
					      CBDT_OBJ_BLKDEV,
					      CBDT_OBJ_SEGMENT};
	const uint32_t nr[] = {before->nr_hosts, before->nr_backends,
			       before->nr_blkdevs, before->nr_segments};
	char what[512];
	unsigned n = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(types); i++) {
		for (uint32_t id = 0; id < nr[i]; id++) {
			if (!admin_slot(before, types[i], id)->active ||
			    admin_slot(after, types[i], id)->active)
				continue;
			cbdt_obj_describe(t, types[i], id, what, sizeof(what));
			printf("cleared %s\n", what);
			n++;
		}
	}
	if (!n && done)
		printf("nothing was cleared\n");
}

int admin_clear(const char *path, enum cbdt_obj type, const char *cmd,
		const char *arg, uint32_t window_ms)
{
	struct status_opts so = {.window_ms = window_ms};
	struct status_opts quick = {.no_liveness = true};
	struct status_snap *before = NULL, *after = NULL;
	struct cbdt_observer *obs = NULL;
	struct cbdt_blocker by;
	struct cbdt *t;
	char what[512];
	uint64_t id, deadline;
	bool waited = false;
	int ret, rc = 1;

	ret = cbdt_open(path, 0, &t);
	if (ret) {
		log_err("%s: %s", path, cbdt_strerror(ret));
		return 1;
	}
	if (cbdt_slot_count(t, type) == 0 ||
	    parse_uint(arg, 0, cbdt_slot_count(t, type) - 1, &id)) {
		log_err("%s: %s: no %s %s in this transport (ids 0..%u)", path,
			cmd, cbdt_obj_name(type), arg,
			cbdt_slot_count(t, type) - 1);
		goto out_close;
	}
	if (!so.window_ms)
		so.window_ms = status_default_window(t);
	/* One observer decides and clears: the library judges with what
	 * the snapshot saw over the window. */
	ret = cbdt_observer_new(t, so.window_ms, &obs);
	if (ret) {
		log_err("%s: %s", path, strerror(-ret));
		goto out_close;
	}
	ret = status_collect(t, &so, obs, &before);
	if (ret) {
		log_err("%s: %s", path, strerror(-ret));
		goto out_free_obs;
	}

	cbdt_obj_describe(t, type, (uint32_t)id, what, sizeof(what));
	if (!admin_slot(before, type, (uint32_t)id)->active) {
		printf("%s is free: nothing to clear\n", what);
		rc = 0;
		goto out_free_snap;
	}
	deadline = cbdt_now_ms() + CLEAR_RETRY_MS;
	while ((ret = clear_call(t, type, (uint32_t)id, obs, &by)) == -EAGAIN &&
	       cbdt_now_ms() < deadline) {
		if (!waited)
			log_info("%s: waiting for live handlers to detach",
				 what);
		waited = true;
		cbdt_sleep_ms(CLEAR_RETRY_STEP_MS);
	}
	/* Report what went, also when only part of it could. */
	if (status_collect(t, &quick, NULL, &after) == 0) {
		clear_report(t, before, after, ret == 0);
		status_snap_free(after);
	}
	if (ret == -EBUSY || ret == -EAGAIN)
		blocker_say(t, path, cmd, what, &by, before->window_ms);
	else if (ret == -EOPNOTSUPP)
		log_err("%s: %s: %s: a segment type this version does not know",
			path, cmd, what);
	else if (ret)
		log_err("%s: %s: %s: %s", path, cmd, what, strerror(-ret));
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

/* Clear @id of @type, waiting a while for live handlers to detach. */
static int clear_waiting(struct cbdt *t, enum cbdt_obj type, uint32_t id,
			 struct cbdt_observer *obs, struct cbdt_blocker *by)
{
	uint64_t deadline = cbdt_now_ms() + CLEAR_RETRY_MS;
	int ret;

	while ((ret = clear_call(t, type, id, obs, by)) == -EAGAIN &&
	       cbdt_now_ms() < deadline)
		cbdt_sleep_ms(CLEAR_RETRY_STEP_MS);
	return ret;
}

int admin_clear_dead(const char *path, uint32_t window_ms)
{
	/* Dependents first, as the janitor goes: a host last. */
	static const enum cbdt_obj order[] = {CBDT_OBJ_BLKDEV, CBDT_OBJ_SEGMENT,
					      CBDT_OBJ_BACKEND, CBDT_OBJ_HOST};
	struct status_opts so = {.window_ms = window_ms};
	struct status_opts quick = {.no_liveness = true};
	struct status_snap *before = NULL, *after = NULL;
	struct cbdt_observer *obs = NULL;
	struct cbdt_blocker by;
	char what[512];
	struct cbdt *t;
	int ret, rc = 1;

	ret = cbdt_open(path, 0, &t);
	if (ret) {
		log_err("%s: %s", path, cbdt_strerror(ret));
		return 1;
	}
	if (!so.window_ms)
		so.window_ms = status_default_window(t);
	ret = cbdt_observer_new(t, so.window_ms, &obs);
	if (!ret)
		ret = status_collect(t, &so, obs, &before);
	if (ret) {
		log_err("%s: %s", path, strerror(-ret));
		goto out;
	}
	rc = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(order); i++) {
		uint32_t n = cbdt_slot_count(t, order[i]);

		for (uint32_t id = 0; id < n; id++) {
			const struct status_slot *sl =
				admin_slot(before, order[i], id);

			if (!sl->active || sl->alive)
				continue;
			if (order[i] == CBDT_OBJ_SEGMENT &&
			    !before->segments[id].orphaned)
				continue; /* its blkdev decides */
			ret = clear_waiting(t, order[i], id, obs, &by);
			if (ret == 0 || ret == -ESTALE)
				continue;
			cbdt_obj_describe(t, order[i], id, what, sizeof(what));
			if (ret == -EBUSY || ret == -EAGAIN) {
				/* dead but still needed: kept, as the
				 * janitor would keep it */
				blocker_say(t, path, "clear-dead", what, &by,
					    before->window_ms);
			} else {
				log_err("%s: clear-dead: %s: %s", path, what,
					strerror(-ret));
				rc = 1;
			}
		}
	}
	if (status_collect(t, &quick, NULL, &after) == 0) {
		clear_report(t, before, after, true);
		status_snap_free(after);
	}
out:
	status_snap_free(before);
	cbdt_observer_free(obs);
	cbdt_close(t);
	return rc;
}
