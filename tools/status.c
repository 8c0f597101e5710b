/* SPDX-License-Identifier: MIT */
/*
 * Snapshot of a transport: owner words, records and liveness as observed
 * here, over a sampling window of our own monotonic clock.  Only reads the
 * transport (works on a read-only mapping); single-threaded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "cbdt.h"
#include "status.h"
#include "util.h"

/* Per-slot sampling state of the liveness window. */
struct hb_track {
	uint64_t owner;		/* owner word the window is about */
	uint64_t hb;		/* last counter value read */
	uint64_t since_ns;	/* start of watching this owner word */
	uint64_t moved_ns;	/* last time the counter was seen moving */
	bool moved;
};

const char *status_role_name(uint16_t role)
{
	switch (role) {
	case CBDT_ROLE_BACKEND:
		return "backend";
	case CBDT_ROLE_CLIENT:
		return "client";
	default:
		return "unknown";
	}
}

const char *status_seg_type_name(uint16_t type)
{
	switch (type) {
	case CBDT_SEG_NONE:
		return "none";
	case CBDT_SEG_CHANNEL:
		return "channel";
	default:
		return "unknown";
	}
}

const char *status_handler_name(const struct status_segment *g)
{
	if (!g->ctrl_valid)
		return "none";
	switch (g->handler_state) {
	case CBDT_HANDLER_ATTACHED:
		return "attached";
	case CBDT_HANDLER_DETACHED:
		return "detached";
	default:
		return "none";
	}
}

const char *status_client_name(const struct status_segment *g)
{
	if (!g->ctrl_valid)
		return "none";
	switch (g->client_state) {
	case CBDT_CLIENT_OPEN:
		return "open";
	case CBDT_CLIENT_CLOSING:
		return "closing";
	default:
		return "none";
	}
}

const char *status_rec_name(enum status_rec rec)
{
	switch (rec) {
	case STATUS_REC_VALID:
		return "valid";
	case STATUS_REC_UNWRITTEN:
		return "unwritten";
	default:
		return "corrupt";
	}
}

void status_uuid_format(const uint8_t u[16], char buf[37])
{
	char *p = buf;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", u[i]);
	}
	*p = '\0';
}

const char *status_hostname(const struct status_snap *s, uint32_t id)
{
	if (id >= s->nr_hosts || s->hosts[id].s.rec != STATUS_REC_VALID)
		return NULL;
	return s->hosts[id].r.hostname;
}

static enum status_rec rec_state(int ret)
{
	if (ret == 0)
		return STATUS_REC_VALID;
	return ret == -ENODATA ? STATUS_REC_UNWRITTEN : STATUS_REC_CORRUPT;
}

uint32_t status_default_window(const struct cbdt *t)
{
	uint32_t n = cbdt_slot_count(t, CBDT_OBJ_HOST), max_iv = 0;
	struct cbdt_host_rec r;
	uint64_t w;

	for (uint32_t id = 0; id < n; id++) {
		uint64_t owner = cbdt_slot_owner(t, CBDT_OBJ_HOST, id);

		if (CBDT_OWNER_STATE(owner) != CBDT_SLOT_ACTIVE)
			continue;
		if (cbdt_host_read(t, id, &r) == 0 && r.hb_interval_ms > max_iv)
			max_iv = r.hb_interval_ms;
	}
	if (!max_iv)
		return STATUS_WINDOW_DEFAULT_MS;
	w = (uint64_t)max_iv * 3 / 2;
	return (uint32_t)MIN(MAX(w, STATUS_WINDOW_MIN_MS), STATUS_WINDOW_MAX_MS);
}

static void track_read(const struct cbdt *t, enum cbdt_obj type, uint32_t id,
		       struct hb_track *k, uint64_t now, bool first)
{
	uint64_t owner = cbdt_slot_owner(t, type, id);
	uint64_t hb = cbdt_slot_heartbeat_read(t, type, id);

	/* A new owner word is a new object: its window starts now. */
	if (first || owner != k->owner) {
		k->owner = owner;
		k->hb = hb;
		k->since_ns = now;
		k->moved = false;
		return;
	}
	if (hb != k->hb) {
		k->hb = hb;
		k->moved_ns = now;
		k->moved = true;
	}
}

