/* SPDX-License-Identifier: MIT */
/*
 * cbd-testclient: a client host for the backend's e2e tests, on libcbdt
 * alone (no FUSE).  Registers a host, maps one backend, runs the commands
 * of its command line in order.  The main thread does all I/O; a second
 * thread bumps the host's and the blkdev's heartbeats.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "testclient.h"
#include "util.h"

#define EXIT_MISMATCH	  1
#define EXIT_USAGE	  64
#define DETACH_TIMEOUT_MS 2000U

volatile sig_atomic_t tc_stop;

struct hb_thread {
	pthread_t thr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	uint32_t interval_ms;
	struct tc *tc;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cbd-testclient -t TRANSPORT [-b BACKEND_ID] [options] CMD [ARGS]...\n"
		"\n"
		"A client host on libcbdt for testing cbd-backend.  Commands run in order;\n"
		"the first failure ends the run.\n"
		"\n"
		"Options:\n"
		"  -t, --transport PATH    transport file or dax device\n"
		"  -b, --backend ID        backend to map (all I/O commands need it)\n"
		"  -H, --hostname NAME     host name to register (default testclient-PID)\n"
		"  -q, --queues N          channels to open (default 1)\n"
		"      --ro                map read-only\n"
		"      --attach-timeout MS wait for the handlers (default 5000)\n"
		"      --io-timeout SEC    fail when nothing completes for SEC\n"
		"                          (default: wait for ever, as for a backend restart)\n"
		"      --hb-interval MS    heartbeat interval (default 100)\n"
		"      --hb-timeout MS     timeout recorded for this host (default 1500)\n"
		"      --ready FILE        create FILE once the backend is mapped\n"
		"  -v, --verbose           more messages\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n"
		"\n"
		"Commands (OFF and LEN take K/M/G suffixes):\n"
		"  write OFF LEN SEED      write the pattern of SEED (write-fua: with FUA)\n"
		"  read OFF LEN SEED       read and verify the pattern of SEED\n"
		"  readzero OFF LEN        read and verify zeroes\n"
		"  flush | discard OFF LEN | zeroes OFF LEN\n"
		"  stress --seconds N --qd N --log FILE [--max-len B] [--range B]\n"
		"                          random non-overlapping writes at queue depth N;\n"
		"                          every acknowledged write is appended to FILE\n"
		"  verify-log FILE         check the device against FILE, newest write wins\n"
		"  hold SECONDS            keep the mapping (and heartbeats) for SECONDS\n"
		"  size                    print the backend's size\n"
		"  pattern OFF LEN SEED    print the bytes \"write OFF LEN SEED\" writes\n"
		"  status                  list every active slot of the transport\n"
		"\n"
		"Exit status: 0; 1 data mismatch; 64 usage; else the errno of the failure\n"
		"(16 EBUSY, 22 EINVAL, 30 EROFS, 110 ETIMEDOUT, ...).\n");
}

static void on_signal(int sig)
{
	tc_stop = 1;
}

static void *hb_main(void *arg)
{
	struct hb_thread *hb = arg;
	struct timespec ts;

	pthread_mutex_lock(&hb->lock);
	while (!hb->stop) {
		cbdt_slot_heartbeat(hb->tc->t, CBDT_OBJ_HOST, hb->tc->host_id);
		pthread_mutex_lock(&hb->tc->b_lock);
		if (hb->tc->b)
			cbdt_blkdev_heartbeat(hb->tc->t, hb->tc->b);
		pthread_mutex_unlock(&hb->tc->b_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)hb->interval_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&hb->cond, &hb->lock, &ts);
	}
	pthread_mutex_unlock(&hb->lock);
	return NULL;
}

static void hb_stop(struct hb_thread *hb)
{
	pthread_mutex_lock(&hb->lock);
	hb->stop = true;
	pthread_cond_signal(&hb->cond);
	pthread_mutex_unlock(&hb->lock);
	pthread_join(hb->thr, NULL);
}

static int host_register(struct tc *tc, const char *hostname,
			 uint32_t hb_interval, uint32_t hb_timeout)
{
	struct cbdt_host_rec rec;
	int ret;

	memset(&rec, 0, sizeof(rec));
	strlcpy_field(rec.hostname, hostname, sizeof(rec.hostname));
	if (cbdt_boot_id(rec.boot_id))
		memset(rec.boot_id, 0, sizeof(rec.boot_id));
	rec.pid = (uint32_t)getpid();
	rec.role = CBDT_ROLE_CLIENT;
	rec.hb_interval_ms = hb_interval;
	rec.hb_timeout_ms = hb_timeout;
	ret = cbdt_host_register(tc->t, &rec, false, &tc->host_id,
				 &tc->host_owner);
	if (ret)
		log_err("register: host %s: %s", hostname, strerror(-ret));
	else
		tc->registered = true;
	return ret;
}

static int cmd_hold(uint64_t seconds)
{
	struct timespec pause = {.tv_nsec = 20 * 1000000L};
	uint64_t end = cbdt_now_ms() + seconds * 1000;

	while (!tc_stop && cbdt_now_ms() < end)
		nanosleep(&pause, NULL);
	return 0;
}

/* The bytes "write OFF LEN SEED" puts on the device, to stdout: tests
 * compare them with the backing image itself. */
