/* SPDX-License-Identifier: MIT */
/*
 * Backends: open the backing store, claim (or re-adopt) a backend slot,
 * write its record, heartbeat it, and take it down again.  Called from the
 * main thread; the backend list is changed under svc->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cbdt-cache.h"
#include "log.h"
#include "util.h"

/* A clean stop writes the cache back for at most this long. */
#define BACKEND_CACHE_STOP_MS 60000U

/* Claimed slot: *id and *owner. */
struct claim {
	uint32_t id;
	uint64_t owner;
};

/* An id pinned in the config: ours if FREE or held by our dead self. */
static int claim_pinned(struct service *svc, struct backend *b, struct claim *c)
{
	struct cbdt *t = svc->t;
	uint32_t id = (uint32_t)b->conf.id;
	struct cbdt_backend_rec rec;
	uint64_t o;
	int ret;

	if (id >= cbdt_slot_count(t, CBDT_OBJ_BACKEND)) {
		log_err("backend %s: id %u: the transport has only %u backend slots",
			b->conf.name, id, cbdt_slot_count(t, CBDT_OBJ_BACKEND));
		return -ERANGE;
	}
	o = cbdt_slot_owner(t, CBDT_OBJ_BACKEND, id);
	if (CBDT_OWNER_STATE(o) == CBDT_SLOT_ACTIVE) {
		if (CBDT_OWNER_HOST(o) == svc->host_id &&
		    !cbdt_backend_read(t, id, &rec) && rec.ident == b->ident) {
			ret = cbdt_slot_takeover(t, CBDT_OBJ_BACKEND, id, o,
						 (uint16_t)svc->host_id,
						 &c->owner);
			if (!ret)
				goto adopted;
		}
		log_err("backend %s: id %u is in use by host %u", b->conf.name,
			id, CBDT_OWNER_HOST(o));
		return -EBUSY;
	}
	ret = cbdt_slot_claim(t, CBDT_OBJ_BACKEND, (int)id,
			      (uint16_t)svc->host_id, &c->owner);
	if (ret < 0) {
		log_err("backend %s: id %u: cannot claim it: %s", b->conf.name,
			id, strerror(-ret));
		return ret;
	}
	c->id = id;
	return 0;

adopted:
	c->id = id;
	log_info("backend %s: re-adopted backend%u", b->conf.name, id);
	return 0;
}

/* The slot our previous run used: same ident, FREE or ACTIVE under our
 * host id (a crash left it).  -ENOENT if there is none. */
static int claim_adopt(struct service *svc, struct backend *b, struct claim *c)
{
	struct cbdt *t = svc->t;
	uint32_t count = cbdt_slot_count(t, CBDT_OBJ_BACKEND);
	struct cbdt_backend_rec rec;

	for (uint32_t id = 0; id < count; id++) {
		uint64_t o = cbdt_slot_owner(t, CBDT_OBJ_BACKEND, id);
		int ret;

		if (cbdt_backend_read(t, id, &rec) || rec.ident != b->ident)
			continue;
		if (CBDT_OWNER_STATE(o) == CBDT_SLOT_ACTIVE) {
			if (CBDT_OWNER_HOST(o) != svc->host_id)
				continue;
			ret = cbdt_slot_takeover(t, CBDT_OBJ_BACKEND, id, o,
						 (uint16_t)svc->host_id,
						 &c->owner);
		} else {
			ret = cbdt_slot_claim(t, CBDT_OBJ_BACKEND, (int)id,
					      (uint16_t)svc->host_id,
					      &c->owner);
		}
		if (ret < 0)
			continue; /* lost a race for it */
		c->id = id;
		log_info("backend %s: re-adopted backend%u", b->conf.name, id);
		return 0;
	}
	return -ENOENT;
}

/* The lowest free id, preferring slots that never held a backend so that
 * a stopped backend of another host finds its old id again. */
