/* SPDX-License-Identifier: MIT */
/*
 * cbd-status: show a transport (hosts, backends, blkdevs, segments) as
 * tables or JSON, once or refreshed with --watch.  Read-only: the mapping
 * is PROT_READ.  Single-threaded; SIGINT/SIGTERM only set a flag.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cbdt.h"
#include "cli.h"
#include "log.h"
#include "status.h"
#include "config.h"
#include "util.h"

#define PROG "cbd-status"

struct opts {
	const char *transport;
	const char *config;
	bool json;
	bool all;
	bool check;
	double watch_s;	    /* 0: once */
	uint32_t window_ms; /* 0: derived */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG
		" [-t PATH | -c FILE] [--json] [--all] [--watch SEC] [--window MS]\n"
		"                  [--check]\n"
		"Show the hosts, backends, blkdevs and segments of a cbd transport.\n"
		"Read-only: the transport is mapped read-only and never written.\n"
		"\n"
		"  -t, --transport PATH  transport file or /dev/daxX.Y\n"
		"  -c, --config FILE     take [transport] path from FILE\n"
		"                        (default " CONFIG_DEFAULT_FILE ")\n"
		"  -j, --json            print one JSON object instead of tables\n"
		"  -a, --all             list free slots too\n"
		"  -w, --watch SEC       refresh every SEC seconds until interrupted\n"
		"                        (with --json: one compact object per line)\n"
		"      --window MS       watch the heartbeats for MS milliseconds\n"
		"  -C, --check           report what is wrong (a dead host, backend or\n"
		"                        blkdev, a lost channel, new errors in the\n"
		"                        window), one line each, and exit 1 if anything\n"
		"                        is; with --json or the tables, after them\n"
		"  -h, --help            this text\n"
		"  -V, --version         print the version\n"
		"\n"
		"Liveness is what " PROG
		" itself observes: an object is alive when its slot\n"
		"is active and its heartbeat counter moves while " PROG
		" watches it.  The\n"
		"window is 1.5 x the largest heartbeat interval recorded by the active\n"
		"hosts, at least %u ms and at most %u ms (%u ms when no host records one);\n"
		"every run takes that long.  I/O rates (IOPS, MiB/s) are over that window;\n"
		"with --watch the window is the period (at least the liveness window), so\n"
		"a frame comes exactly every period.\n"
		"\n"
		"Exit status: 0 ok; 1 the transport or the config cannot be read or is not\n"
		"a valid transport (one line on stderr says why), or --check found a\n"
		"problem; 2 bad usage.\n",
		STATUS_WINDOW_MIN_MS, STATUS_WINDOW_MAX_MS,
		STATUS_WINDOW_DEFAULT_MS);
}

