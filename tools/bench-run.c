/* SPDX-License-Identifier: MIT */
/*
 * cbd-bench's measurements, on the client side of the channel while the
 * null handler serves it: QD1 round-trip latency, throughput at queue
 * depth, the copies of 128 KiB requests into and out of the data area
 * against a memcpy baseline, and the idle handler's CPU use.  The
 * options, the transport, the handler process and the report are in
 * cbd-bench.c.  Single-threaded.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cbdt.h"
#include "log.h"
#include "util.h"

#define SMALL	     (4U << 10)
#define BIG	     (128U << 10)
#define HIST_NS	     10	    /* latency histogram resolution */
#define HIST_BUCKETS 100000 /* up to 1 ms */
#define HOT_SKEW     2048   /* hot buffer offset within its page */

/* ---- client side tests ---- */

/* What the queue's callback saw since the last look. */
struct reaped {
	uint64_t ids[256];
	unsigned n;
	int err;
	uint8_t *rdst; /* READ copies: where the data goes */
};

static void bench_done(void *arg, const struct cbdt_queue_done *d)
{
	struct bench *b = arg;
	struct reaped *r = b->reaped;

	if (!d->answer)
		return;
	if (d->result && !r->err) {
		log_err("request %" PRIu64 ": %s",
			(uint64_t)(uintptr_t)d->cookie, strerror(-d->result));
		r->err = d->result;
	}
	if (!d->result && d->data && r->rdst)
		memcpy(r->rdst, d->data, d->len);
	if (r->n < sizeof(r->ids) / sizeof(r->ids[0]))
		r->ids[r->n++] = (uint64_t)(uintptr_t)d->cookie;
}

/* Reap 1 to @max completions, waiting adaptively: 0 or -errno. */
static int reap_some(struct bench *b, struct cbdt_wait *w, unsigned max)
{
	int ret;

	b->reaped->n = 0;
	while ((ret = cbdt_queue_reap(b->q, max, NULL)) == 0) {
		ret = cbdt_queue_idle(b->q, w);
		if (ret)
			return ret;
	}
	cbdt_wait_reset(w);
	if (ret < 0)
		return ret;
	return b->reaped->err;
}

static int submit(struct bench *b, uint16_t op, uint64_t id, uint32_t len,
		  const void *wbuf)
{
	struct cbdt_queue_req rq = {
		.op = op,
		.offset = id * len % (b->dev_size / len * len),
		.len = len,
		.wbuf = wbuf,
		.cookie = (void *)(uintptr_t)id,
	};
	int ret = cbdt_queue_submit(b->q, &rq);

	if (ret)
		log_err("submit: %s", strerror(-ret));
	return ret;
}

static double hist_pct(const uint32_t *hist, uint64_t n, double pct)
{
	uint64_t want = (uint64_t)((double)n * pct / 100.0), seen = 0;

	for (uint32_t i = 0; i <= HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen > want)
			return (double)(i * HIST_NS + HIST_NS / 2) / 1000.0;
	}
	return (double)HIST_BUCKETS * HIST_NS / 1000.0;
}

static int bench_qd1(struct bench *b, struct results *r)
{
	uint64_t end, t0, lat, sum = 0, n = 0;
	struct cbdt_wait w;
	int ret;

	cbdt_wait_init(&w, &b->wcfg);
	end = cbdt_now_ns() + (uint64_t)(b->o.seconds * 1e9);
	while ((t0 = cbdt_now_ns()) < end) {
		ret = submit(b, b->small_op, n, SMALL, b->small_buf);
		if (!ret)
			ret = reap_some(b, &w, 1);
		if (ret)
			return ret;
		lat = cbdt_now_ns() - t0;
		sum += lat;
		b->hist[MIN(lat / HIST_NS, (uint64_t)HIST_BUCKETS)]++;
		n++;
	}
	r->qd1_ops = n;
	r->mean_us = n ? (double)sum / (double)n / 1000.0 : 0;
	r->p50_us = hist_pct(b->hist, n, 50);
	r->p99_us = hist_pct(b->hist, n, 99);
	return 0;
}