static int cmd_pattern(uint64_t off, uint64_t len, uint64_t seed)
{
	uint8_t buf[65536];

	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < sizeof(buf) ? (size_t)(len - done) :
						      sizeof(buf);

		tc_pattern_fill(buf, off + done, n, seed);
		if (fwrite(buf, 1, n, stdout) != n)
			return -EIO;
		done += n;
	}
	return fflush(stdout) ? -EIO : 0;
}

/* Number arguments of a command: size-like (K/M/G) or plain. */
static int arg_num(int argc, char **argv, int i, bool size, uint64_t *v)
{
	if (i >= argc) {
		log_err("%s: missing argument", argv[0]);
		return -1;
	}
	if (size ? parse_size(argv[i], v) :
		   parse_uint(argv[i], 0, UINT64_MAX, v)) {
		log_err("%s: bad number: %s", argv[0], argv[i]);
		return -1;
	}
	return 0;
}

/*
 * Run the command at argv[0]: *used gets the words it took, the result is
 * 0 or -errno (-EILSEQ: data mismatch, -EDOM: usage).
 */
static int run_cmd(struct tc *tc, int argc, char **argv, int *used)
{
	const char *c = argv[0];
	uint64_t a[3] = {0, 0, 0};
	int nargs = 0;
	bool sized = true;

	if (!strcmp(c, "write") || !strcmp(c, "write-fua") ||
	    !strcmp(c, "read") || !strcmp(c, "pattern"))
		nargs = 3;
	else if (!strcmp(c, "readzero") || !strcmp(c, "discard") ||
		 !strcmp(c, "zeroes"))
		nargs = 2;
	else if (!strcmp(c, "hold"))
		nargs = 1, sized = false;
	for (int i = 0; i < nargs; i++)
		if (arg_num(argc, argv, i + 1, sized && i < 2, &a[i]))
			return -EDOM;
	*used = 1 + nargs;

	if (!strcmp(c, "status"))
		return tc_cmd_status(tc);
	if (!strcmp(c, "badcompletion")) { /* hidden: test-cbdfs-badring */
		*used = 2;
		if (arg_num(argc, argv, 1, false, &a[0]) || a[0] > UINT32_MAX)
			return -EDOM;
		return tc_cmd_badcompletion(tc, (uint32_t)a[0]);
	}
	if (!strcmp(c, "hold"))
		return cmd_hold(a[0]);
	if (!strcmp(c, "pattern"))
		return cmd_pattern(a[0], a[1], a[2]);
	if (!tc->b) {
		log_err("%s: needs a mapped backend (-b ID)", c);
		return -EDOM;
	}
	if (!strcmp(c, "write"))
		return tc_cmd_write(tc, a[0], a[1], a[2], 0);
	if (!strcmp(c, "write-fua"))
		return tc_cmd_write(tc, a[0], a[1], a[2], CBDT_SE_FUA);
	if (!strcmp(c, "read"))
		return tc_cmd_read(tc, a[0], a[1], a[2], false);
	if (!strcmp(c, "readzero"))
		return tc_cmd_read(tc, a[0], a[1], 0, true);
	if (!strcmp(c, "discard"))
		return tc_sync(tc, CBDT_OP_DISCARD, 0, a[0], a[1], NULL, NULL);
	if (!strcmp(c, "zeroes"))
		return tc_sync(tc, CBDT_OP_WRITE_ZEROES, 0, a[0], a[1], NULL,
			       NULL);
	if (!strcmp(c, "flush"))
		return tc_sync(tc, CBDT_OP_FLUSH, 0, 0, 0, NULL, NULL);
	if (!strcmp(c, "size")) {
		printf("%" PRIu64 "\n", tc->b->size);
		fflush(stdout);
		return 0;
	}
	if (!strcmp(c, "stress"))
		return tc_cmd_stress(tc, argc, argv, used);
	if (!strcmp(c, "verify-log")) {
		*used = 2;
		if (argc < 2) {
			log_err("verify-log: missing FILE");
			return -EDOM;
		}
		return tc_cmd_verify_log(tc, argv[1]);
	}
	if (!strcmp(c, "badentry")) { /* hidden: for test-backend-badentry */
		*used = 2;
		if (argc < 2)
			return -EDOM;
		return tc_cmd_badentry(tc, argv[1]);
	}
	log_err("unknown command: %s (see --help)", c);
	return -EDOM;
}

