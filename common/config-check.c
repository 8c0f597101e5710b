/* SPDX-License-Identifier: MIT */
/*
 * The checks of a cbd.ini that parsed cleanly, so that a bad config is
 * refused before the transport is touched: across keys (required keys,
 * heartbeat timing, duplicate ids and paths), then for cbd-backend
 * (CONFIG_CHECK_FILES) the files it names: every backing store opens with
 * the access its backend needs and is large enough, an existing transport
 * is usable, a missing one can be created.  config_load() (config.c) runs
 * them; errors go through perr() like the parser's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cbdt.h"
#include "config-internal.h"
#include "config.h"
#include "util.h"

/* A cache needs a writable backend and room for its handlers' heads. */
static void cache_check(struct parse *p, unsigned i)
{
	const struct config_backend *b = &p->cfg->backends[i];
	unsigned line = p->blines[i][B_CACHE_SIZE];
	uint64_t min = (uint64_t)(b->handlers + CONFIG_CACHE_SEGS_SPARE) *
		       CBDT_SEG_SIZE;

	if (!b->cache_size)
		return;
	if (b->readonly)
		perr(p, line, "cache_size", -EINVAL,
		     "a read-only backend has nothing to cache");
	else if (b->cache_size < min)
		perr(p, line, "cache_size", -EINVAL,
		     "too small for %u handlers: at least %llu MiB (handlers + %u segments of %u MiB)",
		     b->handlers, (unsigned long long)(min >> 20),
		     CONFIG_CACHE_SEGS_SPARE, CBDT_SEG_SIZE >> 20);
}

/* Checks across keys, before any file is looked at. */
void config_check_keys(struct parse *p)
{
	struct config *cfg = p->cfg;

	if (!p->transport_line) {
		perr(p, 0, "[transport]", -EINVAL, "section missing");
		return;
	}
	if (!p->tlines[T_PATH])
		perr(p, p->transport_line, "path", -EINVAL,
		     "missing in [transport]");
	if (cfg->hb_timeout_ms < 2 * cfg->hb_interval_ms)
		perr(p,
		     p->tlines[T_HB_TIMEOUT]  ? p->tlines[T_HB_TIMEOUT] :
		     p->tlines[T_HB_INTERVAL] ? p->tlines[T_HB_INTERVAL] :
						p->transport_line,
		     p->tlines[T_HB_TIMEOUT] ? "heartbeat_timeout_ms" :
					       "heartbeat_interval_ms",
		     -EINVAL,
		     "heartbeat_timeout_ms (%u) must be at least twice heartbeat_interval_ms (%u)",
		     cfg->hb_timeout_ms, cfg->hb_interval_ms);
	for (unsigned i = 0; i < cfg->nr_backends; i++) {
		struct config_backend *b = &cfg->backends[i];

		if (!p->blines[i][B_PATH]) {
			perr(p, b->line, "path", -EINVAL,
			     "missing in [backend %s]", b->name);
			continue;
		}
		for (unsigned j = 0; j < i; j++) {
			if (b->id >= 0 && b->id == cfg->backends[j].id)
				perr(p, p->blines[i][B_ID], "id", -EINVAL,
				     "duplicate id %d (also backend %s)", b->id,
				     cfg->backends[j].name);
			if (!strcmp(b->path, cfg->backends[j].path))
				perr(p, p->blines[i][B_PATH], "path", -EINVAL,
				     "%s: also the path of backend %s", b->path,
				     cfg->backends[j].name);
		}
		if (!strcmp(b->path, cfg->path))
			perr(p, p->blines[i][B_PATH], "path", -EINVAL,
			     "%s: is the transport", b->path);
		/* the default is raised to a longer poll_us (cbdt_wait_init) */
		if (p->blines[i][B_POLL_MAX_US] && b->poll_max_us &&
		    b->poll_max_us < b->poll_us)
			perr(p, p->blines[i][B_POLL_MAX_US], "poll_max_us",
			     -EINVAL,
			     "%u is less than poll_us (%u): 0 turns adapting off",
			     b->poll_max_us, b->poll_us);
		cache_check(p, i);
	}
}

