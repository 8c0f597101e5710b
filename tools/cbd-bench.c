/* SPDX-License-Identifier: MIT */
/*
 * cbd-bench: ring micro-benchmark.  Two processes on one transport file: the
 * parent is the client, a fork()ed child the null handler that completes
 * every request without touching data.  Each process is single-threaded.
 * This file: options, the transport, the handler process and the report;
 * the measurements are in bench-run.c.
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

#include "backend/cache.h"
#include "backend/store.h"
#include "barrier.h"
#include "bench.h"
#include "cbdt.h"
#include "cli.h"
#include "log.h"
#include "util.h"

#define PROG		      "cbd-bench"
#define BENCH_FILE_SIZE	      (32ULL << 20)
#define BENCH_CACHE_SEGS      8U /* --cache: its size, and a transport for it */
#define BENCH_CACHE_FILE_SIZE ((BENCH_CACHE_SEGS + 4ULL) * CBDT_SEG_SIZE)
#define BENCH_CACHE_IDENT     0xcbdbe7c4ULL
#define ATTACH_TIMEOUT_NS     (10ULL * 1000000000ULL)

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
		"      --cache IMAGE     the handler is a backend of IMAGE with a cache\n"
		"                        (pcache) in the transport; the QD1 and QD tests\n"
		"                        then WRITE 4 KiB through it\n"
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
		OPT_JSON,
		OPT_CACHE
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
		{"cache", required_argument, NULL, OPT_CACHE},
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
		case OPT_CACHE:
			o->cache = optarg;
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

static uint64_t bench_file_size(const struct bench *b)
{
	return b->o.cache ? BENCH_CACHE_FILE_SIZE : BENCH_FILE_SIZE;
}

/* Make, map and format the transport; claim a segment and init it. */
static int bench_transport(struct bench *b)
{
	struct cbdt_channel_params p = {.se_count = 256};
	uint16_t flags = b->o.crc ? CBDT_F_ENTRY_CRC | CBDT_F_DATA_CRC : 0;
	uint64_t owner;
	int ret, fd, id;

	if (b->o.path) {
		snprintf(b->path, sizeof(b->path), "%s", b->o.path);
		ret = cbdt_file_create(b->path, bench_file_size(b));
		if (ret && ret != -EEXIST) {
			log_err("create: %s: %s", b->path, cbdt_strerror(ret));
			return ret;
		}
		b->created = !ret;
	} else {
		snprintf(b->path, sizeof(b->path), "/dev/shm/cbd-bench-XXXXXX");
		fd = mkstemp(b->path);
		if (fd < 0 || ftruncate(fd, (off_t)bench_file_size(b)) < 0) {
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

/* ---- the handler (child): null, or a cached backend ---- */

/* Completes every (validated) request without touching its data. */
static int null_exec(void *arg, const struct cbdt_request *rq, void *data)
{
	return 0;
}

static const struct cbdt_handler_ops null_ops = {.exec = null_exec};

struct cached {
	struct store store;
	struct cache *c;
	struct cache_head *h;
};

/* What cbd-backend's handler does with a cache: the cache's requests. */
static int cached_exec(void *arg, const struct cbdt_request *rq, void *data)
{
	struct cached *x = arg;

	return cache_request(x->c, x->h, rq, data);
}

static const struct cbdt_handler_ops cached_ops = {.exec = cached_exec};

static int cached_open(struct cbdt *t, const char *image, struct cached *x)
{
	struct cache_owner o = {.t = t,
				.ident = BENCH_CACHE_IDENT,
				.store = &x->store,
				.name = "bench"};
	struct cache_conf conf = {
		.size = BENCH_CACHE_SEGS * (uint64_t)CBDT_SEG_SIZE,
		.gc_percent = CACHE_GC_PERCENT_DEFAULT,
		.handlers = 1,
	};
	int ret = store_open(&x->store, image, STORE_WRITEBACK);

	if (ret) {
		log_err("handler: %s: %s", image, strerror(-ret));
		return ret;
	}
	ret = cache_open(&o, &conf, &x->c);
	if (!ret && !(x->h = cache_head_new(x->c)))
		ret = -ENOMEM;
	if (ret) {
		log_err("handler: cache: %s", strerror(-ret));
		cache_close(x->c, 0);
		store_close(&x->store);
	}
	return ret;
}

static int handler_main(const char *path, uint32_t seg,
			const struct cbdt_wait_cfg *wcfg, const char *image)
{
	struct cbdt_serve_cfg cfg = {.dev_size = UINT64_MAX, .wait = *wcfg};
	struct cached x = {0};
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
	if (image) {
		if (cached_open(t, image, &x))
			return 1;
		cfg.dev_size = x.store.size;
	}
	ret = cbdt_serve(h, &cfg, image ? &cached_ops : &null_ops, &x);
	cbdt_channel_handler_detach(h);
	cbdt_channel_close(h);
	if (image) {
		cache_head_free(x.c, x.h);
		cache_close(x.c, 60000);
		store_close(&x.store);
	}
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
		_exit(handler_main(b->path, b->seg, &b->wcfg, b->o.cache));
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

/* ---- the report ---- */

static void print_table(const struct bench *b, const struct results *r)
{
	const struct cbdt_channel_geom *g = cbdt_channel_geom(b->ch);

	printf("cbd-bench %s: %s, %u-entry rings, %u KiB data area, crc %s, "
	       "spin %u ns, %.0f s per test\n",
	       CBD_VERSION, b->o.path ? b->o.path : "temp file on /dev/shm",
	       g->se_count, g->data_size >> 10, b->o.crc ? "entry+data" : "off",
	       b->o.spin_ns, b->o.seconds);
	printf("%-36s %14s   %s\n", "test", "result", "target");
	if (b->o.cache)
		printf("handler: a backend of %s with a %u MiB cache; QD tests WRITE 4 KiB\n",
		       b->o.cache, BENCH_CACHE_SEGS * (CBDT_SEG_SIZE >> 20));
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

/* --cache IMAGE: its size, as the cached backend will serve it. */
static int image_size(const char *image, uint64_t *size)
{
	struct store s;
	int ret = store_open(&s, image, STORE_RO);

	if (ret) {
		log_err("--cache: %s: %s", image, strerror(-ret));
		return ret;
	}
	*size = s.size;
	store_close(&s);
	return 0;
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
	b.dev_size = UINT64_MAX;
	b.small_op = CBDT_OP_READ;
	if (b.o.cache) {
		ret = image_size(b.o.cache, &b.dev_size);
		if (ret)
			return 1;
		b.small_op = CBDT_OP_WRITE;
	}
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
