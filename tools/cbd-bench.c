/* SPDX-License-Identifier: MIT */
/*
 * cbd-bench: ring micro-benchmark.  Two processes on one transport file: the
 * parent is the client, a fork()ed child the null handler that completes
 * every request without touching data.  Each process is single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "cbdt.h"
#include "cli.h"
#include "log.h"
#include "util.h"

#define PROG		  "cbd-bench"
#define BENCH_FILE_SIZE	  (32ULL << 20)
#define SMALL		  (4U << 10)
#define BIG		  (128U << 10)
#define HIST_NS		  10	 /* latency histogram resolution */
#define HIST_BUCKETS	  100000 /* up to 1 ms */
#define HOT_SKEW	  2048	 /* hot buffer offset within its page */
#define ATTACH_TIMEOUT_NS (10ULL * 1000000000ULL)

struct opts {
	const char *path;
	double seconds;
	unsigned qd, copy_qd, idle_s;
	uint32_t spin_ns;
	bool crc, json, force;
};

struct results {
	double p50_us, p99_us, mean_us;
	uint64_t qd1_ops;
	double qd_iops;
	double wr_gbs, rd_gbs, memcpy_wr_gbs, memcpy_rd_gbs;
	double ratio_wr, ratio_rd; /* medians of per-round ratios */
	double idle_pct;
};

struct bench {
	struct opts o;
	struct cbdt *t;
	struct cbdt_channel *ch;
	struct cbdt_queue *q;
	struct reaped *reaped;
	struct cbdt_wait_cfg wcfg;
	uint32_t seg;
	pid_t child;
	char path[256];
	bool created; /* we created the file: remove it */
	uint32_t *hist;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTIONS]\n"
		"Ring micro-benchmark: a client process and a null handler process move\n"
		"requests through one channel of a file transport, and the client's\n"
		"copies into and out of the data area are compared with memcpy.\n"
		"\n"
		"  -t, --transport PATH  where to make the transport (default: a temp\n"
		"                        file on /dev/shm, removed at start-up once both\n"
		"                        sides mapped it).  A new PATH is created and\n"
		"                        removed; an existing blank file or dax device is\n"
		"                        formatted; a valid transport only with --force.\n"
		"  -f, --force           format over a valid transport\n"
		"  -s, --seconds N       duration of each test (default 2)\n"
		"  -q, --qd N            queue depth of the small-request test (default 32)\n"
		"      --copy-qd N       queue depth of the 128 KiB copy tests (default 8)\n"
		"      --spin-ns N       spin before sleeping, both sides (default 20000)\n"
		"      --idle SEC        measure the idle handler's CPU for SEC s (default 3,\n"
		"                        0 skips)\n"
		"      --crc             format with entry and data crc32c\n"
		"      --json            print one JSON object instead of the table\n"
		"  -h, --help            this text\n"
		"  -V, --version         print the version\n");
}

static int opts_parse(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_COPY_QD = 256,
		OPT_SPIN,
		OPT_IDLE,
		OPT_CRC,
		OPT_JSON
	};
	static const struct option lo[] = {
		{"transport", required_argument, NULL, 't'},
		{"force", no_argument, NULL, 'f'},
		{"seconds", required_argument, NULL, 's'},
		{"qd", required_argument, NULL, 'q'},
		{"copy-qd", required_argument, NULL, OPT_COPY_QD},
		{"spin-ns", required_argument, NULL, OPT_SPIN},
		{"idle", required_argument, NULL, OPT_IDLE},
		{"crc", no_argument, NULL, OPT_CRC},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	uint64_t v;
	int c;

	*o = (struct opts){.seconds = 2,
			   .qd = 32,
			   .copy_qd = 8,
			   .idle_s = 3,
			   .spin_ns = 20000};
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:fs:q:hV", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			o->path = optarg;
			break;
		case 'f':
			o->force = true;
			break;
		case 's':
			if (parse_uint(optarg, 1, 3600, &v))
				goto bad;
			o->seconds = (double)v;
			break;
		case 'q':
			if (parse_uint(optarg, 1, 256, &v))
				goto bad;
			o->qd = (unsigned)v;
			break;
		case OPT_COPY_QD:
			if (parse_uint(optarg, 1, 64, &v))
				goto bad;
			o->copy_qd = (unsigned)v;
			break;
		case OPT_SPIN:
			if (parse_uint(optarg, 1, 100000000, &v))
				goto bad;
			o->spin_ns = (uint32_t)v;
			break;
		case OPT_IDLE:
			if (parse_uint(optarg, 0, 3600, &v))
				goto bad;
			o->idle_s = (unsigned)v;
			break;
		case OPT_CRC:
			o->crc = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			cli_version();
		default:
			cli_bad_option(c, argv);
		}
	}
	if (optind != argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	return 0;
bad:
	for (const struct option *l = lo; l->name; l++)
		if (l->val == c)
			cli_usage_error("--%s: bad value '%s'", l->name,
					optarg);
	cli_usage_error("bad value '%s'", optarg);
}

