/* SPDX-License-Identifier: MIT */
/*
 * cbd-status without --json: aligned tables a person reads at a glance.
 * Pure function of a snapshot; no shared memory is touched.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "status.h"
#include "util.h"

#define TBL_COLS_MAX 10

/* A table of strings; the column widths are known once all rows are in. */
struct tbl {
	unsigned ncols;
	const char *head[TBL_COLS_MAX];
	bool right[TBL_COLS_MAX];  /* right-aligned (numbers) */
	bool hidden[TBL_COLS_MAX]; /* filled but not printed */
	char **cell;		   /* nrows x ncols */
	unsigned nrows, cap;
	bool failed; /* ENOMEM while filling */
};

static void tbl_init(struct tbl *t, const char *spec)
{
	/* spec: "ID> HOSTNAME ROLE PID> ..."; '>' marks a numeric column */
	char *dup = strdup(spec), *save = NULL, *tok;

	memset(t, 0, sizeof(*t));
	if (!dup) {
		t->failed = true;
		return;
	}
	for (tok = strtok_r(dup, " ", &save); tok && t->ncols < TBL_COLS_MAX;
	     tok = strtok_r(NULL, " ", &save)) {
		size_t n = strlen(tok);

		t->right[t->ncols] = tok[n - 1] == '>';
		if (t->right[t->ncols])
			tok[n - 1] = '\0';
		/* the headers live as long as the literal spec: keep offsets */
		t->head[t->ncols++] = spec + (tok - dup);
	}
	free(dup);
}

/* Column STATE only tells something when free slots are listed too. */
static void tbl_hide_state(struct tbl *t, bool all)
{
	for (unsigned c = 0; c < t->ncols && !all; c++)
		if (!strncmp(t->head[c], "STATE ", 6))
			t->hidden[c] = true;
}

/* Free the cells; true if the table lost something (ENOMEM). */
static bool tbl_free(struct tbl *t)
{
	for (unsigned i = 0; i < t->nrows * t->ncols; i++)
		free(t->cell[i]);
	free(t->cell);
	return t->failed;
}

