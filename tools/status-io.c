/* SPDX-License-Identifier: MIT */
/*
 * What cbd-status shows of I/O: each channel's counters (kept by its
 * handler in the control area) and ring indexes, read at the start and
 * at the end of the sampling window, summed per blkdev and per backend
 * into totals, rates and what is in flight; and the problems --check
 * reports.  Reads only (relaxed loads of counters a handler may be
 * bumping); single-threaded.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "barrier.h"
#include "cbdt.h"
#include "status.h"

static void stats_copy(struct cbdt_chan_stats *dst,
		       const struct cbdt_chan_stats *src)
{
	for (unsigned i = 0; i < CBDT_STAT_OPS; i++) {
		dst->ops[i] = READ_ONCE(src->ops[i]);
		dst->bytes[i] = READ_ONCE(src->bytes[i]);
	}
	for (unsigned i = 0; i < CBDT_ERR_NR; i++)
		dst->errors[i] = READ_ONCE(src->errors[i]);
	for (unsigned i = 0; i < CBDT_LAT_BUCKETS; i++)
		dst->lat[i] = READ_ONCE(src->lat[i]);
}

void status_io_sample(const struct cbdt *t, struct status_snap *s, bool first)
{
	for (uint32_t id = 0; id < s->nr_segments; id++) {
		struct status_segment *g = &s->segments[id];
		const struct cbdt_channel_ctrl *ctrl = cbdt_segment_ctrl(t, id);
		uint64_t owner = cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, id);
		uint32_t flags;

		/* pairs with the store-release of magic at channel init */
		if (!ctrl || CBDT_OWNER_STATE(owner) != CBDT_SLOT_ACTIVE ||
		    smp_load_acquire(&ctrl->magic) != CBDT_CHANNEL_MAGIC)
			continue;
		if (first) {
			stats_copy(&g->st0, &ctrl->stats);
			g->owner0 = owner;
			continue;
		}
		stats_copy(&g->st, &ctrl->stats);
		/* a segment that changed hands meanwhile has no rate */
		if (g->owner0 != owner)
			g->st0 = g->st;
		/* pairs with the client's store-release of sq_head and the
		 * handler's of sq_tail: a consistent enough difference */
		g->inflight = smp_load_acquire(&ctrl->sq_head) -
			      smp_load_acquire(&ctrl->sq_tail);
		flags = READ_ONCE(ctrl->handler_flags);
		g->lost = flags & CBDT_HF_LOST;
		g->packs = flags & CBDT_HF_PACK;
		g->timed_out = READ_ONCE(ctrl->timed_out);
		g->submitted = READ_ONCE(ctrl->submitted);
		g->qdepth = READ_ONCE(ctrl->se_count);
		g->max_io = READ_ONCE(ctrl->data_size);
	}
}

static void io_add(const struct status_snap *s, const struct status_segment *g,
		   struct status_io *io)
{
	double secs = (double)s->io_ns / 1e9;
	uint64_t ops = 0;

	for (unsigned i = 0; i < CBDT_STAT_OPS; i++) {
		io->ops[i] += g->st.ops[i];
		io->bytes[i] += g->st.bytes[i];
		ops += g->st.ops[i] - g->st0.ops[i];
	}
	for (unsigned i = 0; i < CBDT_ERR_NR; i++) {
		io->errors += g->st.errors[i];
		io->errors_window += g->st.errors[i] - g->st0.errors[i];
	}
	for (unsigned i = 0; i < CBDT_LAT_BUCKETS; i++)
		io->lat[i] += g->st.lat[i];
	io->timed_out += g->timed_out;
	io->submitted += g->submitted;
	io->inflight += g->inflight;
	io->lost |= g->lost;
	if (secs > 0) {
		io->iops += (double)ops / secs;
		io->read_mib_s += (double)(g->st.bytes[CBDT_OP_READ] -
					   g->st0.bytes[CBDT_OP_READ]) /
				  secs / (1 << 20);
		io->write_mib_s += (double)(g->st.bytes[CBDT_OP_WRITE] -
					    g->st0.bytes[CBDT_OP_WRITE]) /
				   secs / (1 << 20);
	}
	if (!io->channels || g->qdepth < io->qdepth)
		io->qdepth = g->qdepth;
	if (!io->channels || g->max_io < io->max_io)
		io->max_io = g->max_io;
	io->channels++;
}

