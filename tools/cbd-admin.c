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

#include "admin.h"
#include "cbdt.h"
#include "cli.h"
#include "log.h"
#include "status.h"
#include "config.h"
#include "util.h"

#define PROG "cbd-admin"

struct opts {
	const char *transport;
	const char *config;
	uint32_t window_ms;
	uint64_t size;
	bool force;
	uint16_t flags;	    /* CBDT_F_* for format */
	bool format_opts;   /* any of the format-only options given */
	int pause;	    /* cache-writeback: -1, or --pause 1 / --resume 0 */
	unsigned timeout_s; /* cache-writeback */
	bool cache_opts;    /* any of the cache-writeback options given */
	const char *cmd;
	const char *arg;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG
		" [-t PATH | -c FILE] [--window MS] COMMAND [ARG]\n"
		"Format a cbd transport, clear what dead processes left in it, write\n"
		"a backend's cache back.\n"
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
		"  clear-dead         every dead object that nothing alive needs,\n"
		"                     dependents first (what the janitor does)\n"
		"        Anything alive (its heartbeat moves) or still used is refused with\n"
		"        the reason; a cache segment also while its cache is dirty.\n"
		"  cache-writeback ID [--timeout S] [--pause | --resume]\n"
		"        backend ID writes everything its cache holds dirty back to its\n"
		"        disk now; waits for it (up to S seconds, default 300).  --pause\n"
		"        holds the writeback back (only a full cache, a discard, a\n"
		"        request or a stop write back), --resume lets it go on.\n"
		"\n"
		"Options:\n"
		"  -t, --transport PATH  transport file or /dev/daxX.Y\n"
		"  -c, --config FILE     take [transport] path and size from FILE\n"
		"                        (default " CONFIG_DEFAULT_FILE ")\n"
		"      --window MS       watch heartbeats for MS ms before deciding what is\n"
		"                        dead (default: 1.5 x the largest heartbeat interval\n"
		"                        of the active hosts, %u..%u ms, %u ms if none)\n"
		"  -s, --size N          size of a file to create (K, M, G, T suffixes)\n"
		"  -f, --force           format over a valid transport\n"
		"      --entry-crc       format with a crc32c on every ring entry\n"
		"      --data-crc        format with a crc32c on all data moved\n"
		"      --timeout S       cache-writeback: wait at most S seconds\n"
		"      --pause           cache-writeback: hold the writeback back\n"
		"      --resume          cache-writeback: let it go on\n"
		"  -h, --help            this text\n"
		"  -V, --version         print the version\n"
		"\n"
		"Exit status: 0 done (or nothing to do); 1 refused or failed (one line on\n"
		"stderr says why); 2 bad usage.\n",
		STATUS_WINDOW_MIN_MS, STATUS_WINDOW_MAX_MS,
		STATUS_WINDOW_DEFAULT_MS);
}

static void opts_parse(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_WINDOW = 256,
		OPT_ENTRY_CRC,
		OPT_DATA_CRC,
		OPT_TIMEOUT,
		OPT_PAUSE,
		OPT_RESUME
	};
	static const struct option lopts[] = {
		{"transport", required_argument, NULL, 't'},
		{"config", required_argument, NULL, 'c'},
		{"window", required_argument, NULL, OPT_WINDOW},
		{"size", required_argument, NULL, 's'},
		{"force", no_argument, NULL, 'f'},
		{"entry-crc", no_argument, NULL, OPT_ENTRY_CRC},
		{"data-crc", no_argument, NULL, OPT_DATA_CRC},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"pause", no_argument, NULL, OPT_PAUSE},
		{"resume", no_argument, NULL, OPT_RESUME},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->pause = -1;
	o->timeout_s = 300;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:c:s:fhV", lopts, NULL)) != -1) {
		switch (c) {
		case 't':
			o->transport = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case OPT_WINDOW:
			if (parse_uint(optarg, 1, 60000, &v))
				cli_usage_error(
					"--window: milliseconds between 1 and 60000 expected");
			o->window_ms = (uint32_t)v;
			break;
		case 's':
			if (parse_size(optarg, &o->size) || !o->size)
				cli_usage_error("--size: bad size '%s'",
						optarg);
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
		case OPT_TIMEOUT:
			if (parse_uint(optarg, 1, 86400, &v))
				cli_usage_error(
					"--timeout: seconds between 1 and 86400 expected");
			o->timeout_s = (unsigned)v;
			o->cache_opts = true;
			break;
		case OPT_PAUSE:
		case OPT_RESUME:
			if (o->pause >= 0)
				cli_usage_error(
					"--pause and --resume exclude each other");
			o->pause = c == OPT_PAUSE;
			o->cache_opts = true;
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
	if (o->transport && o->config)
		cli_usage_error("-t and -c exclude each other");
	if (optind >= argc)
		cli_usage_error("no command given");
	o->cmd = argv[optind++];
	if (optind < argc)
		o->arg = argv[optind++];
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (o->cache_opts && strcmp(o->cmd, "cache-writeback"))
		cli_usage_error(
			"--timeout, --pause and --resume are for cache-writeback");
	if (!strcmp(o->cmd, "cache-writeback")) {
		if (o->format_opts)
			cli_usage_error(
				"--size, --force, --entry-crc and --data-crc are for format");
		if (!o->arg)
			cli_usage_error("cache-writeback needs a backend id");
	} else if (!strcmp(o->cmd, "format")) {
		if (o->arg)
			cli_usage_error("format takes no argument");
	} else if (!strcmp(o->cmd, "clear-dead")) {
		if (o->format_opts)
			cli_usage_error(
				"--size, --force, --entry-crc and --data-crc are for format");
		if (o->arg)
			cli_usage_error("clear-dead takes no argument");
	} else if (!strncmp(o->cmd, "clear-", 6)) {
		if (o->format_opts)
			cli_usage_error(
				"--size, --force, --entry-crc and --data-crc are for format");
		if (!o->arg)
			cli_usage_error("%s needs an id", o->cmd);
	} else {
		cli_usage_error("unknown command '%s'", o->cmd);
	}
}

