/* SPDX-License-Identifier: MIT */
/*
 * cbd-status --json: the snapshot as one jansson object (field by field in
 * the README).  Pure function of a snapshot; no shared memory is touched.
 */
#include <stdbool.h>

#include <jansson.h>

#include "status.h"

/*
 * jansson's json_object_set_new() steals the value even on failure, so
 * building goes on and one flag remembers that something was lost.
 */
struct jb {
	bool failed;
};

static void put(struct jb *jb, json_t *obj, const char *key, json_t *val)
{
	if (!val || json_object_set_new(obj, key, val))
		jb->failed = true;
}

static void append(struct jb *jb, json_t *arr, json_t *val)
{
	if (!val || json_array_append_new(arr, val))
		jb->failed = true;
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

/* A string from a record, or null when the record is not valid. */
static json_t *jrec_str(const struct status_slot *sl, const char *v)
{
	return sl->rec == STATUS_REC_VALID ? json_string(v) : json_null();
}

static json_t *jrec_int(const struct status_slot *sl, uint64_t v)
{
	return sl->rec == STATUS_REC_VALID ? jint(v) : json_null();
}

static json_t *jrec_bool(const struct status_slot *sl, bool v)
{
	return sl->rec == STATUS_REC_VALID ? json_boolean(v) : json_null();
}

/* Fields every slot has. */
static json_t *slot_json(struct jb *jb, const struct status_slot *sl,
			 bool liveness)
{
	json_t *o = json_object();

	if (!o) {
		jb->failed = true;
		return NULL;
	}
	put(jb, o, "id", jint(sl->id));
	put(jb, o, "state", json_string(sl->active ? "active" : "free"));
	put(jb, o, "generation", jint(sl->generation));
	put(jb, o, "record", json_string(status_rec_name(sl->rec)));
	if (liveness) {
		put(jb, o, "alive", json_boolean(sl->alive));
		put(jb, o, "heartbeat", jint(sl->heartbeat));
		put(jb, o, "heartbeat_age_ms", jint(sl->hb_age_ms));
	}
	return o;
}

/* The "io" object of a blkdev or backend (see cbd-status(1), JSON). */
static json_t *io_json(struct jb *jb, const struct status_io *io,
		       const struct status_snap *s)
{
	static const char *const op_keys[CBDT_STAT_OPS] = {
		"bad", "read", "write", "flush", "discard", "write_zeroes",
	};
	json_t *o = json_object(), *ops = json_object(), *bytes = json_object(),
	       *lat = json_array();

	if (!o || !ops || !bytes || !lat) {
		jb->failed = true;
		json_decref(ops);
		json_decref(bytes);
		json_decref(lat);
		return o;
	}
	for (unsigned i = 0; i < CBDT_STAT_OPS; i++) {
		put(jb, ops, op_keys[i], jint(io->ops[i]));
		if (i)
			put(jb, bytes, op_keys[i], jint(io->bytes[i]));
	}
	for (unsigned i = 0; i < CBDT_LAT_BUCKETS; i++)
		append(jb, lat, jint(io->lat[i]));
	put(jb, o, "channels", jint(io->channels));
	put(jb, o, "ops", ops);
	put(jb, o, "bytes", bytes);
	put(jb, o, "errors", jint(io->errors));
	put(jb, o, "errors_window", jint(io->errors_window));
	put(jb, o, "submitted", jint(io->submitted));
	put(jb, o, "timed_out", jint(io->timed_out));
	put(jb, o, "inflight", jint(io->inflight));
	put(jb, o, "lost", json_boolean(io->lost));
	put(jb, o, "latency_us_log2", lat);
	if (s->io_ns) {
		put(jb, o, "iops", json_real(io->iops));
		put(jb, o, "read_mib_s", json_real(io->read_mib_s));
		put(jb, o, "write_mib_s", json_real(io->write_mib_s));
	} else {
		put(jb, o, "iops", json_null());
		put(jb, o, "read_mib_s", json_null());
		put(jb, o, "write_mib_s", json_null());
	}
	return o;
}

static json_t *transport_json(struct jb *jb, const struct status_snap *s)
{
	const struct cbdt_info *in = &s->info;
	json_t *o = json_object(), *flags = json_object(),
	       *slots = json_object();
	char uuid[37];

	if (!o || !flags || !slots) {
		jb->failed = true;
		json_decref(flags);
		json_decref(slots);
		return o;
	}
	status_uuid_format(in->uuid, uuid);
	put(jb, o, "path", json_string(s->path));
	put(jb, o, "size", jint(in->size));
	put(jb, o, "version", jint(in->format_version));
	put(jb, flags, "entry_crc", json_boolean(in->flags & CBDT_F_ENTRY_CRC));
	put(jb, flags, "data_crc", json_boolean(in->flags & CBDT_F_DATA_CRC));
	put(jb, o, "flags", flags);
	put(jb, o, "uuid", json_string(uuid));
	put(jb, slots, "hosts", jint(s->nr_hosts));
	put(jb, slots, "backends", jint(s->nr_backends));
	put(jb, slots, "blkdevs", jint(s->nr_blkdevs));
	put(jb, slots, "segments", jint(s->nr_segments));
	put(jb, o, "slots", slots);
	put(jb, o, "segment_size", jint(in->seg_size));
	put(jb, o, "hosts_used", jint(s->hosts_used));
	put(jb, o, "backends_used", jint(s->backends_used));
	put(jb, o, "blkdevs_used", jint(s->blkdevs_used));
	put(jb, o, "segments_used", jint(s->segments_used));
	put(jb, o, "segments_free", jint(s->nr_segments - s->segments_used));
	put(jb, o, "janitor_host",
	    s->janitor_held ? jint(s->janitor_host) : json_null());
	return o;
}

static json_t *host_json(struct jb *jb, const struct status_host *h)
{
	json_t *o = slot_json(jb, &h->s, true);

	if (!o)
		return NULL;
	put(jb, o, "hostname", jrec_str(&h->s, h->r.hostname));
	put(jb, o, "role", jrec_str(&h->s, status_role_name(h->r.role)));
	put(jb, o, "pid", jrec_int(&h->s, h->r.pid));
	put(jb, o, "heartbeat_interval_ms",
	    jrec_int(&h->s, h->r.hb_interval_ms));
	put(jb, o, "heartbeat_timeout_ms", jrec_int(&h->s, h->r.hb_timeout_ms));
	put(jb, o, "mountpoint",
	    h->s.rec == STATUS_REC_VALID && h->r.mountpoint[0] ?
		    json_string(h->r.mountpoint) :
		    json_null());
	return o;
}

/* A cache: what it holds and does (see cbd-status(1), JSON). */
static json_t *cache_json(struct jb *jb, const struct status_snap *s,
			  const struct status_cache *c)
{
	json_t *o = json_object();
	double hit = status_cache_hit_ratio(c);

	if (!o) {
		jb->failed = true;
		return NULL;
	}
	put(jb, o, "backend_id", jint(c->backend_id));
	put(jb, o, "segment", jint(c->seg0));
	put(jb, o, "segments", jint(c->nsegs));
	put(jb, o, "state", json_string(status_cache_state(c)));
	put(jb, o, "running", json_boolean(c->running));
	put(jb, o, "writeback_paused", json_boolean(c->paused));
	put(jb, o, "dirty_kept", json_boolean(status_cache_dirty_kept(c)));
	put(jb, o, "size", jint(c->nsegs * (uint64_t)CBDT_CACHE_AREA_SIZE));
	put(jb, o, "used", c->running ? jint(c->h.used) : json_null());
	put(jb, o, "dirty", c->running ? jint(c->h.dirty) : json_null());
	put(jb, o, "read_bytes", jint(c->h.read_bytes));
	put(jb, o, "hit_bytes", jint(c->h.hit_bytes));
	put(jb, o, "write_bytes", jint(c->h.write_bytes));
	put(jb, o, "writeback_bytes", jint(c->h.wb_bytes));
	put(jb, o, "hit_ratio", hit < 0 ? json_null() : json_real(hit));
	put(jb, o, "writeback_mib_s",
	    s->io_ns && c->running ? json_real(c->wb_mib_s) : json_null());
	return o;
}

static json_t *backend_json(struct jb *jb, const struct status_snap *s,
			    const struct status_backend *b)
{
	const struct status_cache *c = status_cache_of(s, b->s.id);
	json_t *o = slot_json(jb, &b->s, true);
	struct status_io io;

	if (!o)
		return NULL;
	put(jb, o, "host_id", jrec_int(&b->s, b->r.host_id));
	put(jb, o, "name", jrec_str(&b->s, b->r.name));
	put(jb, o, "path", jrec_str(&b->s, b->r.path));
	put(jb, o, "size", jrec_int(&b->s, b->r.size));
	put(jb, o, "block_size", jrec_int(&b->s, b->r.block_size));
	put(jb, o, "readonly", jrec_bool(&b->s, b->r.flags & CBDT_BACKEND_RO));
	put(jb, o, "handlers", jrec_int(&b->s, b->r.handlers));
	put(jb, o, "writer_blkdev",
	    b->locked ? jint(b->lock_blkdev) : json_null());
	status_io_backend(s, b->s.id, &io);
	put(jb, o, "io", io_json(jb, &io, s));
	put(jb, o, "cache", c ? cache_json(jb, s, c) : json_null());
	return o;
}

/* What a client of the blkdev gets, as ublk list and nbdinfo show it. */
static json_t *caps_json(struct jb *jb, const struct status_snap *s,
			 const struct status_blkdev *d,
			 const struct status_io *io)
{
	const struct status_backend *b = d->r.backend_id < s->nr_backends ?
						 &s->backends[d->r.backend_id] :
						 NULL;
	bool ro = (d->r.flags & CBDT_BLKDEV_RO) ||
		  (b && b->s.rec == STATUS_REC_VALID &&
		   (b->r.flags & CBDT_BACKEND_RO));
	json_t *o = json_object();

	if (!o) {
		jb->failed = true;
		return NULL;
	}
	put(jb, o, "size",
	    b && b->s.rec == STATUS_REC_VALID ? jint(b->r.size) : json_null());
	put(jb, o, "logical_block_size",
	    b && b->s.rec == STATUS_REC_VALID ? jint(b->r.block_size) :
						json_null());
	put(jb, o, "queues", jint(io->channels));
	put(jb, o, "queue_depth", jint(io->qdepth));
	put(jb, o, "max_io_bytes", jint(io->max_io));
	put(jb, o, "readonly", json_boolean(ro));
	put(jb, o, "flush", json_true()); /* a no-op when read-only */
	/* a running cache makes completed writes durable: nothing for a
	 * flush to do (write_cache "write through" is then honest) */
	put(jb, o, "volatile_cache",
	    json_boolean(!ro && !(b && status_cache_of(s, b->s.id) &&
				  status_cache_of(s, b->s.id)->running)));
	put(jb, o, "fua", json_boolean(!ro));
	put(jb, o, "discard", json_boolean(!ro));
	put(jb, o, "write_zeroes", json_boolean(!ro));
	return o;
}

static json_t *blkdev_json(struct jb *jb, const struct status_snap *s,
			   const struct status_blkdev *d)
{
	json_t *o = slot_json(jb, &d->s, true), *ch;
	const char *mnt;
	struct status_io io;

	if (!o)
		return NULL;
	put(jb, o, "host_id", jrec_int(&d->s, d->r.host_id));
	put(jb, o, "backend_id", jrec_int(&d->s, d->r.backend_id));
	put(jb, o, "queues", jrec_int(&d->s, d->r.queues));
	put(jb, o, "readonly", jrec_bool(&d->s, d->r.flags & CBDT_BLKDEV_RO));
	if (d->s.rec != STATUS_REC_VALID) {
		put(jb, o, "channels", json_null());
		return o;
	}
	ch = json_array();
	for (unsigned q = 0; ch && q < d->r.queues; q++)
		append(jb, ch, jint(d->r.segs[q]));
	put(jb, o, "channels", ch);
	mnt = d->r.host_id < s->nr_hosts &&
			      s->hosts[d->r.host_id].s.rec == STATUS_REC_VALID ?
		      s->hosts[d->r.host_id].r.mountpoint :
		      "";
	put(jb, o, "mountpoint", mnt[0] ? json_string(mnt) : json_null());
	status_io_blkdev(s, d->s.id, &io);
	put(jb, o, "capabilities", caps_json(jb, s, d, &io));
	put(jb, o, "io", io_json(jb, &io, s));
	return o;
}

static json_t *segment_json(struct jb *jb, const struct status_segment *g)
{
	json_t *o = slot_json(jb, &g->s, false);
	bool chan = g->s.rec == STATUS_REC_VALID &&
		    g->r.type == CBDT_SEG_CHANNEL;
	bool cache = g->s.rec == STATUS_REC_VALID &&
		     g->r.type == CBDT_SEG_CACHE;

	if (!o)
		return NULL;
	put(jb, o, "type", jrec_str(&g->s, status_seg_type_name(g->r.type)));
	put(jb, o, "backend_id",
	    chan || cache ? jint(g->r.backend_id) : json_null());
	put(jb, o, "blkdev_id", chan ? jint(g->r.blkdev_id) : json_null());
	/* a channel's queue, a cache segment's index in its cache */
	put(jb, o, "queue", chan || cache ? jint(g->r.queue) : json_null());
	put(jb, o, "handler", json_string(status_handler_name(g)));
	put(jb, o, "client", json_string(status_client_name(g)));
	put(jb, o, "orphaned",
	    json_boolean(g->s.active && chan && g->orphaned));
	put(jb, o, "lost", json_boolean(g->s.active && chan && g->lost));
	put(jb, o, "packs", json_boolean(g->s.active && chan && g->packs));
	put(jb, o, "inflight", chan ? jint(g->inflight) : json_null());
	return o;
}

json_t *status_json(const struct status_snap *s, bool all)
{
	struct jb jb = {false};
	json_t *root = json_object();
	json_t *hosts = json_array(), *backends = json_array(),
	       *blkdevs = json_array(), *segments = json_array(),
	       *caches = json_array();

	if (!root || !hosts || !backends || !blkdevs || !segments || !caches) {
		json_decref(caches);
		json_decref(root);
		json_decref(hosts);
		json_decref(backends);
		json_decref(blkdevs);
		json_decref(segments);
		return NULL;
	}
	put(&jb, root, "transport", transport_json(&jb, s));
	put(&jb, root, "window_ms", jint(s->window_ms));
	for (uint32_t i = 0; i < s->nr_hosts; i++)
		if (all || s->hosts[i].s.active)
			append(&jb, hosts, host_json(&jb, &s->hosts[i]));
	for (uint32_t i = 0; i < s->nr_backends; i++)
		if (all || s->backends[i].s.active)
			append(&jb, backends,
			       backend_json(&jb, s, &s->backends[i]));
	for (uint32_t i = 0; i < s->nr_blkdevs; i++)
		if (all || s->blkdevs[i].s.active)
			append(&jb, blkdevs,
			       blkdev_json(&jb, s, &s->blkdevs[i]));
	for (uint32_t i = 0; i < s->nr_segments; i++)
		if (all || s->segments[i].s.active)
			append(&jb, segments,
			       segment_json(&jb, &s->segments[i]));
	put(&jb, root, "hosts", hosts);
	put(&jb, root, "backends", backends);
	put(&jb, root, "blkdevs", blkdevs);
	for (uint32_t i = 0; i < s->nr_caches; i++)
		append(&jb, caches, cache_json(&jb, s, &s->caches[i]));
	put(&jb, root, "segments", segments);
	put(&jb, root, "caches", caches);
	if (jb.failed) {
		json_decref(root);
		return NULL;
	}
	return root;
}
