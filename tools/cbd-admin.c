/* SPDX-License-Identifier: MIT */
/*
 * cbd-admin: format a transport and clear dead hosts, backends, blkdevs and
 * segments.  Liveness is observed here before anything is written; the
 * clearing itself is libcbdt's (cbdt_*_clear, shared with the janitor).
 * Single-threaded.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cbdt.h"
#include "log.h"
#include "status.h"
#include "toolcfg.h"
#include "util.h"

#define PROG "cbd-admin"

/* How long a clear waits for live handlers to detach from channels. */
#define CLEAR_RETRY_MS		10000U
#define CLEAR_RETRY_STEP_MS	100U

struct opts {
	const char *transport;
	const char *config;
	uint32_t window_ms;
	uint64_t size;
	bool force;
	uint16_t flags;		/* CBDT_F_* for format */
	bool format_opts;	/* any of the format-only options given */
	const char *cmd;
	const char *arg;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: " PROG " [-t PATH | -c FILE] [--window MS] COMMAND [ARG]\n"
"Format a cbd transport and clear what dead processes left in it.\n"
"\n"
"Commands:\n"
"  format [--size N] [--force] [--entry-crc] [--data-crc]\n"
"        format the transport; a missing file is created with --size (or\n"
"        [transport] size of the config).  A valid transport (or one that\n"
"        is neither blank nor ours) is only overwritten with --force, and\n"
"        never while a host using it is alive.\n"
"  clear-host ID      a dead host, with its backends and blkdevs\n"
"  clear-backend ID   a dead backend that no live blkdev maps\n"
"  clear-blkdev ID    a dead blkdev, its channels and its writer lock\n"
"  clear-segment ID   a channel segment whose blkdev is gone or dead\n"
"        Anything alive (its heartbeat moves) or still used is refused with\n"
"        the reason.\n"
"\n"
"Options:\n"
"  -t, --transport PATH  transport file or /dev/daxX.Y\n"
"  -c, --config FILE     take [transport] path and size from FILE\n"
"                        (default " TOOLCFG_DEFAULT ")\n"
"      --window MS       watch heartbeats for MS ms before deciding what is\n"
"                        dead (default: 1.5 x the largest heartbeat interval\n"
"                        of the active hosts, %u..%u ms, %u ms if none)\n"
"  -s, --size N          size of a file to create (K, M, G, T suffixes)\n"
"  -f, --force           format over a valid transport\n"
"      --entry-crc       format with a crc32c on every ring entry\n"
"      --data-crc        format with a crc32c on all data moved\n"
"  -h, --help            this text\n"
"  -V, --version         print the version\n"
"\n"
"Exit status: 0 done (or nothing to do); 1 refused or failed (one line on\n"
"stderr says why); 2 bad usage.\n",
		STATUS_WINDOW_MIN_MS, STATUS_WINDOW_MAX_MS,
		STATUS_WINDOW_DEFAULT_MS);
}

static void __attribute__((noreturn)) usage_error(const char *fmt, ...)
	PRINTF_FMT(1, 2);

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help'.\n", stderr);
	exit(2);
}

static void opts_parse(int argc, char **argv, struct opts *o)
{
	enum { OPT_WINDOW = 256, OPT_ENTRY_CRC, OPT_DATA_CRC };
	static const struct option lopts[] = {
		{ "transport", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "size", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "entry-crc", no_argument, NULL, OPT_ENTRY_CRC },
		{ "data-crc", no_argument, NULL, OPT_DATA_CRC },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	while ((c = getopt_long(argc, argv, "t:c:s:fhV", lopts, NULL)) != -1) {
		switch (c) {
		case 't':
			o->transport = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case OPT_WINDOW:
			if (parse_uint(optarg, 1, 60000, &v))
				usage_error("--window: milliseconds between 1 and 60000 expected");
			o->window_ms = (uint32_t)v;
			break;
		case 's':
			if (parse_size(optarg, &o->size) || !o->size)
				usage_error("--size: bad size '%s'", optarg);
			o->format_opts = true;
			break;
		case 'f':
			o->force = true;
			o->format_opts = true;
			break;
		case OPT_ENTRY_CRC:
			o->flags |= CBDT_F_ENTRY_CRC;
			o->format_opts = true;
			break;
		case OPT_DATA_CRC:
			o->flags |= CBDT_F_DATA_CRC;
			o->format_opts = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf(PROG " %s\n", CBD_VERSION);
			exit(0);
		default:
			if (optopt && optopt < 256)
				usage_error("bad option or missing argument: -%c",
					    optopt);
			usage_error("bad option or missing argument: %s",
				    argv[optind - 1]);
		}
	}
	if (o->transport && o->config)
		usage_error("-t and -c exclude each other");
	if (optind >= argc)
		usage_error("no command given");
	o->cmd = argv[optind++];
	if (optind < argc)
		o->arg = argv[optind++];
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!strcmp(o->cmd, "format")) {
		if (o->arg)
			usage_error("format takes no argument");
	} else if (!strncmp(o->cmd, "clear-", 6)) {
		if (o->format_opts)
			usage_error("--size, --force, --entry-crc and --data-crc are for format");
		if (!o->arg)
			usage_error("%s needs an id", o->cmd);
	} else {
		usage_error("unknown command '%s'", o->cmd);
	}
}