/* Add one row: ncols printf-style cells separated by '\t' in @fmt. */
static void PRINTF_FMT(2, 3) tbl_row(struct tbl *t, const char *fmt, ...)
{
	char *line = NULL, *p, *save = NULL;
	unsigned c = 0;
	va_list ap;

	if (t->failed)
		return;
	if (t->nrows == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 16;
		char **n =
			realloc(t->cell, (size_t)cap * t->ncols * sizeof(*n));

		if (!n) {
			t->failed = true;
			return;
		}
		t->cell = n;
		t->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		line = NULL;
	va_end(ap);
	if (!line) {
		t->failed = true;
		return;
	}
	/* strsep keeps empty cells, strtok would merge them */
	save = line;
	for (; c < t->ncols; c++) {
		p = strsep(&save, "\t");
		t->cell[t->nrows * t->ncols + c] = strdup(p ? p : "");
		if (!t->cell[t->nrows * t->ncols + c])
			t->failed = true;
	}
	free(line);
	t->nrows++;
}

/* Header length without the '>' marker. */
static size_t head_len(const struct tbl *t, unsigned c)
{
	size_t n = strcspn(t->head[c], " ");

	return t->right[c] ? n - 1 : n;
}

static void tbl_print(FILE *f, const char *title, struct tbl *t)
{
	size_t w[TBL_COLS_MAX];
	unsigned lastc;

	if (t->failed)
		return;
	if (!t->nrows) {
		fprintf(f, "%s: none\n", title);
		return;
	}
	fprintf(f, "%s\n", title);
	for (unsigned c = 0; c < t->ncols; c++) {
		w[c] = head_len(t, c);
		for (unsigned r = 0; r < t->nrows; r++)
			w[c] = MAX(w[c], strlen(t->cell[r * t->ncols + c]));
	}
	for (lastc = t->ncols - 1; lastc > 0 && t->hidden[lastc]; lastc--)
		;
	for (int r = -1; r < (int)t->nrows; r++) {
		fputs("  ", f);
		for (unsigned c = 0; c <= lastc; c++) {
			const char *s = r < 0 ? t->head[c] :
						t->cell[r * t->ncols + c];
			int len = r < 0 ? (int)head_len(t, c) : (int)strlen(s);
			bool last = c == lastc;
			int pad = (int)w[c] - len;

			if (t->hidden[c])
				continue;

			if (t->right[c])
				fprintf(f, "%*s", pad, "");
			fprintf(f, "%.*s", len, s);
			if (!last && !t->right[c])
				fprintf(f, "%*s", pad, "");
			if (!last)
				fputs("  ", f);
		}
		fputc('\n', f);
	}
}

static const char *yesno(bool b)
{
	return b ? "yes" : "no";
}

/* "node-b (0)", or just the id when the host record is not valid. */
static const char *host_label(const struct status_snap *s, uint32_t id,
			      char *buf, size_t len)
{
	const char *name = status_hostname(s, id);

	if (name)
		snprintf(buf, len, "%s (%" PRIu32 ")", name, id);
	else
		snprintf(buf, len, "%" PRIu32, id);
	return buf;
}

static const char *backend_label(const struct status_snap *s, uint32_t id,
				 char *buf, size_t len)
{
	if (id < s->nr_backends && s->backends[id].s.rec == STATUS_REC_VALID)
		snprintf(buf, len, "%s (%" PRIu32 ")", s->backends[id].r.name,
			 id);
	else
		snprintf(buf, len, "%" PRIu32, id);
	return buf;
}

/* Age of the last heartbeat; ">=" when it never moved while we watched. */
static const char *age_label(const struct status_snap *s,
			     const struct status_slot *sl, char *buf,
			     size_t len)
{
	if (!s->window_ms || !sl->active)
		snprintf(buf, len, "-");
	else if (sl->alive)
		snprintf(buf, len, "%" PRIu64 " ms", sl->hb_age_ms);
	else
		snprintf(buf, len, ">= %" PRIu64 " ms", sl->hb_age_ms);
	return buf;
}

static const char *state_label(const struct status_slot *sl)
{
	return sl->active ? "active" : "free";
}

static bool hosts_print(FILE *f, const struct status_snap *s, bool all)
{
	struct tbl t;
	char age[32];

	tbl_init(&t, "ID> STATE HOSTNAME ROLE PID> ALIVE HEARTBEAT");
	tbl_hide_state(&t, all);
	for (uint32_t i = 0; i < s->nr_hosts; i++) {
		const struct status_host *h = &s->hosts[i];

		if (!all && !h->s.active)
			continue;
		age_label(s, &h->s, age, sizeof(age));
		if (h->s.rec != STATUS_REC_VALID)
			tbl_row(&t, "%u\t%s\t(%s)\t-\t-\t%s\t%s", i,
				state_label(&h->s), status_rec_name(h->s.rec),
				yesno(h->s.alive), age);
		else
			tbl_row(&t, "%u\t%s\t%s\t%s\t%u\t%s\t%s", i,
				state_label(&h->s), h->r.hostname,
				status_role_name(h->r.role), h->r.pid,
				yesno(h->s.alive), age);
	}
	tbl_print(f, "HOSTS", &t);
	return tbl_free(&t);
}

static bool backends_print(FILE *f, const struct status_snap *s, bool all)
{
	char host[96], size[32], writer[32];
	struct tbl t;

	tbl_init(&t,
		 "ID> STATE NAME HOST SIZE> RO HANDLERS> ALIVE WRITER PATH");
	tbl_hide_state(&t, all);
	for (uint32_t i = 0; i < s->nr_backends; i++) {
		const struct status_backend *b = &s->backends[i];

		if (!all && !b->s.active)
			continue;
		if (b->locked)
			snprintf(writer, sizeof(writer), "blkdev %" PRIu32,
				 b->lock_blkdev);
		else
			snprintf(writer, sizeof(writer), "-");
		if (b->s.rec != STATUS_REC_VALID) {
			tbl_row(&t, "%u\t%s\t(%s)\t-\t-\t-\t-\t%s\t%s\t-", i,
				state_label(&b->s), status_rec_name(b->s.rec),
				yesno(b->s.alive), writer);
			continue;
		}
		tbl_row(&t, "%u\t%s\t%s\t%s\t%s\t%s\t%u\t%s\t%s\t%s", i,
			state_label(&b->s), b->r.name,
			host_label(s, b->r.host_id, host, sizeof(host)),
			format_size(b->r.size, size, sizeof(size)),
			yesno(b->r.flags & CBDT_BACKEND_RO), b->r.handlers,
			yesno(b->s.alive), writer, b->r.path);
	}
	tbl_print(f, "BACKENDS", &t);
	return tbl_free(&t);
}

static bool caches_print(FILE *f, const struct status_snap *s)
{
	char be[96], size[32], used[32], dirty[32], hit[16], wb[16];
	struct tbl t;

	if (!s->nr_caches)
		return false;
	tbl_init(&t,
		 "BACKEND SEGMENTS> SIZE> USED> DIRTY> HIT> WB_MiB/s> STATE");
	for (uint32_t i = 0; i < s->nr_caches; i++) {
		const struct status_cache *c = &s->caches[i];
		double ratio = status_cache_hit_ratio(c);

		snprintf(hit, sizeof(hit), ratio < 0 ? "-" : "%.0f%%",
			 ratio * 100);
		if (s->io_ns && c->running)
			snprintf(wb, sizeof(wb), "%.1f", c->wb_mib_s);
		else
			snprintf(wb, sizeof(wb), "-");
		tbl_row(&t, "%s\t%u\t%s\t%s\t%s\t%s\t%s\t%s",
			backend_label(s, c->backend_id, be, sizeof(be)),
			c->nsegs,
			format_size(c->nsegs * (uint64_t)CBDT_CACHE_AREA_SIZE,
				    size, sizeof(size)),
			c->running ?
				format_size(c->h.used, used, sizeof(used)) :
				"-",
			c->running ?
				format_size(c->h.dirty, dirty, sizeof(dirty)) :
			status_cache_dirty_kept(c) ? "yes" :
						     "-",
			hit, wb, status_cache_state(c));
	}
	tbl_print(f, "CACHES", &t);
	fputc('\n', f);
	return tbl_free(&t);
}

static void channels_label(const struct status_blkdev *d, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned q = 0; q < d->r.queues && n + 12 < len; q++)
		n += (size_t)snprintf(buf + n, len - n, "%s%" PRIu32,
				      q ? "," : "", d->r.segs[q]);
	if (!d->r.queues)
		snprintf(buf, len, "-");
}