/* ---- the transport ---- */

/* Make, map and format the transport; claim a segment and init it. */
static int bench_transport(struct bench *b)
{
	struct cbdt_channel_params p = {.se_count = 256};
	uint16_t flags = b->o.crc ? CBDT_F_ENTRY_CRC | CBDT_F_DATA_CRC : 0;
	uint64_t owner;
	int ret, fd, id;

	if (b->o.path) {
		snprintf(b->path, sizeof(b->path), "%s", b->o.path);
		ret = cbdt_file_create(b->path, BENCH_FILE_SIZE);
		if (ret && ret != -EEXIST) {
			log_err("create: %s: %s", b->path, cbdt_strerror(ret));
			return ret;
		}
		b->created = !ret;
	} else {
		snprintf(b->path, sizeof(b->path), "/dev/shm/cbd-bench-XXXXXX");
		fd = mkstemp(b->path);
		if (fd < 0 || ftruncate(fd, (off_t)BENCH_FILE_SIZE) < 0) {
			log_err("create: %s: %m", b->path);
			if (fd >= 0)
				close(fd);
			return -errno;
		}
		close(fd);
		b->created = true;
	}
	ret = cbdt_map(b->path, 0, &b->t);
	if (ret) {
		log_err("map: %s: %s", b->path, cbdt_strerror(ret));
		return ret;
	}
	if (!b->created && !cbdt_is_blank(b->t) && !b->o.force) {
		log_err("format: %s: not blank; use --force to overwrite it",
			b->path);
		return -EEXIST;
	}
	ret = cbdt_format(b->t, flags, CBDT_FORMAT_FORCE, NULL);
	if (ret) {
		log_err("format: %s: %s", b->path, cbdt_strerror(ret));
		return ret;
	}
	id = cbdt_slot_claim(b->t, CBDT_OBJ_SEGMENT, -1, 0, &owner);
	if (id < 0) {
		log_err("claim segment: %s: %s", b->path, cbdt_strerror(id));
		return id;
	}
	b->seg = (uint32_t)id;
	ret = cbdt_channel_init(b->t, b->seg, &p);
	if (!ret)
		ret = cbdt_channel_open(b->t, b->seg, CBDT_CHANNEL_CLIENT, 0,
					&b->ch);
	if (ret)
		log_err("channel: segment %u: %s", b->seg, cbdt_strerror(ret));
	return ret;
}

/* ---- the null handler (child) ---- */

/* Completes every (validated) request without touching its data. */
static int null_exec(void *arg, const struct cbdt_request *rq, void *data)
{
	return 0;
}

static const struct cbdt_handler_ops null_ops = {.exec = null_exec};

static int handler_main(const char *path, uint32_t seg,
			const struct cbdt_wait_cfg *wcfg)
{
	struct cbdt_serve_cfg cfg = {.dev_size = UINT64_MAX, .wait = *wcfg};
	struct cbdt_channel *h;
	struct cbdt *t;
	int ret;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ret = cbdt_open(path, 0, &t);
	if (!ret)
		ret = cbdt_channel_open(t, seg, CBDT_CHANNEL_HANDLER, 1, &h);
	if (ret) {
		log_err("handler: channel %u: %s", seg, cbdt_strerror(ret));
		return 1;
	}
	ret = cbdt_serve(h, &cfg, &null_ops, NULL);
	cbdt_channel_handler_detach(h);
	cbdt_channel_close(h);
	cbdt_close(t);
	return ret == CBDT_SERVE_CLOSING ? 0 : 1;
}