/* Transport path (and the configured size) from -t or the config. */
static char *transport_path(struct opts *o)
{
	const char *file = o->config ? o->config : TOOLCFG_DEFAULT;
	struct toolcfg cfg;
	char why[256];
	char *path;

	if (o->transport) {
		path = strdup(o->transport);
	} else {
		if (toolcfg_read(file, &cfg, why, sizeof(why))) {
			err("%s: %s", file, why);
			exit(1);
		}
		path = cfg.path;
		if (!o->size)
			o->size = cfg.size;
	}
	if (!path) {
		err("%s", strerror(ENOMEM));
		exit(1);
	}
	return path;
}

/* "host 1 (node-a, client, pid 42)", "backend 0 (disk0)", ... */
static const char *describe(const struct status_snap *s, enum cbdt_obj type,
			    uint32_t id, char *buf, size_t len)
{
	const struct status_host *h;
	const struct status_backend *b;
	const struct status_blkdev *d;
	const struct status_segment *g;
	int n = snprintf(buf, len, "%s %" PRIu32, cbdt_obj_name(type), id);

	if (n < 0 || (size_t)n >= len)
		return buf;
	switch (type) {
	case CBDT_OBJ_HOST:
		h = &s->hosts[id];
		if (h->s.rec == STATUS_REC_VALID)
			snprintf(buf + n, len - n, " (%s, %s, pid %" PRIu32 ")",
				 h->r.hostname, status_role_name(h->r.role),
				 h->r.pid);
		break;
	case CBDT_OBJ_BACKEND:
		b = &s->backends[id];
		if (b->s.rec == STATUS_REC_VALID)
			snprintf(buf + n, len - n, " (%s, %s)", b->r.name,
				 b->r.path);
		break;
	case CBDT_OBJ_BLKDEV:
		d = &s->blkdevs[id];
		if (d->s.rec == STATUS_REC_VALID)
			snprintf(buf + n, len - n,
				 " (backend %u, host %u)", d->r.backend_id,
				 d->r.host_id);
		break;
	case CBDT_OBJ_SEGMENT:
		g = &s->segments[id];
		if (g->s.rec == STATUS_REC_VALID &&
		    g->r.type == CBDT_SEG_CHANNEL)
			snprintf(buf + n, len - n,
				 " (channel %u of blkdev %u)", g->r.queue,
				 g->r.blkdev_id);
		break;
	default:
		break;
	}
	return buf;
}

static const struct status_slot *snap_slot(const struct status_snap *s,
					   enum cbdt_obj type, uint32_t id)
{
	switch (type) {
	case CBDT_OBJ_HOST:
		return &s->hosts[id].s;
	case CBDT_OBJ_BACKEND:
		return &s->backends[id].s;
	case CBDT_OBJ_BLKDEV:
		return &s->blkdevs[id].s;
	default:
		return &s->segments[id].s;
	}
}

/* ---- format ---------------------------------------------------------- */

/* First live host, backend or blkdev found in @s, described in @buf. */
static bool anything_alive(const struct status_snap *s, char *buf, size_t len)
{
	static const enum cbdt_obj types[] = { CBDT_OBJ_HOST, CBDT_OBJ_BACKEND,
					       CBDT_OBJ_BLKDEV };
	const uint32_t nr[] = { s->nr_hosts, s->nr_backends, s->nr_blkdevs };

	for (unsigned i = 0; i < ARRAY_SIZE(types); i++)
		for (uint32_t id = 0; id < nr[i]; id++)
			if (snap_slot(s, types[i], id)->alive) {
				describe(s, types[i], id, buf, len);
				return true;
			}
	return false;
}