static int exit_code(int ret)
{
	if (!ret)
		return 0;
	if (ret == -EILSEQ)
		return EXIT_MISMATCH;
	if (ret == -EDOM)
		return EXIT_USAGE;
	return -ret < 256 ? -ret : 1;
}

struct opts {
	const char *path, *hostname, *ready;
	int64_t backend;
	unsigned queues;
	bool ro;
	uint32_t attach_ms, hb_interval, hb_timeout;
};

static int parse_opts(int argc, char **argv, struct opts *o, struct tc *tc)
{
	enum {
		O_RO = 256,
		O_ATTACH,
		O_IOTMO,
		O_HBI,
		O_HBT,
		O_READY
	};
	static const struct option lopts[] = {
		{"transport", required_argument, NULL, 't'},
		{"backend", required_argument, NULL, 'b'},
		{"hostname", required_argument, NULL, 'H'},
		{"queues", required_argument, NULL, 'q'},
		{"ro", no_argument, NULL, O_RO},
		{"attach-timeout", required_argument, NULL, O_ATTACH},
		{"io-timeout", required_argument, NULL, O_IOTMO},
		{"hb-interval", required_argument, NULL, O_HBI},
		{"hb-timeout", required_argument, NULL, O_HBT},
		{"ready", required_argument, NULL, O_READY},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c, verbose = 0;
	uint64_t v;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:t:b:H:q:vhV", lopts, NULL)) !=
	       -1) {
		int bad = 0;

		switch (c) {
		case 't':
			o->path = optarg;
			break;
		case 'b':
			bad = parse_uint(optarg, 0, CBDT_BACKENDS_NR - 1, &v);
			o->backend = (int64_t)v;
			break;
		case 'H':
			o->hostname = optarg;
			break;
		case 'q':
			bad = parse_uint(optarg, 1, CBDT_QUEUES_MAX, &v);
			o->queues = (unsigned)v;
			break;
		case O_RO:
			o->ro = true;
			break;
		case O_ATTACH:
			bad = parse_uint(optarg, 1, 600000, &v);
			o->attach_ms = (uint32_t)v;
			break;
		case O_IOTMO:
			bad = parse_uint(optarg, 0, 86400, &v);
			tc->io_timeout_ms = (uint32_t)v * 1000;
			break;
		case O_HBI:
			bad = parse_uint(optarg, 1, 60000, &v);
			o->hb_interval = (uint32_t)v;
			break;
		case O_HBT:
			bad = parse_uint(optarg, 1, 600000, &v);
			o->hb_timeout = (uint32_t)v;
			break;
		case O_READY:
			o->ready = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			cli_version();
		default:
			cli_bad_option(c, argv);
		}
		if (bad) {
			for (const struct option *l = lopts; l->name; l++)
				if (l->val == c)
					cli_usage_error("--%s: bad value '%s'",
							l->name, optarg);
		}
	}
	log_init("cbd-testclient", verbose);
	if (!o->path)
		cli_usage_error("-t TRANSPORT is required");
	if (optind >= argc)
		cli_usage_error("no command given");
	return 0;
}