/* A channel segment of a live mapping (not left over from an old one). */
static bool seg_counts(const struct status_segment *g)
{
	return g->s.active && g->ctrl_valid && g->s.rec == STATUS_REC_VALID &&
	       g->r.type == CBDT_SEG_CHANNEL && !g->orphaned;
}

void status_io_blkdev(const struct status_snap *s, uint32_t id,
		      struct status_io *io)
{
	memset(io, 0, sizeof(*io));
	for (uint32_t i = 0; i < s->nr_segments; i++)
		if (seg_counts(&s->segments[i]) &&
		    s->segments[i].r.blkdev_id == id)
			io_add(s, &s->segments[i], io);
}

void status_io_backend(const struct status_snap *s, uint32_t id,
		       struct status_io *io)
{
	const struct status_backend *b = &s->backends[id];

	memset(io, 0, sizeof(*io));
	for (uint32_t i = 0; i < s->nr_segments; i++) {
		const struct status_segment *g = &s->segments[i];

		if (!seg_counts(g) || g->r.backend_id != id)
			continue;
		/* channels of an earlier backend in this slot: not ours */
		if (b->s.rec == STATUS_REC_VALID && b->r.ident &&
		    g->r.backend_ident && g->r.backend_ident != b->r.ident)
			continue;
		io_add(s, g, io);
	}
}

static unsigned check_slot(FILE *f, const char *what, uint32_t id,
			   const struct status_slot *sl, const char *name)
{
	if (!sl->active || sl->alive)
		return 0;
	fprintf(f, "dead: %s %u%s%s%s (heartbeat still for %" PRIu64 " ms)\n",
		what, id, name ? " (" : "", name ? name : "", name ? ")" : "",
		sl->hb_age_ms);
	return 1;
}

static unsigned check_io(FILE *f, const struct status_snap *s, const char *what,
			 uint32_t id, const struct status_io *io)
{
	unsigned n = 0;

	if (io->lost) {
		fprintf(f,
			"lost: %s %u: a channel lost writes acknowledged in writeback mode (its I/O fails)\n",
			what, id);
		n++;
	}
	if (io->errors_window) {
		fprintf(f,
			"errors: %s %u: %" PRIu64
			" failed requests in the last %.1f s\n",
			what, id, io->errors_window, (double)s->io_ns / 1e9);
		n++;
	}
	return n;
}

unsigned status_check(const struct status_snap *s, FILE *f)
{
	struct status_io io;
	unsigned n = 0;

	for (uint32_t id = 0; id < s->nr_hosts; id++)
		n += check_slot(f, "host", id, &s->hosts[id].s,
				s->hosts[id].s.rec == STATUS_REC_VALID ?
					s->hosts[id].r.hostname :
					NULL);
	for (uint32_t id = 0; id < s->nr_backends; id++) {
		n += check_slot(f, "backend", id, &s->backends[id].s,
				s->backends[id].s.rec == STATUS_REC_VALID ?
					s->backends[id].r.name :
					NULL);
		if (s->backends[id].s.active) {
			status_io_backend(s, id, &io);
			n += check_io(f, s, "backend", id, &io);
		}
	}
	for (uint32_t i = 0; i < s->nr_caches; i++) {
		const struct status_cache *c = &s->caches[i];

		if (!status_cache_dirty_kept(c))
			continue;
		fprintf(f,
			"cache: backend %u: stopped with writes not yet on its disk (segment %u); start the backend to write them back\n",
			c->backend_id, c->seg0);
		n++;
	}
	for (uint32_t id = 0; id < s->nr_blkdevs; id++) {
		n += check_slot(f, "blkdev", id, &s->blkdevs[id].s, NULL);
		if (s->blkdevs[id].s.active) {
			status_io_blkdev(s, id, &io);
			n += check_io(f, s, "blkdev", id, &io);
		}
	}
	return n;
}