static int format_check_live(struct cbdt *t, const char *path,
			     const struct opts *o)
{
	struct status_opts so = { .window_ms = o->window_ms };
	struct status_snap *s;
	char what[512];
	int ret;

	ret = status_collect(t, &so, &s);
	if (ret) {
		err("%s: %s", path, strerror(-ret));
		return ret;
	}
	if (anything_alive(s, what, sizeof(what))) {
		err("%s: %s is alive; stop it before formatting", path, what);
		ret = -EBUSY;
	}
	status_snap_free(s);
	return ret;
}

static int cmd_format(const char *path, const struct opts *o)
{
	char size[32], segsz[32];
	const struct cbdt_info *in;
	bool created = false;
	struct cbdt *t;
	struct stat st;
	int ret;

	if (stat(path, &st) < 0) {
		if (errno != ENOENT) {
			err("%s: %s", path, strerror(errno));
			return 1;
		}
		if (!o->size) {
			err("%s: does not exist; give --size to create it", path);
			return 1;
		}
		if (o->size < cbdt_min_size()) {
			err("%s: --size %s is below the minimum of %s", path,
			    format_size(o->size, size, sizeof(size)),
			    format_size(cbdt_min_size(), segsz, sizeof(segsz)));
			return 1;
		}
		ret = cbdt_file_create(path, o->size);
		if (ret) {
			err("%s: creating: %s", path, strerror(-ret));
			return 1;
		}
		created = true;
	} else if (o->size && S_ISREG(st.st_mode) &&
		   (uint64_t)st.st_size != o->size) {
		info("%s: exists; keeping its size, not %s", path,
		     format_size(o->size, size, sizeof(size)));
	}

	ret = cbdt_map(path, 0, &t);
	if (ret) {
		err("%s: %s", path, cbdt_strerror(ret));
		goto err_unlink;
	}
	ret = cbdt_validate(t);
	if (ret == 0) {
		if (!o->force) {
			err("%s: already formatted; use --force to format it again",
			    path);
			ret = -EEXIST;
			goto err_close;
		}
		ret = format_check_live(t, path, o);
		if (ret)
			goto err_close;
	} else if (ret != -ENODATA && !cbdt_is_blank(t) && !o->force) {
		/* Not blank: something is there that we would destroy. */
		err("%s: %s; not blank either: use --force to overwrite it",
		    path, cbdt_strerror(ret));
		goto err_close;
	}

	ret = cbdt_format(t, o->flags, o->force ? CBDT_FORMAT_FORCE : 0);
	if (!ret)
		ret = cbdt_validate(t);
	if (ret) {
		err("%s: format: %s", path, cbdt_strerror(ret));
		goto err_close;
	}
	in = cbdt_get_info(t);
	printf("formatted %s: %s, %u segments of %s, entry crc %s, data crc %s\n",
	       path, format_size(in->size, size, sizeof(size)),
	       in->segments.count, format_size(in->seg_size, segsz, sizeof(segsz)),
	       in->flags & CBDT_F_ENTRY_CRC ? "on" : "off",
	       in->flags & CBDT_F_DATA_CRC ? "on" : "off");
	cbdt_close(t);
	return 0;

err_close:
	cbdt_close(t);
err_unlink:
	if (created)
		unlink(path);
	return 1;
}

/* ---- clear-* --------------------------------------------------------- */

/* A live blkdev mapping backend @be (the instance recorded now), or -1. */
static int live_mapper(const struct status_snap *s, uint32_t be)
{
	const struct status_backend *b = &s->backends[be];

	for (uint32_t i = 0; i < s->nr_blkdevs; i++) {
		const struct status_blkdev *d = &s->blkdevs[i];

		if (!d->s.alive || d->s.rec != STATUS_REC_VALID ||
		    d->r.backend_id != be)
			continue;
		/* a mapping of an earlier backend in this slot does not count,
		 * as in cbdt_backend_clear() */
		if (b->s.rec == STATUS_REC_VALID && b->r.ident &&
		    d->r.backend_ident && d->r.backend_ident != b->r.ident)
			continue;
		return (int)i;
	}
	return -1;
}