/* Transport path (and the configured size) from -t or the config. */
static void transport_path(struct opts *o, char *path, size_t len)
{
	uint64_t size;
	char why[512];

	if (config_transport_locate(o->transport, o->config, path, len, &size,
				    why, sizeof(why))) {
		log_err("%s", why);
		exit(1);
	}
	if (!o->size)
		o->size = size;
}

/* ---- format ---------------------------------------------------------- */

static int cmd_format(const char *path, const struct opts *o)
{
	char size[32], segsz[32], what[256];
	struct cbdt_inuse busy;
	const struct cbdt_info *in;
	bool created = false;
	struct cbdt *t;
	struct stat st;
	int ret;

	if (stat(path, &st) < 0) {
		if (errno != ENOENT) {
			log_err("%s: %s", path, strerror(errno));
			return 1;
		}
		if (!o->size) {
			log_err("%s: does not exist; give --size to create it",
				path);
			return 1;
		}
		if (o->size < cbdt_min_size()) {
			log_err("%s: --size %s is below the minimum of %s",
				path, format_size(o->size, size, sizeof(size)),
				format_size(cbdt_min_size(), segsz,
					    sizeof(segsz)));
			return 1;
		}
		ret = cbdt_file_create(path, o->size);
		if (ret) {
			log_err("%s: creating: %s", path, strerror(-ret));
			return 1;
		}
		created = true;
	} else if (o->size && S_ISREG(st.st_mode) &&
		   (uint64_t)st.st_size != o->size) {
		log_info("%s: exists; keeping its size, not %s", path,
			 format_size(o->size, size, sizeof(size)));
	}

	ret = cbdt_map(path, 0, &t);
	if (ret) {
		log_err("%s: %s", path, cbdt_strerror(ret));
		goto err_unlink;
	}
	ret = cbdt_format(t, o->flags, o->force ? CBDT_FORMAT_FORCE : 0, &busy);
	if (!ret)
		ret = cbdt_validate(t);
	switch (ret) {
	case 0:
		break;
	case -EBUSY:
		if (busy.type == CBDT_OBJ_SEGMENT)
			log_err("%s: segment %u holds a cache with writes not yet on its backend's disk; start that backend so that it writes them back before formatting",
				path, busy.id);
		else
			log_err("%s: %s is alive; stop it before formatting",
				path,
				cbdt_obj_describe(t, busy.type, busy.id, what,
						  sizeof(what)));
		goto err_close;
	case -EEXIST:
		log_err("%s: already formatted; use --force to format it again",
			path);
		goto err_close;
	case -ENOTEMPTY:
		log_err("%s: %s; not blank either: use --force to overwrite it",
			path, cbdt_strerror(cbdt_validate(t)));
		goto err_close;
	default:
		log_err("%s: format: %s", path, cbdt_strerror(ret));
		goto err_close;
	}
	if (cbdt_dax_pagemap_on_device(t))
		transport_note(t); /* the one thing to warn about here */
	in = cbdt_get_info(t);
	printf("formatted %s: %s, %u segments of %s, entry crc %s, data crc %s\n",
	       path, format_size(in->size, size, sizeof(size)),
	       in->segments.count,
	       format_size(in->seg_size, segsz, sizeof(segsz)),
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

int main(int argc, char **argv)
{
	static const struct {
		const char *cmd;
		enum cbdt_obj type;
	} clears[] = {
		{"clear-host", CBDT_OBJ_HOST},
		{"clear-backend", CBDT_OBJ_BACKEND},
		{"clear-blkdev", CBDT_OBJ_BLKDEV},
		{"clear-segment", CBDT_OBJ_SEGMENT},
	};
	struct opts o;
	char path[CBDT_PATH_LEN];
	int rc = -1;

	log_init(PROG, 0);
	opts_parse(argc, argv, &o);
	transport_path(&o, path, sizeof(path));
	if (!strcmp(o.cmd, "format")) {
		rc = cmd_format(path, &o);
	} else if (!strcmp(o.cmd, "clear-dead")) {
		rc = admin_clear_dead(path, o.window_ms);
	} else if (!strcmp(o.cmd, "cache-writeback")) {
		rc = admin_cache_writeback(path, o.arg, o.pause, o.timeout_s);
	} else {
		for (unsigned i = 0; i < ARRAY_SIZE(clears); i++)
			if (!strcmp(o.cmd, clears[i].cmd))
				rc = admin_clear(path, clears[i].type, o.cmd,
						 o.arg, o.window_ms);
		if (rc < 0) {
			cli_usage_error("unknown command '%s'", o.cmd);
		}
	}
	if (fflush(stdout)) {
		log_err("stdout: %s", strerror(errno));
		rc = 1;
	}
	return rc;
}