static void track_finish(const struct hb_track *k, struct status_slot *sl,
			 uint64_t now)
{
	uint64_t from = k->moved ? k->moved_ns : k->since_ns;

	sl->heartbeat = k->hb;
	sl->hb_age_ms = (now - from) / 1000000;
	sl->alive = sl->active && k->moved &&
		    CBDT_OWNER_STATE(k->owner) == CBDT_SLOT_ACTIVE;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/*
 * Watch the heartbeat counters of hosts, backends and blkdevs for
 * @window_ms.  Returns 0 or -EINTR if *o->stop got set.
 */
static int sample_window(const struct cbdt *t, const struct status_opts *o,
			 uint32_t window_ms, struct hb_track *trk[3],
			 const uint32_t nr[3], uint64_t *end_ns)
{
	uint32_t poll_ms = o->poll_ms ? o->poll_ms : 10;
	uint64_t start = cbdt_now_ns(), now = start;
	bool first = true;

	for (;;) {
		for (int ty = 0; ty < 3; ty++)
			for (uint32_t id = 0; id < nr[ty]; id++)
				track_read(t, (enum cbdt_obj)ty, id,
					   &trk[ty][id], now, first);
		first = false;
		if (now - start >= (uint64_t)window_ms * 1000000)
			break;
		if (o->stop && *o->stop)
			return -EINTR;
		sleep_ms(MIN(poll_ms, window_ms));
		now = cbdt_now_ns();
	}
	*end_ns = now;
	return 0;
}

static void slot_fill(const struct cbdt *t, enum cbdt_obj type, uint32_t id,
		      struct status_slot *sl)
{
	uint64_t owner = cbdt_slot_owner(t, type, id);

	sl->id = id;
	sl->active = CBDT_OWNER_STATE(owner) == CBDT_SLOT_ACTIVE;
	sl->owner_host = CBDT_OWNER_HOST(owner);
	sl->generation = CBDT_OWNER_GEN(owner);
}

static void segment_fill(const struct cbdt *t, const struct status_snap *s,
			 struct status_segment *g)
{
	const struct cbdt_channel_ctrl *ctrl;
	uint64_t off;

	if (g->s.rec != STATUS_REC_VALID || g->r.type != CBDT_SEG_CHANNEL)
		return;
	off = s->info.seg_data_off + (uint64_t)g->s.id * s->info.seg_size;
	if (off + sizeof(*ctrl) > s->map_size)
		return;
	ctrl = (const void *)((const char *)cbdt_base(t) + off);
	/* pairs with the store-release of magic in cbdt_channel_init() */
	g->ctrl_valid = smp_load_acquire(&ctrl->magic) == CBDT_CHANNEL_MAGIC;
	if (g->ctrl_valid) {
		/* pairs with the handler's store-release of handler_state */
		g->handler_state = smp_load_acquire(&ctrl->handler_state);
		/* pairs with the client's store-release of client_state */
		g->client_state = smp_load_acquire(&ctrl->client_state);
	}
	if (g->r.blkdev_id < s->nr_blkdevs)
		g->orphaned = cbdt_slot_owner(t, CBDT_OBJ_BLKDEV,
					      g->r.blkdev_id) !=
			      g->r.blkdev_owner;
	else
		g->orphaned = true;
}

static void snap_fill(const struct cbdt *t, struct status_snap *s)
{
	const struct cbdt_global *gl;
	uint64_t lease;

	for (uint32_t id = 0; id < s->nr_hosts; id++) {
		struct status_host *h = &s->hosts[id];

		slot_fill(t, CBDT_OBJ_HOST, id, &h->s);
		h->s.rec = rec_state(cbdt_host_read(t, id, &h->r));
		h->r.hostname[CBDT_HOSTNAME_LEN - 1] = '\0';
		s->hosts_used += h->s.active;
	}
	for (uint32_t id = 0; id < s->nr_backends; id++) {
		struct status_backend *b = &s->backends[id];
		const struct cbdt_slot *slot;

		slot_fill(t, CBDT_OBJ_BACKEND, id, &b->s);
		b->s.rec = rec_state(cbdt_backend_read(t, id, &b->r));
		b->r.name[CBDT_NAME_LEN - 1] = '\0';
		b->r.path[CBDT_PATH_LEN - 1] = '\0';
		slot = cbdt_slot_get(t, CBDT_OBJ_BACKEND, id);
		/* pairs with the CAS of cbdt_backend_lock/unlock */
		lease = slot ? smp_load_acquire(&slot->hdr.lock) : 0;
		b->locked = lease != 0;
		b->lock_blkdev = lease ? cbdt_lease_id(lease) : 0;
		s->backends_used += b->s.active;
	}
	for (uint32_t id = 0; id < s->nr_blkdevs; id++) {
		struct status_blkdev *d = &s->blkdevs[id];

		slot_fill(t, CBDT_OBJ_BLKDEV, id, &d->s);
		d->s.rec = rec_state(cbdt_blkdev_read(t, id, &d->r));
		if (d->r.queues > CBDT_QUEUES_MAX)
			d->r.queues = CBDT_QUEUES_MAX;
		s->blkdevs_used += d->s.active;
	}
	for (uint32_t id = 0; id < s->nr_segments; id++) {
		struct status_segment *g = &s->segments[id];

		slot_fill(t, CBDT_OBJ_SEGMENT, id, &g->s);
		g->s.rec = rec_state(cbdt_segment_read(t, id, &g->r));
		if (g->s.active)
			segment_fill(t, s, g);
		s->segments_used += g->s.active;
	}

	gl = (const void *)((const char *)cbdt_base(t) + CBDT_GLOBAL_OFF);
	/* pairs with the CAS of cbdt_janitor_lease_acquire/release */
	lease = smp_load_acquire(&gl->janitor_lease);
	s->janitor_held = lease != 0;
	s->janitor_host = lease ? cbdt_lease_id(lease) : 0;
}

void status_snap_free(struct status_snap *s)
{
	if (!s)
		return;
	free(s->path);
	free(s->hosts);
	free(s->backends);
	free(s->blkdevs);
	free(s->segments);
	free(s);
}

static struct status_snap *snap_alloc(const struct cbdt *t)
{
	struct status_snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->path = strdup(cbdt_path(t));
	s->map_size = cbdt_map_size(t);
	s->info = *cbdt_get_info(t);
	s->nr_hosts = cbdt_slot_count(t, CBDT_OBJ_HOST);
	s->nr_backends = cbdt_slot_count(t, CBDT_OBJ_BACKEND);
	s->nr_blkdevs = cbdt_slot_count(t, CBDT_OBJ_BLKDEV);
	s->nr_segments = cbdt_slot_count(t, CBDT_OBJ_SEGMENT);
	/* +1: calloc(0) may return NULL */
	s->hosts = calloc(s->nr_hosts + 1, sizeof(*s->hosts));
	s->backends = calloc(s->nr_backends + 1, sizeof(*s->backends));
	s->blkdevs = calloc(s->nr_blkdevs + 1, sizeof(*s->blkdevs));
	s->segments = calloc(s->nr_segments + 1, sizeof(*s->segments));
	if (!s->path || !s->hosts || !s->backends || !s->blkdevs ||
	    !s->segments) {
		status_snap_free(s);
		return NULL;
	}
	return s;
}

int status_collect(struct cbdt *t, const struct status_opts *o,
		   struct status_snap **out)
{
	static const struct status_opts defaults;
	struct hb_track *trk[3] = { NULL, NULL, NULL };
	struct status_slot *sl;
	struct status_snap *s;
	uint32_t nr[3];
	uint64_t end_ns;
	int ret = -ENOMEM;

	if (!o)
		o = &defaults;
	s = snap_alloc(t);
	if (!s)
		return -ENOMEM;
	nr[CBDT_OBJ_HOST] = s->nr_hosts;
	nr[CBDT_OBJ_BACKEND] = s->nr_backends;
	nr[CBDT_OBJ_BLKDEV] = s->nr_blkdevs;
	for (int ty = 0; ty < 3; ty++) {
		trk[ty] = calloc(nr[ty] + 1, sizeof(*trk[ty]));
		if (!trk[ty])
			goto err_free_track;
	}
	/* Without liveness: one read, so nothing can be seen moving. */
	if (!o->no_liveness)
		s->window_ms = o->window_ms ? o->window_ms
					    : status_default_window(t);
	ret = sample_window(t, o, s->window_ms, trk, nr, &end_ns);
	if (ret)
		goto err_free_track;

	/* Records after the window: they are the freshest we can show. */
	snap_fill(t, s);

	for (int ty = 0; ty < 3; ty++) {
		for (uint32_t id = 0; id < nr[ty]; id++) {
			if (ty == CBDT_OBJ_HOST)
				sl = &s->hosts[id].s;
			else if (ty == CBDT_OBJ_BACKEND)
				sl = &s->backends[id].s;
			else
				sl = &s->blkdevs[id].s;
			track_finish(&trk[ty][id], sl, end_ns);
		}
		free(trk[ty]);
	}
	*out = s;
	return 0;

err_free_track:
	for (int ty = 0; ty < 3; ty++)
		free(trk[ty]);
	status_snap_free(s);
	return ret;
}