/*
 * Why @id of @type must not be cleared although it is dead: something
 * alive still uses it.  False if nothing does.
 */
static bool clear_blocker(const struct status_snap *s, enum cbdt_obj type,
			  uint32_t id, char *buf, size_t len)
{
	char what[256], user[256], dep[256];
	int m;

	describe(s, type, id, what, sizeof(what));
	switch (type) {
	case CBDT_OBJ_HOST:
		for (uint32_t i = 0; i < s->nr_backends; i++) {
			if (!s->backends[i].s.active ||
			    s->backends[i].s.owner_host != id)
				continue;
			describe(s, CBDT_OBJ_BACKEND, i, dep, sizeof(dep));
			if (s->backends[i].s.alive) {
				snprintf(buf, len, "%s owns live %s", what, dep);
				return true;
			}
			m = live_mapper(s, i);
			if (m >= 0) {
				snprintf(buf, len,
					 "%s serves %s, mapped by live %s",
					 what, dep,
					 describe(s, CBDT_OBJ_BLKDEV, (uint32_t)m,
						  user, sizeof(user)));
				return true;
			}
		}
		for (uint32_t i = 0; i < s->nr_blkdevs; i++)
			if (s->blkdevs[i].s.alive &&
			    s->blkdevs[i].s.owner_host == id) {
				snprintf(buf, len, "%s owns live %s", what,
					 describe(s, CBDT_OBJ_BLKDEV, i, user,
						  sizeof(user)));
				return true;
			}
		return false;
	case CBDT_OBJ_BACKEND:
		m = live_mapper(s, id);
		if (m >= 0) {
			snprintf(buf, len, "%s is mapped by live %s", what,
				 describe(s, CBDT_OBJ_BLKDEV, (uint32_t)m, user,
					  sizeof(user)));
			return true;
		}
		return false;
	case CBDT_OBJ_SEGMENT: {
		const struct status_segment *g = &s->segments[id];

		if (g->s.rec == STATUS_REC_VALID &&
		    g->r.type == CBDT_SEG_CHANNEL && !g->orphaned &&
		    g->r.blkdev_id < s->nr_blkdevs &&
		    s->blkdevs[g->r.blkdev_id].s.alive) {
			snprintf(buf, len, "%s belongs to live %s", what,
				 describe(s, CBDT_OBJ_BLKDEV, g->r.blkdev_id,
					  user, sizeof(user)));
			return true;
		}
		return false;
	}
	default:
		return false;
	}
}

static int clear_call(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		      struct cbdt_observer *obs)
{
	switch (type) {
	case CBDT_OBJ_HOST:
		return cbdt_host_clear(t, id, obs);
	case CBDT_OBJ_BACKEND:
		return cbdt_backend_clear(t, id, obs);
	case CBDT_OBJ_BLKDEV:
		return cbdt_blkdev_clear(t, id, obs);
	default:
		return cbdt_segment_clear(t, id, obs);
	}
}

/* Print what went from ACTIVE in @before to FREE in @after. */
static void clear_report(const struct status_snap *before,
			 const struct status_snap *after, bool done)
{
	static const enum cbdt_obj types[] = { CBDT_OBJ_HOST, CBDT_OBJ_BACKEND,
					       CBDT_OBJ_BLKDEV,
					       CBDT_OBJ_SEGMENT };
	const uint32_t nr[] = { before->nr_hosts, before->nr_backends,
				before->nr_blkdevs, before->nr_segments };
	char what[512];
	unsigned n = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(types); i++)
		for (uint32_t id = 0; id < nr[i]; id++)
			if (snap_slot(before, types[i], id)->active &&
			    !snap_slot(after, types[i], id)->active) {
				printf("cleared %s\n", describe(before, types[i],
								id, what,
								sizeof(what)));
				n++;
			}
	if (!n && done)
		printf("nothing was cleared\n");
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int cmd_clear(const char *path, const struct opts *o,
		     enum cbdt_obj type)
{
	struct status_opts so = { .window_ms = o->window_ms };
	struct status_opts quick = { .no_liveness = true };
	struct status_snap *before = NULL, *after = NULL;
	struct cbdt_observer *obs = NULL;
	struct cbdt *t;
	const struct status_slot *sl;
	char why[768], what[512];
	uint64_t id, deadline;
	bool waited = false;
	int ret, rc = 1;

