/* SPDX-License-Identifier: MIT */
/*
 * Fixture shared by test-janitor and test-blkdev: a formatted transport on
 * /dev/shm, helpers that register hosts and backends, a stand-in for the
 * backend's handler threads (attaches to the channels a map opens), and a
 * heartbeat "pump" that keeps chosen objects alive while the test waits.
 * Setup, teardown and the pump run in the test's thread; the stand-in
 * handler runs in its own thread only during a map.
 */
#ifndef CBD_TESTS_JANITOR_FIXTURE_H
#define CBD_TESTS_JANITOR_FIXTURE_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "cbdt.h"
#include "fixture.h"

#define JF_SEGMENTS	6U
#define JF_TIMEOUT_MS	400U /* observer timeout of the tests */
#define JF_TICK_MS	20U
#define JF_ALIVE_MAX	32
#define JF_HANDLERS_MAX 32

struct jf_alive {
	enum cbdt_obj type;
	uint32_t id;
	bool on;
};

struct jf {
	char path[64];
	struct cbdt *t;
	struct jf_alive alive[JF_ALIVE_MAX]; /* objects the pump beats */
	unsigned nalive;
};

/* Stand-in handler threads of one backend. */
struct jf_handlers {
	struct cbdt *t;
	uint32_t backend_id;
	uint64_t backend_owner;
	pthread_t thr;
	pthread_mutex_t lock;
	bool stop;
	unsigned n;
	uint32_t seg[JF_HANDLERS_MAX];
	struct cbdt_channel *ch[JF_HANDLERS_MAX];
};

static inline struct jf *jf_new(void)
{
	struct cbdt_info in;
	struct jf *f = calloc(1, sizeof(*f));

	if (!f || cbdt_layout_compute(1ULL << 30, 0, &in))
		goto err_free;
	/* Metadata, then exactly JF_SEGMENTS segments. */
	if (tfx_transport_new(
		    f->path, &f->t,
		    in.seg_data_off + (uint64_t)JF_SEGMENTS * CBDT_SEG_SIZE, 0))
		goto err_free;
	return f;
err_free:
	free(f);
	return NULL;
}

static inline void jf_free(struct jf *f)
{
	if (!f)
		return;
	tfx_transport_free(f->path, &f->t);
	free(f);
}

/* The pump beats @type/@id from now on (until jf_kill). */
static inline void jf_keep(struct jf *f, enum cbdt_obj type, uint32_t id)
{
	if (f->nalive < JF_ALIVE_MAX)
		f->alive[f->nalive++] = (struct jf_alive){type, id, true};
}

static inline void jf_kill(struct jf *f, enum cbdt_obj type, uint32_t id)
{
	for (unsigned i = 0; i < f->nalive; i++)
		if (f->alive[i].type == type && f->alive[i].id == id)
			f->alive[i].on = false;
}

/*
 * "Not cleared yet" can only be judged while less than JF_TIMEOUT_MS passed
 * since @t0_ns, a time before the observer last saw the objects move (or
 * first saw them): a test thread stalled that long by a busy machine makes
 * anything dead legitimately.  True (and says so) if it was.
 */
static inline bool jf_stalled(uint64_t t0_ns)
{
	uint64_t ms = (cbdt_now_ns() - t0_ns) / 1000000ULL;

	if (ms < JF_TIMEOUT_MS)
		return false;
	printf("stalled for %llu ms, the whole %u ms window: cannot judge\n",
	       (unsigned long long)ms, JF_TIMEOUT_MS);
	return true;
}

/* Let @ms pass, beating the live objects every tick and sampling @obs. */
static inline void jf_run(struct jf *f, struct cbdt_observer *obs, unsigned ms)
{
	for (unsigned t = 0; t <= ms; t += JF_TICK_MS) {
		for (unsigned i = 0; i < f->nalive; i++)
			if (f->alive[i].on)
				cbdt_slot_heartbeat(f->t, f->alive[i].type,
						    f->alive[i].id);
		if (obs)
			cbdt_observer_sample(obs);
		cbdt_sleep_ms(JF_TICK_MS);
	}
	/* A last beat right before the caller looks. */
	for (unsigned i = 0; i < f->nalive; i++)
		if (f->alive[i].on)
			cbdt_slot_heartbeat(f->t, f->alive[i].type,
					    f->alive[i].id);
}

static inline uint32_t jf_host(struct jf *f, const char *name,
			       enum cbdt_host_role role, uint64_t *owner)
{
	struct cbdt_host_rec rec;
	uint64_t o;
	uint32_t id;

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.hostname, sizeof(rec.hostname), "%s", name);
	rec.role = (uint16_t)role;
	rec.pid = (uint32_t)getpid();
	rec.hb_interval_ms = JF_TICK_MS;
	rec.hb_timeout_ms = JF_TIMEOUT_MS;
	if (cbdt_host_register(f->t, &rec, false, &id, &o))
		return UINT32_MAX;
	if (owner)
		*owner = o;
	jf_keep(f, CBDT_OBJ_HOST, id);
	return id;
}