static int bench_qd(struct bench *b, struct results *r)
{
	uint64_t start, end, n = 0;
	struct cbdt_wait w;
	unsigned qd = MIN(b->o.qd, cbdt_channel_geom(b->ch)->se_count);
	int ret;

	cbdt_wait_init(&w, &b->wcfg);
	start = cbdt_now_ns();
	end = start + (uint64_t)(b->o.seconds * 1e9);
	for (unsigned i = 0; i < qd; i++) {
		ret = submit(b, b->small_op, i, SMALL, b->small_buf);
		if (ret)
			return ret;
	}
	while (cbdt_queue_busy(b->q)) {
		ret = reap_some(b, &w, 256);
		if (ret)
			return ret;
		n += b->reaped->n;
		for (unsigned i = 0; i < b->reaped->n && cbdt_now_ns() < end;
		     i++) {
			ret = submit(b, b->small_op, b->reaped->ids[i], SMALL,
				     b->small_buf);
			if (ret)
				return ret;
		}
	}
	r->qd_iops = (double)n / ((double)(cbdt_now_ns() - start) / 1e9);
	return 0;
}

/*
 * The copy a client does for real I/O: into the data area before a WRITE
 * (the queue copies @src in), out of it after a READ (the callback copies
 * into @dst); extents allocated and freed per request, so the copies sweep
 * what the ring uses.  Runs for @ns; bytes per ns = GB/s.
 */
static int bench_copy(struct bench *b, uint16_t op, const uint8_t *src,
		      uint8_t *dst, uint64_t ns, double *gbs)
{
	uint64_t start, end, bytes = 0, next = 0;
	struct cbdt_wait w;
	int ret;

	cbdt_wait_init(&w, &b->wcfg);
	b->reaped->rdst = op == CBDT_OP_READ ? dst : NULL;
	start = cbdt_now_ns();
	end = start + ns;
	for (;;) {
		while (cbdt_now_ns() < end &&
		       cbdt_queue_busy(b->q) < b->o.copy_qd) {
			ret = submit(b, op, next++ % b->o.copy_qd, BIG,
				     op == CBDT_OP_WRITE ? src : NULL);
			if (ret)
				return ret;
		}
		if (!cbdt_queue_busy(b->q))
			break;
		/* one at a time: its extent is refilled while the others
		 * are still in the handler's hands */
		ret = reap_some(b, &w, 1);
		if (ret)
			return ret;
		bytes += (uint64_t)b->reaped->n * BIG;
	}
	b->reaped->rdst = NULL;
	*gbs = (double)bytes / (double)(cbdt_now_ns() - start);
	return 0;
}

/*
 * Plain memcpy of 128 KiB buffers in the same direction and over the same
 * footprint as the copies above: the data-area allocator is first fit, so
 * at queue depth N the ring reuses the lowest N x 128 KiB; the baseline
 * sweeps a private area of that size (@area_len) 128 KiB at a time,
 * against one hot 128 KiB buffer.
 */