static void opts_parse(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_WINDOW = 256
	};
	static const struct option lopts[] = {
		{"transport", required_argument, NULL, 't'},
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"all", no_argument, NULL, 'a'},
		{"watch", required_argument, NULL, 'w'},
		{"window", required_argument, NULL, OPT_WINDOW},
		{"check", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:c:jaw:ChV", lopts, NULL)) !=
	       -1) {
		switch (c) {
		case 't':
			o->transport = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'a':
			o->all = true;
			break;
		case 'C':
			o->check = true;
			break;
		case 'w':
			errno = 0;
			o->watch_s = strtod(optarg, &end);
			if (errno || *end || end == optarg ||
			    !isfinite(o->watch_s) || o->watch_s < 0.1 ||
			    o->watch_s > 86400)
				cli_usage_error(
					"--watch: seconds between 0.1 and 86400 expected");
			break;
		case OPT_WINDOW:
			if (parse_uint(optarg, 1, 60000, &v))
				cli_usage_error(
					"--window: milliseconds between 1 and 60000 expected");
			o->window_ms = (uint32_t)v;
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
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (o->transport && o->config)
		cli_usage_error("-t and -c exclude each other");
}

/* The transport path from -t or the config; exits 1 on a config error. */
static void transport_path(const struct opts *o, char *path, size_t len)
{
	char why[512];

	if (config_transport_locate(o->transport, o->config, path, len, NULL,
				    why, sizeof(why))) {
		log_err("%s", why);
		exit(1);
	}
}

/*
 * One look at the transport, printed to @f.  0, or -errno with the one-line
 * reason already logged (or, in watch mode, printed to @f).
 */
static int status_once(const char *path, const struct opts *o, FILE *f)
{
	struct status_opts so = {.window_ms = o->window_ms, .stop = &stop};
	struct status_snap *s = NULL;
	struct cbdt *t = NULL;
	json_t *j;
	int ret;

	ret = cbdt_open(path, CBDT_MAP_RDONLY, &t);
	if (ret) {
		if (o->watch_s && !o->json)
			fprintf(f, PROG ": %s: %s\n", path, cbdt_strerror(ret));
		else
			log_err("%s: %s", path, cbdt_strerror(ret));
		return ret;
	}
	/* --watch: the frame's sampling is the period itself (rates over
	 * it, one frame per period), but never shorter than liveness needs */
	if (o->watch_s && !o->window_ms)
		so.window_ms =
			(uint32_t)MAX((uint64_t)llround(o->watch_s * 1000),
				      status_default_window(t));
	ret = status_collect(t, &so, NULL, &s);
	if (ret) {
		if (ret != -EINTR)
			log_err("%s: %s", path, strerror(-ret));
		goto out_close;
	}
	if (o->check && !o->json && o->watch_s == 0 && !o->all) {
		/* --check alone: the problems, or one line saying none */
		if (status_check(s, f))
			ret = -EUCLEAN;
		else
			fprintf(f, "ok: %s\n", path);
		goto out_snap;
	}
	if (o->json) {
		j = status_json(s, o->all);
		ret = j ? 0 : -ENOMEM;
		if (j && json_dumpf(j, f,
				    o->watch_s ? JSON_COMPACT : JSON_INDENT(2)))
			ret = -EIO;
		if (j)
			fputc('\n', f);
		json_decref(j);
	} else {
		ret = status_table_print(f, s, o->all);
	}
	if (ret)
		log_err("%s: printing: %s", path, strerror(-ret));
	else if (o->check && status_check(s, o->json ? stderr : f))
		ret = -EUCLEAN;
out_snap:
	status_snap_free(s);
out_close:
	cbdt_close(t);
	return ret;
}

static void sleep_until(uint64_t deadline_ns)
{
	struct timespec ts;
	uint64_t now;

	while (!stop && (now = cbdt_now_ns()) < deadline_ns) {
		ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000ULL);
		ts.tv_nsec = (long)((deadline_ns - now) % 1000000000ULL);
		/* SIGINT interrupts it (no SA_RESTART): the loop ends at once */
		nanosleep(&ts, NULL);
	}
}

/*
 * --watch: the whole frame is built in memory and written at once after
 * "cursor home, clear screen", so it does not flicker.  The transport is
 * reopened every time, so a reformat or a recreated file is followed.
 */
static int watch(const char *path, const struct opts *o)
{
	struct sigaction sa = {.sa_handler = on_signal};
	uint64_t period = (uint64_t)llround(o->watch_s * 1e9);

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop) {
		uint64_t start = cbdt_now_ns();
		char *buf = NULL, when[64];
		size_t len = 0;
		time_t now = time(NULL);
		FILE *f = open_memstream(&buf, &len);

		if (!f) {
			log_err("%s", strerror(errno));
			return 1;
		}
		if (!o->json) {
			strftime(when, sizeof(when), "%F %T", localtime(&now));
			fprintf(f,
				"\033[H\033[2JEvery %gs: " PROG " %s    %s\n\n",
				o->watch_s, path, when);
		}
		status_once(path, o, f);
		fclose(f);
		if (!stop && len) {
			fwrite(buf, 1, len, stdout);
			fflush(stdout);
		}
		free(buf);
		sleep_until(start + period);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	char path[CBDT_PATH_LEN];
	int ret;

	log_init(PROG, 0);
	opts_parse(argc, argv, &o);
	transport_path(&o, path, sizeof(path));
	if (o.watch_s)
		ret = watch(path, &o);
	else
		ret = status_once(path, &o, stdout) ? 1 : 0;
	if (!ret && fflush(stdout)) {
		log_err("stdout: %s", strerror(errno));
		ret = 1;
	}
	return ret;
}