/* The backing store must open with the access the backend needs. */
void config_check_backend(struct parse *p, unsigned i, struct stat *seen)
{
	struct config_backend *b = &p->cfg->backends[i];
	unsigned line = p->blines[i][B_PATH];
	struct stat st;
	uint64_t size;
	int fd, ret;

	fd = open(b->path, (b->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		perr(p, line, "path", -errno, "%s: %s", b->path,
		     strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 ||
	    (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		perr(p, line, "path", -EINVAL,
		     "%s: not a regular file or a block device", b->path);
		goto out_close;
	}
	ret = fd_size(fd, &size);
	if (ret)
		perr(p, line, "path", ret, "%s: cannot get its size: %s",
		     b->path, strerror(-ret));
	else if (size < CBDT_BACKEND_MIN_SIZE)
		perr(p, line, "path", -EINVAL,
		     "%s: %" PRIu64
		     " bytes: smaller than %u bytes, too small to serve",
		     b->path, size, CBDT_BACKEND_MIN_SIZE);
	/* Two names for one file (a link, a symlink) would be two writers. */
	for (unsigned j = 0; j < i; j++)
		if (seen[j].st_dev == st.st_dev &&
		    seen[j].st_ino == st.st_ino &&
		    seen[j].st_mode == st.st_mode)
			perr(p, line, "path", -EINVAL,
			     "%s: the same file as backend %s", b->path,
			     p->cfg->backends[j].name);
	seen[i] = st;
out_close:
	close(fd);
}

/*
 * A cache is as durable as its transport: a file is volatile across a
 * power loss or a crash of its kernel, so it takes cache_volatile = yes.
 */
static void cache_check_transport(struct parse *p, bool dax)
{
	const struct config *cfg = p->cfg;

	for (unsigned i = 0; !dax && i < cfg->nr_backends; i++) {
		const struct config_backend *b = &cfg->backends[i];

		if (b->cache_size && !b->cache_volatile)
			perr(p, p->blines[i][B_CACHE_SIZE], "cache_size",
			     -EINVAL,
			     "the transport %s is a file, not a dax device: a cache in it is lost with this host's power or kernel; set cache_volatile = yes to accept that",
			     cfg->path);
	}
}

/* An existing transport must be usable; a missing one creatable. */
void config_check_transport(struct parse *p)
{
	struct config *cfg = p->cfg;
	unsigned line = p->tlines[T_PATH];
	char dir[CBDT_PATH_LEN], *slash;
	struct stat st;

	if (stat(cfg->path, &st) == 0) {
		cache_check_transport(p, S_ISCHR(st.st_mode));
		if (S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size < cbdt_min_size())
			perr(p, line, "path", -ENOSPC,
			     "%s: transport too small: %llu bytes (at least %llu)",
			     cfg->path, (unsigned long long)st.st_size,
			     (unsigned long long)cbdt_min_size());
		else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
			perr(p, line, "path", -EINVAL,
			     "%s: not a file or a dax device", cfg->path);
		else if (access(cfg->path, R_OK | W_OK) < 0)
			perr(p, line, "path", -errno, "%s: %s", cfg->path,
			     strerror(errno));
		return;
	}
	if (errno != ENOENT) {
		perr(p, line, "path", -errno, "%s: %s", cfg->path,
		     strerror(errno));
		return;
	}
	cache_check_transport(p, false); /* it will be a file */
	if (!cfg->size) {
		perr(p, line, "path", -ENOENT,
		     "%s: does not exist and no size is set to create it",
		     cfg->path);
		return;
	}
	strlcpy_field(dir, cfg->path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		perr(p, line, "path", -ENOENT,
		     "%s: cannot be created: no directory %s", cfg->path, dir);
	else if (access(dir, W_OK) < 0)
		perr(p, line, "path", -errno, "%s: cannot be created: %s",
		     cfg->path, strerror(errno));
}