static double bench_memcpy(bool to_area, uint8_t *hot, uint8_t *area,
			   size_t area_len, uint64_t ns)
{
	uint64_t start = cbdt_now_ns(), end = start + ns, bytes = 0;
	size_t pos = 0;

	while (cbdt_now_ns() < end) {
		for (int i = 0; i < 8; i++) {
			if (to_area)
				memcpy(area + pos, hot, BIG);
			else
				memcpy(hot, area + pos, BIG);
			pos = pos + 2 * BIG <= area_len ? pos + BIG : 0;
			bytes += BIG;
		}
		/* keep the copies observable */
		__asm__ __volatile__("" : : "r"(area), "r"(hot) : "memory");
	}
	return (double)bytes / (double)(cbdt_now_ns() - start);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Memory bandwidth of a shared (virtual) machine drifts by integer
 * factors within seconds, so each copy is measured in short rounds
 * interleaved with its memcpy baseline, and medians are reported.
 */
static int bench_copies(struct bench *b, struct results *r, uint8_t *hot,
			uint8_t *area, size_t area_len)
{
	enum {
		ROUNDS = 10
	};
	double wr[ROUNDS], rd[ROUNDS], mw[ROUNDS], mr[ROUNDS];
	double rw[ROUNDS], rr[ROUNDS];
	uint64_t slice = (uint64_t)(b->o.seconds * 1e9) / ROUNDS / 2;
	int ret;

	/* What the ring touches at this depth (see bench_memcpy). */
	area_len = MIN(area_len, (size_t)b->o.copy_qd * BIG);
	for (unsigned i = 0; i < ROUNDS; i++) {
		mw[i] = bench_memcpy(true, hot, area, area_len, slice / 2);
		ret = bench_copy(b, CBDT_OP_WRITE, hot, hot, slice, &wr[i]);
		if (ret)
			return ret;
		mr[i] = bench_memcpy(false, hot, area, area_len, slice / 2);
		ret = bench_copy(b, CBDT_OP_READ, hot, hot, slice, &rd[i]);
		if (ret)
			return ret;
		rw[i] = wr[i] / mw[i];
		rr[i] = rd[i] / mr[i];
	}
	r->wr_gbs = median(wr, ROUNDS);
	r->rd_gbs = median(rd, ROUNDS);
	r->memcpy_wr_gbs = median(mw, ROUNDS);
	r->memcpy_rd_gbs = median(mr, ROUNDS);
	r->ratio_wr = median(rw, ROUNDS);
	r->ratio_rd = median(rr, ROUNDS);
	return 0;
}

/* CPU time (ns) a process has used: schedstat, else stat's ticks. */
static int proc_cpu_ns(pid_t pid, uint64_t *ns)
{
	unsigned long long v, ut, st;
	char path[64], buf[1024], *p;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	f = fopen(path, "r");
	if (f) {
		ok = fscanf(f, "%llu", &v) == 1;
		fclose(f);
		if (ok) {
			*ns = v;
			return 0;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return -EIO;
	/* fields 14 and 15 (utime, stime); p is at the end of field 2 */
	if (sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
		   &st) != 2)
		return -EIO;
	*ns = (ut + st) * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
	return 0;
}

static int bench_idle(struct bench *b, struct results *r)
{
	uint64_t c0, c1, t0, t1;

	/* first let the handler fall through its spin and back-off */
	usleep(200000);
	if (proc_cpu_ns(b->child, &c0))
		return -EIO;
	t0 = cbdt_now_ns();
	sleep(b->o.idle_s);
	if (proc_cpu_ns(b->child, &c1))
		return -EIO;
	t1 = cbdt_now_ns();
	r->idle_pct = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
	return 0;
}

int bench_run(struct bench *b, struct results *r)
{
	size_t area_len = cbdt_channel_geom(b->ch)->data_size;
	uint8_t *hot_buf, *hot, *area;
	int ret;

	/*
	 * The data area is page aligned, and so is the baseline's area.  A
	 * 128 KiB copy whose source and destination sit a few bytes apart
	 * modulo 4 KiB (as malloc's page + 16 would for READ) runs several
	 * times slower (4K aliasing): keep the hot buffer well clear of that,
	 * identically for both, so that the ratio compares like with like.
	 */
	hot_buf = aligned_alloc(4096, BIG + 4096);
	hot = hot_buf ? hot_buf + HOT_SKEW : NULL;
	area = aligned_alloc(4096, ALIGN_UP(area_len, 4096));
	b->hist = calloc(HIST_BUCKETS + 1, sizeof(*b->hist));
	if (!hot || !area || !b->hist) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (uint32_t i = 0; i < BIG; i++)
		hot[i] = (uint8_t)(i * 31 + 7);
	b->small_buf = b->small_op == CBDT_OP_WRITE ? hot : NULL;
	/* fault both areas in with the same content */
	for (size_t i = 0; i < area_len; i++)
		area[i] = (uint8_t)(i * 13 + 1);
	memcpy(cbdt_channel_data(b->ch, 0), area, area_len);
	b->reaped = calloc(1, sizeof(*b->reaped));
	ret = b->reaped ? cbdt_queue_new(b->ch, bench_done, b, &b->q) : -ENOMEM;
	if (ret)
		goto out_free;

	ret = bench_qd1(b, r);
	if (!ret)
		ret = bench_qd(b, r);
	if (!ret)
		ret = bench_copies(b, r, hot, area, area_len);
	if (!ret && b->o.idle_s)
		ret = bench_idle(b, r);
	else
		r->idle_pct = -1;
out_free:
	cbdt_queue_free(b->q);
	b->q = NULL;
	free(b->reaped);
	free(hot_buf);
	free(area);
	free(b->hist);
	return ret;
}