static bool blkdevs_print(FILE *f, const struct status_snap *s, bool all)
{
	char host[96], be[96], chans[CBDT_QUEUES_MAX * 12];
	struct tbl t;

	tbl_init(&t, "ID> STATE HOST BACKEND QUEUES> RO ALIVE CHANNELS");
	tbl_hide_state(&t, all);
	for (uint32_t i = 0; i < s->nr_blkdevs; i++) {
		const struct status_blkdev *d = &s->blkdevs[i];

		if (!all && !d->s.active)
			continue;
		if (d->s.rec != STATUS_REC_VALID) {
			tbl_row(&t, "%u\t%s\t(%s)\t-\t-\t-\t%s\t-", i,
				state_label(&d->s), status_rec_name(d->s.rec),
				yesno(d->s.alive));
			continue;
		}
		channels_label(d, chans, sizeof(chans));
		tbl_row(&t, "%u\t%s\t%s\t%s\t%u\t%s\t%s\t%s", i,
			state_label(&d->s),
			host_label(s, d->r.host_id, host, sizeof(host)),
			backend_label(s, d->r.backend_id, be, sizeof(be)),
			d->r.queues, yesno(d->r.flags & CBDT_BLKDEV_RO),
			yesno(d->s.alive), chans);
	}
	tbl_print(f, "BLKDEVS", &t);
	return tbl_free(&t);
}