static int claim_fresh(struct service *svc, struct backend *b, struct claim *c)
{
	struct cbdt *t = svc->t;
	uint32_t count = cbdt_slot_count(t, CBDT_OBJ_BACKEND);
	struct cbdt_backend_rec rec;
	int ret;

	for (uint32_t id = 0; id < count; id++) {
		uint64_t o = cbdt_slot_owner(t, CBDT_OBJ_BACKEND, id);

		if (CBDT_OWNER_STATE(o) != CBDT_SLOT_FREE ||
		    cbdt_backend_read(t, id, &rec) != -ENODATA)
			continue;
		ret = cbdt_slot_claim(t, CBDT_OBJ_BACKEND, (int)id,
				      (uint16_t)svc->host_id, &c->owner);
		if (ret >= 0) {
			c->id = id;
			return 0;
		}
	}
	ret = cbdt_slot_claim(t, CBDT_OBJ_BACKEND, -1, (uint16_t)svc->host_id,
			      &c->owner);
	if (ret < 0) {
		log_err("backend %s: no free backend slot: %s", b->conf.name,
			strerror(-ret));
		return ret;
	}
	c->id = (uint32_t)ret;
	return 0;
}

static int backend_record(struct service *svc, struct backend *b)
{
	struct cbdt_backend_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.host_id = (uint16_t)svc->host_id;
	rec.handlers = (uint16_t)b->conf.handlers;
	rec.flags = (b->conf.readonly ? CBDT_BACKEND_RO : 0) |
		    (b->conf.cache_size ? CBDT_BACKEND_CACHED : 0);
	rec.size = b->store.size;
	strlcpy_field(rec.name, b->conf.name, sizeof(rec.name));
	strlcpy_field(rec.path, b->conf.path, sizeof(rec.path));
	rec.block_size = b->store.block_size;
	rec.ident = b->ident;
	return cbdt_record_write(svc->t, CBDT_OBJ_BACKEND, b->id, &rec,
				 sizeof(rec));
}

/* Forget every "not ours" verdict: the set of our backends changed. */
static void seen_reset(struct service *svc)
{
	memset(svc->seen, 0, svc->nr_segs * sizeof(*svc->seen));
}

/* The cache: adopted, made, or (an old one) written back and given up. */
static int backend_cache_open(struct service *svc, struct backend *b)
{
	struct cache_owner o = {
		.t = svc->t,
		.host_id = (uint16_t)svc->host_id,
		.backend_id = (uint16_t)b->id,
		.ident = b->ident,
		.store = &b->store,
		.name = b->conf.name,
	};
	struct cache_conf cc = {
		.size = b->conf.cache_size,
		.gc_percent = b->conf.cache_gc_percent,
		.data_crc = b->conf.cache_data_crc,
		.handlers = b->conf.handlers,
	};
	char sz[32];
	int ret;

	if (b->conf.readonly) {
		struct cbdt_cache_seg seg;

		/* Reads from the disk alone would miss what it holds. */
		if (cbdt_cache_find(svc->t, b->ident, &seg, 1) == 0)
			return 0;
		log_err("backend %s: the transport holds a cache of this backend that a read-only backend cannot write back: serve it writable once (or stop it cleanly) first",
			b->conf.name);
		return -EBUSY;
	}
	ret = cache_open(&o, &cc, &b->cache);
	if (ret) {
		log_err("backend %s: cache: cannot set it up: %s", b->conf.name,
			strerror(-ret));
		return ret;
	}
	if (b->cache)
		log_info(
			"backend %s: cache: %s in the transport (%s), gc above %u%%%s",
			b->conf.name,
			format_size(cache_size(b->cache), sz, sizeof(sz)),
			cbdt_is_dax(svc->t) ?
				"persistent: dax" :
				"volatile: a file transport, lost with this host's power",
			b->conf.cache_gc_percent,
			b->conf.cache_data_crc ? ", data crc" : "");
	return 0;
}