static inline uint32_t jf_backend(struct jf *f, uint32_t host, const char *name,
				  uint16_t handlers, bool ro, uint64_t *owner)
{
	struct cbdt_backend_rec rec;
	uint64_t o;
	int id;

	id = cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, -1, (uint16_t)host, &o);
	if (id < 0)
		return UINT32_MAX;
	memset(&rec, 0, sizeof(rec));
	rec.host_id = (uint16_t)host;
	rec.handlers = handlers;
	rec.flags = ro ? CBDT_BACKEND_RO : 0;
	rec.size = 64ULL << 20;
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	snprintf(rec.path, sizeof(rec.path), "/dev/null");
	rec.block_size = 512;
	rec.ident = cbdt_backend_ident("jf", name, rec.path);
	if (cbdt_record_write(f->t, CBDT_OBJ_BACKEND, (uint32_t)id, &rec,
			      sizeof(rec)))
		return UINT32_MAX;
	if (owner)
		*owner = o;
	jf_keep(f, CBDT_OBJ_BACKEND, (uint32_t)id);
	return (uint32_t)id;
}

static inline struct cbdt_channel_ctrl *jf_ctrl(struct jf *f, uint32_t seg)
{
	return cbdt_segment_ctrl(f->t, seg);
}

static inline bool jf_active(struct jf *f, enum cbdt_obj type, uint32_t id)
{
	return CBDT_OWNER_STATE(cbdt_slot_owner(f->t, type, id)) ==
	       CBDT_SLOT_ACTIVE;
}

static inline unsigned jf_count_active(struct jf *f, enum cbdt_obj type)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < cbdt_slot_count(f->t, type); i++)
		n += jf_active(f, type, i);
	return n;
}

static inline bool jf_handlers_known(struct jf_handlers *h, uint32_t seg)
{
	for (unsigned i = 0; i < h->n; i++)
		if (h->seg[i] == seg)
			return true;
	return false;
}

/* What a backend's discovery does: attach to every open channel that a
 * blkdev opened to our backend. */
static inline void *jf_handlers_main(void *arg)
{
	struct jf_handlers *h = arg;
	struct cbdt_segment_rec rec;

	for (;;) {
		pthread_mutex_lock(&h->lock);
		if (h->stop) {
			pthread_mutex_unlock(&h->lock);
			return NULL;
		}
		for (uint32_t s = 0;
		     s < cbdt_slot_count(h->t, CBDT_OBJ_SEGMENT); s++) {
			struct cbdt_channel_ctrl *ctrl =
				cbdt_segment_ctrl(h->t, s);

			if (h->n == JF_HANDLERS_MAX ||
			    CBDT_OWNER_STATE(cbdt_slot_owner(
				    h->t, CBDT_OBJ_SEGMENT, s)) !=
				    CBDT_SLOT_ACTIVE ||
			    cbdt_segment_read(h->t, s, &rec) ||
			    rec.type != CBDT_SEG_CHANNEL ||
			    rec.backend_id != h->backend_id ||
			    jf_handlers_known(h, s) ||
			    smp_load_acquire(&ctrl->client_state) !=
				    CBDT_CLIENT_OPEN)
				continue;
			if (!cbdt_channel_open(h->t, s, CBDT_CHANNEL_HANDLER,
					       h->backend_owner, &h->ch[h->n]))
				h->seg[h->n++] = s;
		}
		pthread_mutex_unlock(&h->lock);
		cbdt_sleep_ms(1);
	}
}

static inline void jf_handlers_start(struct jf_handlers *h, struct jf *f,
				     uint32_t backend_id, uint64_t owner)
{
	memset(h, 0, sizeof(*h));
	h->t = f->t;
	h->backend_id = backend_id;
	h->backend_owner = owner;
	pthread_mutex_init(&h->lock, NULL);
	pthread_create(&h->thr, NULL, jf_handlers_main, h);
}

static inline void jf_handlers_stop(struct jf_handlers *h)
{
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thr, NULL);
}

/* The handlers notice CLOSING and detach, as a live backend does. */
static inline unsigned jf_handlers_detach_closing(struct jf_handlers *h)
{
	unsigned n = 0;

	for (unsigned i = 0; i < h->n; i++) {
		if (!h->ch[i] ||
		    cbdt_channel_client_state(h->ch[i]) != CBDT_CLIENT_CLOSING)
			continue;
		cbdt_channel_handler_detach(h->ch[i]);
		cbdt_channel_close(h->ch[i]);
		h->ch[i] = NULL;
		n++;
	}
	return n;
}

static inline void jf_handlers_free(struct jf_handlers *h)
{
	for (unsigned i = 0; i < h->n; i++)
		cbdt_channel_close(h->ch[i]);
	h->n = 0;
}

/* Forget a mapping without unmapping it (its owner "died"). */
static inline void jf_blkdev_drop(struct cbdt_blkdev *b)
{
	if (!b)
		return;
	for (unsigned q = 0; q < b->queues; q++)
		cbdt_channel_close(b->ch[q]);
	free(b);
}

/* Map @backend for @host with stand-in handlers attaching meanwhile. */
static inline int jf_map(struct jf *f, struct jf_handlers *h, uint32_t host,
			 uint32_t backend, uint64_t backend_owner,
			 unsigned queues, bool ro, struct cbdt_blkdev **b)
{
	int ret;

	jf_handlers_start(h, f, backend, backend_owner);
	ret = cbdt_blkdev_map(f->t, host, backend, queues, ro, TFX_DEADLINE_MS,
			      b);
	jf_handlers_stop(h);
	if (!ret)
		jf_keep(f, CBDT_OBJ_BLKDEV, (*b)->id);
	return ret;
}

#endif /* CBD_TESTS_JANITOR_FIXTURE_H */