	ret = cbdt_open(path, 0, &t);
	if (ret) {
		err("%s: %s", path, cbdt_strerror(ret));
		return 1;
	}
	if (cbdt_slot_count(t, type) == 0 ||
	    parse_uint(o->arg, 0, cbdt_slot_count(t, type) - 1, &id)) {
		err("%s: %s: no %s %s in this transport (ids 0..%u)", path,
		    o->cmd, cbdt_obj_name(type), o->arg,
		    cbdt_slot_count(t, type) - 1);
		goto out_close;
	}
	if (!so.window_ms)
		so.window_ms = status_default_window(t);
	/*
	 * The observer handed to the library watches over the same window as
	 * our snapshot: sampled before and after it, so a counter that did
	 * not move for the whole window is dead to both.
	 */
	ret = cbdt_observer_new(t, so.window_ms, &obs);
	if (ret) {
		err("%s: %s", path, strerror(-ret));
		goto out_close;
	}
	cbdt_observer_sample(obs);
	ret = status_collect(t, &so, &before);
	if (ret) {
		err("%s: %s", path, strerror(-ret));
		goto out_free_obs;
	}
	cbdt_observer_sample(obs);

	sl = snap_slot(before, type, (uint32_t)id);
	describe(before, type, (uint32_t)id, what, sizeof(what));
	if (!sl->active) {
		printf("%s is free: nothing to clear\n", what);
		rc = 0;
		goto out_free_snap;
	}
	if (sl->alive) {
		err("%s: %s: %s is alive (its heartbeat moved within %u ms)",
		    path, o->cmd, what, before->window_ms);
		goto out_free_snap;
	}
	if (clear_blocker(before, type, (uint32_t)id, why, sizeof(why))) {
		err("%s: %s: %s", path, o->cmd, why);
		goto out_free_snap;
	}

	deadline = cbdt_now_ms() + CLEAR_RETRY_MS;
	while ((ret = clear_call(t, type, (uint32_t)id, obs)) == -EAGAIN &&
	       cbdt_now_ms() < deadline) {
		if (!waited)
			info("%s: waiting for live handlers to detach", what);
		waited = true;
		sleep_ms(CLEAR_RETRY_STEP_MS);
	}
	/* Report what went, also when only part of it could. */
	if (status_collect(t, &quick, &after) == 0) {
		clear_report(before, after, ret == 0);
		status_snap_free(after);
	}
	if (ret == -EBUSY)
		err("%s: %s: %s or something it depends on is alive or in use",
		    path, o->cmd, what);
	else if (ret == -EAGAIN)
		err("%s: %s: %s: live handlers did not detach within %u s",
		    path, o->cmd, what, CLEAR_RETRY_MS / 1000);
	else if (ret == -EOPNOTSUPP)
		err("%s: %s: %s: a segment type this version does not know",
		    path, o->cmd, what);
	else if (ret)
		err("%s: %s: %s: %s", path, o->cmd, what, strerror(-ret));
	else
		rc = 0;
out_free_snap:
	status_snap_free(before);
out_free_obs:
	cbdt_observer_free(obs);
out_close:
	cbdt_close(t);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *cmd;
		enum cbdt_obj type;
	} clears[] = {
		{ "clear-host", CBDT_OBJ_HOST },
		{ "clear-backend", CBDT_OBJ_BACKEND },
		{ "clear-blkdev", CBDT_OBJ_BLKDEV },
		{ "clear-segment", CBDT_OBJ_SEGMENT },
	};
	struct opts o;
	char *path;
	int rc = -1;

	log_init(PROG, 0);
	opts_parse(argc, argv, &o);
	path = transport_path(&o);
	if (!strcmp(o.cmd, "format")) {
		rc = cmd_format(path, &o);
	} else {
		for (unsigned i = 0; i < ARRAY_SIZE(clears); i++)
			if (!strcmp(o.cmd, clears[i].cmd))
				rc = cmd_clear(path, &o, clears[i].type);
		if (rc < 0) {
			free(path);
			usage_error("unknown command '%s'", o.cmd);
		}
	}
	if (fflush(stdout)) {
		err("stdout: %s", strerror(errno));
		rc = 1;
	}
	free(path);
	return rc;
}