int backend_start(struct service *svc, const struct config_backend *conf)
{
	struct claim c;
	struct backend *b;
	char sz[32];
	int ret;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->conf = *conf;
	/* With a cache in front, the disk is written in the background and
	 * made durable by fdatasync before the log's tail moves: buffered
	 * is what it needs (STORE_WRITEBACK). */
	ret = store_open(&b->store, conf->path,
			 (conf->readonly ? STORE_RO : 0) |
				 (conf->writeback || conf->cache_size ?
					  STORE_WRITEBACK :
					  0));
	if (ret == -EBUSY)
		log_err("backend %s: %s: in use: another backend or process holds it (a lock or an exclusive open)",
			conf->name, conf->path);
	else if (ret == -EFBIG)
		log_err("backend %s: %s: smaller than %u bytes: too small to serve",
			conf->name, conf->path, CBDT_BACKEND_MIN_SIZE);
	else if (ret)
		log_err("backend %s: %s: %s", conf->name, conf->path,
			strerror(-ret));
	if (ret)
		goto err_free;
	if (b->store.tail)
		log_warn(
			"backend %s: %s: its last %u bytes are not served: the size is rounded down to whole 512-byte sectors",
			conf->name, conf->path, b->store.tail);
	b->ident =
		cbdt_backend_ident(svc->cfg->hostname, conf->name, conf->path);
	if (conf->id >= 0)
		ret = claim_pinned(svc, b, &c);
	else if ((ret = claim_adopt(svc, b, &c)) == -ENOENT)
		ret = claim_fresh(svc, b, &c);
	if (ret)
		goto err_close;
	b->id = c.id;
	b->owner = c.owner;
	ret = backend_record(svc, b);
	if (ret) {
		log_err("backend %s: backend%u: cannot write its record: %s",
			conf->name, b->id, strerror(-ret));
		goto err_release;
	}
	cbdt_slot_heartbeat(svc->t, CBDT_OBJ_BACKEND, b->id);
	ret = backend_cache_open(svc, b);
	if (ret)
		goto err_release;

	pthread_mutex_lock(&svc->lock);
	b->next = svc->backends;
	svc->backends = b;
	seen_reset(svc);
	pthread_mutex_unlock(&svc->lock);
	log_info(
		"backend %s: serving %s (%s%s, %s) as backend%u, up to %u channels",
		conf->name, conf->path,
		format_size(b->store.size, sz, sizeof(sz)),
		conf->readonly ? ", read-only" : "",
		conf->cache_size ?
			"cached: writes are durable once in the transport's cache" :
		conf->writeback ?
			"writeback: acknowledged writes may be lost if this host crashes" :
		b->store.direct ? "sync, direct I/O" :
				  "sync, O_DSYNC",
		b->id, conf->handlers);
	return 0;

err_release:
	cbdt_slot_release(svc->t, CBDT_OBJ_BACKEND, b->id, b->owner);
err_close:
	store_close(&b->store);
err_free:
	free(b);
	return ret;
}

void backend_stop(struct service *svc, struct backend *b)
{
	struct backend **pp;
	int ret;

	pthread_mutex_lock(&svc->lock);
	for (pp = &svc->backends; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	for (struct handler *h = b->handlers; h; h = h->next)
		if (svc->served[h->seg_id] == h)
			svc->served[h->seg_id] = NULL;
	seen_reset(svc);
	pthread_mutex_unlock(&svc->lock);

	/* Unreachable for discovery and heartbeats now: drain unlocked. */
	cache_quiesce(b->cache);
	handlers_stop(b);
	cache_close(b->cache, BACKEND_CACHE_STOP_MS);
	if (!b->lost) {
		ret = cbdt_slot_release(svc->t, CBDT_OBJ_BACKEND, b->id,
					b->owner);
		if (ret)
			log_warn("backend %s: backend%u: cannot release it: %s",
				 b->conf.name, b->id, strerror(-ret));
	}
	log_info("backend %s: stopped, backend%u released", b->conf.name,
		 b->id);
	store_close(&b->store);
	free(b);
}

void backends_heartbeat(struct service *svc)
{
	for (struct backend *b = svc->backends; b; b = b->next) {
		uint64_t o = cbdt_slot_owner(svc->t, CBDT_OBJ_BACKEND, b->id);

		if (o == b->owner) {
			cbdt_slot_heartbeat(svc->t, CBDT_OBJ_BACKEND, b->id);
			continue;
		}
		if (!b->lost)
			log_err("backend %s: backend%u was taken from us (owner %#" PRIx64
				", ours %#" PRIx64 "); no longer serving it",
				b->conf.name, b->id, o, b->owner);
		b->lost = true;
	}
}