/* What is wrong with an object, in one word. */
static const char *io_health(const struct status_slot *sl,
			     const struct status_io *io)
{
	if (io->lost)
		return "LOST";
	if (!sl->alive)
		return "dead";
	return io->errors_window ? "errors" : "ok";
}

/* One row of the I/O table; @qd 0: not a blkdev. */
static void io_row(struct tbl *t, const struct status_snap *s, const char *what,
		   const struct status_slot *sl, const struct status_io *io,
		   uint32_t qd, const char *where)
{
	char iops[32], rd[32], wr[32], qds[16];

	if (s->io_ns) {
		snprintf(iops, sizeof(iops), "%.0f", io->iops);
		snprintf(rd, sizeof(rd), "%.1f", io->read_mib_s);
		snprintf(wr, sizeof(wr), "%.1f", io->write_mib_s);
	} else {
		snprintf(iops, sizeof(iops), "-");
		snprintf(rd, sizeof(rd), "-");
		snprintf(wr, sizeof(wr), "-");
	}
	if (qd)
		snprintf(qds, sizeof(qds), "%u", qd);
	else
		snprintf(qds, sizeof(qds), "-");
	tbl_row(t, "%s\t%s\t%s\t%s\t%u\t%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s",
		what, iops, rd, wr, io->inflight, qds, io->errors,
		io->timed_out, io_health(sl, io), where);
}

/* Rates over the window, totals since the channels were set up. */
static bool io_print(FILE *f, const struct status_snap *s)
{
	char what[64], title[64];
	struct status_io io;
	struct tbl t;

	tbl_init(&t, "OBJECT IOPS> READ_MiB/s> WRITE_MiB/s> INFLIGHT> QD> "
		     "ERRORS> TIMED_OUT> HEALTH WHERE");
	for (uint32_t i = 0; i < s->nr_backends; i++) {
		const struct status_backend *b = &s->backends[i];

		if (!b->s.active)
			continue;
		status_io_backend(s, i, &io);
		snprintf(what, sizeof(what), "backend %u", i);
		io_row(&t, s, what, &b->s, &io, 0,
		       b->s.rec == STATUS_REC_VALID ? b->r.name : "-");
	}
	for (uint32_t i = 0; i < s->nr_blkdevs; i++) {
		const struct status_blkdev *d = &s->blkdevs[i];
		const char *mnt = "";

		if (!d->s.active)
			continue;
		status_io_blkdev(s, i, &io);
		if (d->s.rec == STATUS_REC_VALID &&
		    d->r.host_id < s->nr_hosts &&
		    s->hosts[d->r.host_id].s.rec == STATUS_REC_VALID)
			mnt = s->hosts[d->r.host_id].r.mountpoint;
		snprintf(what, sizeof(what), "blkdev %u", i);
		io_row(&t, s, what, &d->s, &io, io.qdepth, mnt[0] ? mnt : "-");
	}
	if (s->io_ns)
		snprintf(title, sizeof(title), "I/O (rates over %.1f s)",
			 (double)s->io_ns / 1e9);
	else
		snprintf(title, sizeof(title), "I/O (no rates: not sampled)");
	tbl_print(f, title, &t);
	return tbl_free(&t);
}