static int bench_fork_handler(struct bench *b)
{
	uint64_t deadline = cbdt_now_ns() + ATTACH_TIMEOUT_NS;
	int status;

	fflush(NULL);
	b->child = fork();
	if (b->child < 0) {
		log_err("fork: %m");
		return -errno;
	}
	if (b->child == 0)
		_exit(handler_main(b->path, b->seg, &b->wcfg));
	while (cbdt_channel_handler_state(b->ch) != CBDT_HANDLER_ATTACHED) {
		if (waitpid(b->child, &status, WNOHANG) == b->child) {
			b->child = 0;
			log_err("handler: exited before attaching");
			return -ECHILD;
		}
		if (cbdt_now_ns() > deadline) {
			log_err("handler: did not attach within 10 s");
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
	/* Both sides have it mapped: the file can go now, so that nothing
	 * is left behind however we exit. */
	if (b->created && !b->o.path)
		unlink(b->path);
	return 0;
}

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
		.offset = id * len,
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
		ret = submit(b, CBDT_OP_READ, n, SMALL, NULL);
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
		ret = submit(b, CBDT_OP_READ, i, SMALL, NULL);
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
			ret = submit(b, CBDT_OP_READ, b->reaped->ids[i], SMALL,
				     NULL);
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

static int bench_run(struct bench *b, struct results *r)
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

static void print_table(const struct bench *b, const struct results *r)
{
	const struct cbdt_channel_geom *g = cbdt_channel_geom(b->ch);

	printf("cbd-bench %s: %s, %u-entry rings, %u KiB data area, crc %s, "
	       "spin %u ns, %.0f s per test\n",
	       CBD_VERSION, b->o.path ? b->o.path : "temp file on /dev/shm",
	       g->se_count, g->data_size >> 10, b->o.crc ? "entry+data" : "off",
	       b->o.spin_ns, b->o.seconds);
	printf("%-36s %14s   %s\n", "test", "result", "target");
	printf("%-36s %11.2f us   < 5 us %s\n", "QD1 4 KiB round trip p50",
	       r->p50_us, r->p50_us < 5 ? "(met)" : "(MISSED)");
	printf("%-36s %11.2f us\n", "QD1 4 KiB round trip p99", r->p99_us);
	printf("%-36s %11.2f us   (%" PRIu64 " round trips)\n",
	       "QD1 4 KiB round trip mean", r->mean_us, r->qd1_ops);
	printf("QD%-34u %10.3f M/s\n", MIN(b->o.qd, g->se_count),
	       r->qd_iops / 1e6);
	printf("128 KiB WRITE, copy in (QD%-2u)        %10.2f GB/s\n",
	       b->o.copy_qd, r->wr_gbs);
	printf("%-36s %10.2f GB/s\n", "  memcpy into 128 KiB buffers",
	       r->memcpy_wr_gbs);
	printf("%-36s %12.0f %%   >= 50%% %s\n", "  WRITE copy / memcpy",
	       r->ratio_wr * 100, r->ratio_wr >= 0.5 ? "(met)" : "(MISSED)");
	printf("128 KiB READ, copy out (QD%-2u)        %10.2f GB/s\n",
	       b->o.copy_qd, r->rd_gbs);
	printf("%-36s %10.2f GB/s\n", "  memcpy out of 128 KiB buffers",
	       r->memcpy_rd_gbs);
	printf("%-36s %12.0f %%   >= 50%% %s\n", "  READ copy / memcpy",
	       r->ratio_rd * 100, r->ratio_rd >= 0.5 ? "(met)" : "(MISSED)");
	if (r->idle_pct >= 0)
		printf("%-36s %12.3f %%   of one core, over %u s\n",
		       "idle null handler CPU", r->idle_pct, b->o.idle_s);
}

static void print_json(const struct bench *b, const struct results *r)
{
	printf("{\"version\":\"%s\",\"crc\":%s,\"spin_ns\":%u,\"seconds\":%.0f,"
	       "\"qd1_p50_us\":%.3f,\"qd1_p99_us\":%.3f,\"qd1_mean_us\":%.3f,"
	       "\"qd\":%u,\"qd_iops\":%.0f,\"copy_qd\":%u,"
	       "\"write_copy_gbs\":%.3f,\"read_copy_gbs\":%.3f,"
	       "\"memcpy_write_gbs\":%.3f,\"memcpy_read_gbs\":%.3f,"
	       "\"write_copy_ratio\":%.3f,\"read_copy_ratio\":%.3f,"
	       "\"idle_handler_cpu_pct\":%.4f}\n",
	       CBD_VERSION, b->o.crc ? "true" : "false", b->o.spin_ns,
	       b->o.seconds, r->p50_us, r->p99_us, r->mean_us,
	       MIN(b->o.qd, cbdt_channel_geom(b->ch)->se_count), r->qd_iops,
	       b->o.copy_qd, r->wr_gbs, r->rd_gbs, r->memcpy_wr_gbs,
	       r->memcpy_rd_gbs, r->ratio_wr, r->ratio_rd, r->idle_pct);
}

int main(int argc, char **argv)
{
	struct bench b = {0};
	struct results r = {0};
	int ret, status;

	log_init(PROG, 0);
	if (opts_parse(argc, argv, &b.o))
		return 2;
	b.wcfg = (struct cbdt_wait_cfg){.spin_ns = b.o.spin_ns};
	ret = bench_transport(&b);
	if (!ret)
		ret = bench_fork_handler(&b);
	if (!ret)
		ret = bench_run(&b, &r);
	if (b.ch)
		cbdt_channel_client_close(b.ch);
	if (ret == -ETIMEDOUT && b.child > 0)
		kill(b.child, SIGKILL);
	if (b.child > 0) {
		if (waitpid(b.child, &status, 0) == b.child &&
		    (!WIFEXITED(status) || WEXITSTATUS(status)) && !ret) {
			log_err("handler: exited with status %#x", status);
			ret = -EIO;
		}
	}
	if (!ret) {
		if (b.o.json)
			print_json(&b, &r);
		else
			print_table(&b, &r);
	}
	cbdt_channel_close(b.ch);
	cbdt_close(b.t);
	if (b.created)
		unlink(b.path);
	return ret ? 1 : 0;
}