static int map_backend(struct tc *tc, const struct opts *o)
{
	struct cbdt_blkdev *b;
	int ret = cbdt_blkdev_map(tc->t, tc->host_id, (uint32_t)o->backend,
				  o->queues, o->ro, o->attach_ms, &b);

	if (ret) {
		log_err("map: backend %" PRId64 ": %s", o->backend,
			strerror(-ret));
		return ret;
	}
	/* Not held across the map: the host heartbeat must go on. */
	pthread_mutex_lock(&tc->b_lock);
	tc->b = b;
	pthread_mutex_unlock(&tc->b_lock);
	ret = tc_queues_open(tc);
	if (ret) {
		log_err("map: backend %" PRId64 ": %s", o->backend,
			strerror(-ret));
		return ret;
	}
	log_dbg("map: backend %" PRId64 ": blkdev %u, %u queue(s), %" PRIu64
		" bytes%s",
		o->backend, tc->b->id, tc->b->queues, tc->b->size,
		o->ro ? ", read-only" : "");
	if (o->ready) {
		int fd = open(o->ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			log_warn("ready file %s: %m", o->ready);
		else
			close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.backend = -1,
			 .queues = 1,
			 .attach_ms = 5000,
			 .hb_interval = 100,
			 .hb_timeout = 1500};
	static struct tc tc;
	struct hb_thread hb = {.lock = PTHREAD_MUTEX_INITIALIZER,
			       .cond = PTHREAD_COND_INITIALIZER};
	struct sigaction sa = {.sa_handler = on_signal};
	char defname[64];
	bool hb_started = false;
	int ret, i;

	log_init("cbd-testclient", 0);
	cli_set_usage_exit(EXIT_USAGE); /* 2 is ENOENT here */
	pthread_mutex_init(&tc.b_lock, NULL);
	cbdt_wait_init(&tc.w, NULL);
	ret = parse_opts(argc, argv, &o, &tc);
	if (ret)
		return exit_code(ret);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	tc.path = o.path;
	ret = cbdt_open(o.path, 0, &tc.t);
	if (ret) {
		log_err("%s: %s", o.path, cbdt_strerror(ret));
		return exit_code(ret);
	}
	if (o.backend >= 0) {
		snprintf(defname, sizeof(defname), "testclient-%d", getpid());
		ret = host_register(&tc, o.hostname ? o.hostname : defname,
				    o.hb_interval, o.hb_timeout);
		if (ret)
			goto out_close;
		hb.tc = &tc;
		hb.interval_ms = o.hb_interval;
		ret = -pthread_create(&hb.thr, NULL, hb_main, &hb);
		if (ret)
			goto out_unregister;
		hb_started = true;
		ret = map_backend(&tc, &o);
		if (ret)
			goto out_stop_hb;
	}

	for (i = optind; i < argc && !ret;) {
		int used = 1;

		ret = run_cmd(&tc, argc - i, argv + i, &used);
		if (ret && ret != -EDOM && ret != -EILSEQ)
			log_err("%s: %s", argv[i], strerror(-ret));
		i += used;
	}

	if (tc.b) {
		/* Whatever failed, nothing may still be in flight when the
		 * channels go away. */
		if (tc.inflight && !tc.fatal)
			(void)tc_drain(&tc);
		tc_queues_close(&tc);
		struct cbdt_blkdev *b = tc.b;

		pthread_mutex_lock(&tc.b_lock);
		tc.b = NULL;
		pthread_mutex_unlock(&tc.b_lock);
		/* The blkdev stays alive through the detach wait, which
		 * bumps its heartbeat itself. */
		cbdt_blkdev_unmap(tc.t, b, DETACH_TIMEOUT_MS);
	}
out_stop_hb:
	if (hb_started)
		hb_stop(&hb);
out_unregister:
	if (tc.registered)
		cbdt_host_unregister(tc.t, tc.host_id, tc.host_owner);
out_close:
	cbdt_close(tc.t);
	return exit_code(ret);
}