static bool segments_print(FILE *f, const struct status_snap *s, bool all)
{
	char be[96], title[64], hd[32];
	struct tbl t;

	tbl_init(&t, "ID> STATE TYPE BACKEND BLKDEV QUEUE> HANDLER CLIENT");
	tbl_hide_state(&t, all);
	for (uint32_t i = 0; i < s->nr_segments; i++) {
		const struct status_segment *g = &s->segments[i];
		bool chan = g->s.rec == STATUS_REC_VALID &&
			    g->r.type == CBDT_SEG_CHANNEL;

		if (!all && !g->s.active)
			continue;
		if (g->s.rec == STATUS_REC_VALID &&
		    g->r.type == CBDT_SEG_CACHE) {
			tbl_row(&t, "%u\t%s\tcache\t%s\t-\t%u\t-\t-", i,
				state_label(&g->s),
				backend_label(s, g->r.backend_id, be,
					      sizeof(be)),
				g->r.queue);
			continue;
		}
		if (!chan) {
			tbl_row(&t, "%u\t%s\t%s\t-\t-\t-\t-\t-", i,
				state_label(&g->s),
				g->s.rec == STATUS_REC_VALID ?
					status_seg_type_name(g->r.type) :
					status_rec_name(g->s.rec));
			continue;
		}
		/* as segments[].packs in the JSON */
		snprintf(hd, sizeof(hd), "%s%s", status_handler_name(g),
			 g->s.active && g->packs ? ", packs" : "");
		tbl_row(&t, "%u\t%s\t%s\t%s\t%u%s\t%u\t%s\t%s", i,
			state_label(&g->s), status_seg_type_name(g->r.type),
			backend_label(s, g->r.backend_id, be, sizeof(be)),
			g->r.blkdev_id,
			g->s.active && g->orphaned ? " (orphaned)" : "",
			g->r.queue, hd, status_client_name(g));
	}
	snprintf(title, sizeof(title),
		 "SEGMENTS (%" PRIu32 " used, %" PRIu32 " free)",
		 s->segments_used, s->nr_segments - s->segments_used);
	tbl_print(f, title, &t);
	return tbl_free(&t);
}

static void header_print(FILE *f, const struct status_snap *s)
{
	const struct cbdt_info *in = &s->info;
	char size[32], segsz[32], uuid[37], jan[96];

	status_uuid_format(in->uuid, uuid);
	fprintf(f, "TRANSPORT %s\n", s->path);
	fprintf(f, "  size %s, format version %u, flags %s%s%s, uuid %s\n",
		format_size(in->size, size, sizeof(size)), in->format_version,
		in->flags & CBDT_F_ENTRY_CRC ? "entry-crc" : "",
		(in->flags & CBDT_F_ALL) == CBDT_F_ALL ? "," : "",
		in->flags & CBDT_F_DATA_CRC  ? "data-crc" :
		in->flags & CBDT_F_ENTRY_CRC ? "" :
					       "none",
		uuid);
	fprintf(f,
		"  used slots: hosts %u/%u, backends %u/%u, blkdevs %u/%u, "
		"segments %u/%u of %s\n",
		s->hosts_used, s->nr_hosts, s->backends_used, s->nr_backends,
		s->blkdevs_used, s->nr_blkdevs, s->segments_used,
		s->nr_segments,
		format_size(in->seg_size, segsz, sizeof(segsz)));
	if (s->janitor_held)
		host_label(s, s->janitor_host, jan, sizeof(jan));
	if (s->window_ms)
		fprintf(f,
			"  liveness: heartbeats watched for %u ms; janitor %s%s\n",
			s->window_ms, s->janitor_held ? "running on " : "idle",
			s->janitor_held ? jan : "");
	else
		fprintf(f, "  liveness: not sampled\n");
}

int status_table_print(FILE *f, const struct status_snap *s, bool all)
{
	bool lost = false;

	header_print(f, s);
	fputc('\n', f);
	lost |= hosts_print(f, s, all);
	fputc('\n', f);
	lost |= backends_print(f, s, all);
	fputc('\n', f);
	lost |= blkdevs_print(f, s, all);
	fputc('\n', f);
	lost |= io_print(f, s);
	fputc('\n', f);
	lost |= caches_print(f, s);
	lost |= segments_print(f, s, all);
	if (lost)
		return -ENOMEM;
	if (fflush(f) || ferror(f))
		return -EIO;
	return 0;
}
