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
	case CBDT_SEG_CACHE:
		return "cache";
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
	return (uint32_t)MIN(MAX(w, STATUS_WINDOW_MIN_MS),
			     STATUS_WINDOW_MAX_MS);
}

/*
 * Watch the heartbeat counters for @window_ms through @obs (whose timeout
 * is the window): the janitor's rule, seen over one window.  Returns 0 or
 * -EINTR if *o->stop got set.
 */
static int sample_window(struct cbdt_observer *obs, const struct status_opts *o,
			 uint32_t window_ms)
{
	uint32_t poll_ms = o->poll_ms ? o->poll_ms : 10;
	uint64_t start = cbdt_now_ns();

	for (;;) {
		cbdt_observer_sample(obs);
		if (cbdt_now_ns() - start >= (uint64_t)window_ms * 1000000)
			return 0;
		if (o->stop && *o->stop)
			return -EINTR;
		cbdt_sleep_ms(MIN(poll_ms, window_ms));
	}
}

/* Liveness of a host, backend or blkdev as @obs saw it. */
static void slot_liveness(struct cbdt_observer *obs, enum cbdt_obj type,
			  struct status_slot *sl)
{
	sl->heartbeat = cbdt_slot_heartbeat_read(cbdt_observer_transport(obs),
						 type, sl->id);
	sl->hb_age_ms = cbdt_observer_age_ms(obs, type, sl->id);
	sl->alive = sl->active && cbdt_observer_alive(obs, type, sl->id);
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

	if (g->s.rec != STATUS_REC_VALID || g->r.type != CBDT_SEG_CHANNEL)
		return;
	ctrl = cbdt_segment_ctrl(t, g->s.id);
	if (!ctrl)
		return;
	/* pairs with the store-release of magic in cbdt_channel_init() */
	g->ctrl_valid = smp_load_acquire(&ctrl->magic) == CBDT_CHANNEL_MAGIC;
	if (g->ctrl_valid) {
		/* pairs with the handler's store-release of handler_state */
		g->handler_state = smp_load_acquire(&ctrl->handler_state);
		/* pairs with the client's store-release of client_state */
		g->client_state = smp_load_acquire(&ctrl->client_state);
	}
	if (g->r.blkdev_id < s->nr_blkdevs)
		g->orphaned =
			cbdt_slot_owner(t, CBDT_OBJ_BLKDEV, g->r.blkdev_id) !=
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
	free(s->caches);
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
		   struct cbdt_observer *obs, struct status_snap **out)
{
	static const struct status_opts defaults;
	struct cbdt_observer *own = NULL;
	struct status_snap *s;
	uint64_t t0;
	int ret;

	if (!o)
		o = &defaults;
	s = snap_alloc(t);
	if (!s)
		return -ENOMEM;
	/* Without liveness: one look, so nothing can be seen moving. */
	if (!o->no_liveness)
		s->window_ms = o->window_ms ? o->window_ms :
					      status_default_window(t);
	if (!obs) {
		ret = cbdt_observer_new(t, s->window_ms ? s->window_ms : 1,
					&own);
		if (ret)
			goto err_free;
		obs = own;
	}
	status_io_sample(t, s, true);
	ret = status_cache_sample(t, s, true);
	if (ret)
		goto err_free;
	t0 = cbdt_now_ns();
	ret = sample_window(obs, o, s->window_ms);
	if (ret)
		goto err_free;

	/* Records after the window: they are the freshest we can show. */
	snap_fill(t, s);
	status_io_sample(t, s, false);
	if (s->window_ms)
		s->io_ns = cbdt_now_ns() - t0;
	ret = status_cache_sample(t, s, false);
	if (ret)
		goto err_free;
	if (o->no_liveness)
		goto out; /* nothing was watched: nothing reads as alive */
	for (uint32_t id = 0; id < s->nr_hosts; id++)
		slot_liveness(obs, CBDT_OBJ_HOST, &s->hosts[id].s);
	for (uint32_t id = 0; id < s->nr_backends; id++)
		slot_liveness(obs, CBDT_OBJ_BACKEND, &s->backends[id].s);
	for (uint32_t id = 0; id < s->nr_blkdevs; id++)
		slot_liveness(obs, CBDT_OBJ_BLKDEV, &s->blkdevs[id].s);
out:
	status_cache_liveness(s);
	cbdt_observer_free(own);
	*out = s;
	return 0;

err_free:
	cbdt_observer_free(own);
	status_snap_free(s);
	return ret;
}
