/* SPDX-License-Identifier: MIT */
/*
 * cbd.ini parsing with inih: sections, keys and values, relative paths
 * made absolute; then config_load() runs the checks of config-check.c
 * (for cbd-backend, of everything the config names too), so that a bad
 * config is refused before the transport is touched.  The one reader of
 * cbd.ini: cbd-backend, cbd-status and cbd-admin resolve every key, and
 * relative paths, the same way.  Single-threaded; errors are one line
 * "FILE:LINE: key: reason", the first one found wins.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "cbdt.h"
#include "config-internal.h"
#include "config.h"
#include "util.h"

static const char *const tkeys[T_NR] = {
	[T_PATH] = "path",
	[T_SIZE] = "size",
	[T_FORMAT] = "format",
	[T_HOSTNAME] = "hostname",
	[T_HB_INTERVAL] = "heartbeat_interval_ms",
	[T_HB_TIMEOUT] = "heartbeat_timeout_ms",
};

static const char *const bkeys[B_NR] = {
	[B_PATH] = "path",
	[B_ID] = "id",
	[B_HANDLERS] = "handlers",
	[B_POLL_US] = "poll_us",
	[B_POLL_MAX_US] = "poll_max_us",
	[B_READONLY] = "readonly",
	[B_DURABILITY] = "durability",
	[B_CACHE_SIZE] = "cache_size",
	[B_CACHE_GC_PERCENT] = "cache_gc_percent",
	[B_CACHE_DATA_CRC] = "cache_data_crc",
	[B_CACHE_VOLATILE] = "cache_volatile",
};

void perr(struct parse *p, unsigned line, const char *key, int err,
	  const char *fmt, ...)
{
	va_list ap;
	int n;

	/* The earliest line wins; among the post-parse checks, the first. */
	if (p->err && (!line || !p->err_line || p->err_line <= line))
		return;
	p->err = err;
	p->err_line = line;
	if (line)
		n = snprintf(p->errbuf, p->errlen, "%s:%u: %s: ", p->file, line,
			     key);
	else
		n = snprintf(p->errbuf, p->errlen, "%s: %s: ", p->file, key);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->errbuf + n, p->errlen - n, fmt, ap);
	va_end(ap);
}

static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return false;
	return true;
}

/* A "[...]" line, seen by the reader before inih parses it. */
static void section_begin(struct parse *p, const char *hdr)
{
	struct config *cfg = p->cfg;
	const char *end = strchr(hdr + 1, ']');
	size_t n;

	p->sec = SEC_BAD;
	p->sec_name[0] = '\0';
	if (!end)
		return; /* inih reports the syntax error */
	n = (size_t)(end - hdr - 1);
	if (n >= sizeof(p->sec_name)) {
		perr(p, p->line, "[section]", -EINVAL, "name too long");
		return;
	}
	memcpy(p->sec_name, hdr + 1, n);
	p->sec_name[n] = '\0';

	if (!strcmp(p->sec_name, "transport")) {
		if (p->transport_line) {
			perr(p, p->line, "[transport]", -EINVAL,
			     "duplicate section (first at line %u)",
			     p->transport_line);
			return;
		}
		p->transport_line = p->line;
		p->sec = SEC_TRANSPORT;
		return;
	}
	if (!strncmp(p->sec_name, "backend", 7) &&
	    isspace((unsigned char)p->sec_name[7])) {
		const char *name = p->sec_name + 8;
		struct config_backend *b;

		while (isspace((unsigned char)*name))
			name++;
		if (!name_valid(name)) {
			perr(p, p->line, p->sec_name, -EINVAL,
			     "bad backend name: 1 to %u characters of A-Z a-z 0-9 . _ -",
			     CONFIG_NAME_MAX);
			return;
		}
		for (unsigned i = 0; i < cfg->nr_backends; i++) {
			if (!strcmp(cfg->backends[i].name, name)) {
				perr(p, p->line, p->sec_name, -EINVAL,
				     "duplicate backend name (first at line %u)",
				     cfg->backends[i].line);
				return;
			}
		}
		if (cfg->nr_backends >= CBDT_BACKENDS_NR) {
			perr(p, p->line, p->sec_name, -EINVAL,
			     "too many backends (at most %u)",
			     CBDT_BACKENDS_NR);
			return;
		}
		b = &cfg->backends[cfg->nr_backends++];
		strlcpy_field(b->name, name, sizeof(b->name));
		b->id = -1;
		b->handlers = CONFIG_HANDLERS_DEFAULT;
		b->poll_us = CONFIG_POLL_US_DEFAULT;
		b->poll_max_us = CONFIG_POLL_MAX_US_DEFAULT;
		b->cache_gc_percent = CONFIG_CACHE_GC_DEFAULT;
		b->line = p->line;
		p->sec = SEC_BACKEND;
		return;
	}
	perr(p, p->line, p->sec_name, -EINVAL,
	     "unknown section (expected [transport] or [backend NAME])");
}

/* inih's line reader, wrapped to count lines and to see section headers. */
static char *config_reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t len;
	char *s;
	int c;

	if (!fgets(str, num, p->f))
		return NULL;
	p->line++;
	len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(p->f)) {
		perr(p, p->line, "line", -EINVAL,
		     "too long (at most %d characters)", num - 3);
		while ((c = getc(p->f)) != EOF && c != '\n')
			;
		str[0] = '\0';
		return str;
	}
	s = str;
	if (p->line == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '[')
		section_begin(p, s);
	return str;
}

/* Make @value absolute (relative to the config's directory) into @dst. */
static int path_set(struct parse *p, const char *key, const char *value,
		    char *dst, size_t size)
{
	int n;

	if (!*value) {
		perr(p, p->line, key, -EINVAL, "empty");
		return -EINVAL;
	}
	if (value[0] == '/')
		n = snprintf(dst, size, "%s", value);
	else
		n = snprintf(dst, size, "%s/%s", p->dir, value);
	if (n < 0 || (size_t)n >= size) {
		perr(p, p->line, key, -ENAMETOOLONG,
		     "path too long (at most %zu characters)", size - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int number_set(struct parse *p, const char *key, const char *value,
		      uint64_t min, uint64_t max, uint64_t *out)
{
	int ret = parse_uint(value, min, max, out);

	if (ret == -ERANGE)
		perr(p, p->line, key, ret,
		     "out of range: '%s' (expected %llu to %llu)", value,
		     (unsigned long long)min, (unsigned long long)max);
	else if (ret)
		perr(p, p->line, key, ret, "not a number: '%s'", value);
	return ret;
}

static void transport_key(struct parse *p, enum tkey k, const char *value)
{
	struct config *cfg = p->cfg;
	const char *key = tkeys[k];
	char a[32], b[32];
	uint64_t v;
	int ret;

	switch (k) {
	case T_PATH:
		path_set(p, key, value, cfg->path, sizeof(cfg->path));
		break;
	case T_SIZE:
		ret = parse_size(value, &v);
		if (ret) {
			perr(p, p->line, key, ret,
			     "not a size: '%s' (expected e.g. 512M, 1G)",
			     value);
		} else if (v < cbdt_min_size()) {
			perr(p, p->line, key, -ENOSPC,
			     "transport too small: %s (at least %s)",
			     format_size(v, a, sizeof(a)),
			     format_size(cbdt_min_size(), b, sizeof(b)));
		} else {
			cfg->size = v;
		}
		break;
	case T_FORMAT:
		if (!strcmp(value, "never"))
			cfg->format = CONFIG_FORMAT_NEVER;
		else if (!strcmp(value, "if-empty"))
			cfg->format = CONFIG_FORMAT_IF_EMPTY;
		else
			perr(p, p->line, key, -EINVAL,
			     "bad value '%s' (expected never or if-empty)",
			     value);
		break;
	case T_HOSTNAME:
		if (!*value || strlen(value) >= sizeof(cfg->hostname) ||
		    strpbrk(value, " \t")) {
			perr(p, p->line, key, -EINVAL,
			     "bad host name '%s' (1 to %zu characters, no blanks)",
			     value, sizeof(cfg->hostname) - 1);
			break;
		}
		strlcpy_field(cfg->hostname, value, sizeof(cfg->hostname));
		break;
	case T_HB_INTERVAL:
		if (!number_set(p, key, value, 10, 60000, &v))
			cfg->hb_interval_ms = (uint32_t)v;
		break;
	case T_HB_TIMEOUT:
		if (!number_set(p, key, value, 100, 3600000, &v))
			cfg->hb_timeout_ms = (uint32_t)v;
		break;
	case T_NR:
		break;
	}
}

static void backend_key(struct parse *p, enum bkey k, const char *value)
{
	struct config_backend *b = &p->cfg->backends[p->cfg->nr_backends - 1];
	const char *key = bkeys[k];
	uint64_t v;

	switch (k) {
	case B_PATH:
		path_set(p, key, value, b->path, sizeof(b->path));
		break;
	case B_ID:
		if (!number_set(p, key, value, 0, CBDT_BACKENDS_NR - 1, &v))
			b->id = (int)v;
		break;
	case B_HANDLERS:
		if (!number_set(p, key, value, CONFIG_HANDLERS_MIN,
				CONFIG_HANDLERS_MAX, &v))
			b->handlers = (unsigned)v;
		break;
	case B_POLL_US:
		if (!number_set(p, key, value, 1, CONFIG_POLL_US_MAX, &v))
			b->poll_us = (unsigned)v;
		break;
	case B_POLL_MAX_US:
		if (!number_set(p, key, value, 0, CONFIG_POLL_US_MAX, &v))
			b->poll_max_us = (unsigned)v;
		break;
	case B_READONLY:
		if (parse_bool(value, &b->readonly))
			perr(p, p->line, key, -EINVAL,
			     "bad value '%s' (expected true or false)", value);
		break;
	case B_DURABILITY:
		if (!strcmp(value, "sync"))
			b->writeback = false;
		else if (!strcmp(value, "writeback"))
			b->writeback = true;
		else
			perr(p, p->line, key, -EINVAL,
			     "bad value '%s' (expected sync or writeback)",
			     value);
		break;
	case B_CACHE_SIZE:
		if (parse_size(value, &v))
			perr(p, p->line, key, -EINVAL,
			     "not a size: '%s' (expected e.g. 256M, 1G, or 0)",
			     value);
		else if (v % CBDT_SEG_SIZE)
			perr(p, p->line, key, -EINVAL,
			     "%s: not a whole number of %u MiB segments", value,
			     CBDT_SEG_SIZE >> 20);
		else
			b->cache_size = v;
		break;
	case B_CACHE_GC_PERCENT:
		if (!number_set(p, key, value, 0, CONFIG_CACHE_GC_MAX, &v))
			b->cache_gc_percent = (unsigned)v;
		break;
	case B_CACHE_DATA_CRC:
	case B_CACHE_VOLATILE:
		if (parse_bool(value, k == B_CACHE_DATA_CRC ?
					      &b->cache_data_crc :
					      &b->cache_volatile))
			perr(p, p->line, key, -EINVAL,
			     "bad value '%s' (expected yes or no)", value);
		break;
	case B_NR:
		break;
	}
}

static int key_index(const char *const *keys, int nr, const char *name)
{
	for (int i = 0; i < nr; i++)
		if (!strcasecmp(keys[i], name))
			return i;
	return -1;
}

static int config_handler(void *user, const char *section, const char *name,
			  const char *value)
{
	struct parse *p = user;
	unsigned *lines;
	int k;

	if (strcmp(section, p->sec_name)) {
		/* Our header scan and inih disagree: be strict. */
		perr(p, p->line, section, -EINVAL,
		     "cannot parse section header");
		return 1;
	}
	switch (p->sec) {
	case SEC_NONE:
		perr(p, p->line, name, -EINVAL, "key outside of any section");
		return 1;
	case SEC_BAD:
		return 1; /* the header was reported */
	case SEC_TRANSPORT:
		k = key_index(tkeys, T_NR, name);
		lines = p->tlines;
		break;
	case SEC_BACKEND:
		k = key_index(bkeys, B_NR, name);
		lines = p->blines[p->cfg->nr_backends - 1];
		break;
	default:
		return 1;
	}
	if (k < 0) {
		perr(p, p->line, name, -EINVAL, "unknown key in [%s]", section);
		return 1;
	}
	if (lines[k]) {
		perr(p, p->line, name, -EINVAL,
		     "given twice (first at line %u)", lines[k]);
		return 1;
	}
	lines[k] = p->line;
	if (p->sec == SEC_TRANSPORT)
		transport_key(p, (enum tkey)k, value);
	else
		backend_key(p, (enum bkey)k, value);
	return 1;
}

static int config_defaults(struct parse *p)
{
	struct config *cfg = p->cfg;
	char host[256];

	cfg->format = CONFIG_FORMAT_NEVER;
	cfg->hb_interval_ms = CONFIG_HB_INTERVAL_DEFAULT;
	cfg->hb_timeout_ms = CONFIG_HB_TIMEOUT_DEFAULT;
	if (gethostname(host, sizeof(host)) < 0)
		return -errno;
	host[sizeof(host) - 1] = '\0';
	strlcpy_field(cfg->hostname, host, sizeof(cfg->hostname));
	return 0;
}

static int config_locate(struct parse *p, const char *file)
{
	char *abs, *slash;

	abs = realpath(file, NULL);
	if (!abs)
		return -errno;
	if (strlen(abs) >= sizeof(p->cfg->file)) {
		free(abs);
		return -ENAMETOOLONG;
	}
	strlcpy_field(p->cfg->file, abs, sizeof(p->cfg->file));
	slash = strrchr(abs, '/');
	*(slash == abs ? slash + 1 : slash) = '\0';
	strlcpy_field(p->dir, abs, sizeof(p->dir));
	free(abs);
	return 0;
}

int config_load(const char *file, unsigned flags, struct config **out,
		char *errbuf, size_t errlen)
{
	struct stat seen[CBDT_BACKENDS_NR];
	struct parse *p;
	int ret;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->file = file;
	p->errbuf = errbuf;
	p->errlen = errlen;
	if (errlen)
		errbuf[0] = '\0';
	p->cfg = calloc(1, sizeof(*p->cfg));
	if (!p->cfg) {
		ret = -ENOMEM;
		goto err_free_parse;
	}
	ret = config_locate(p, file);
	if (!ret)
		ret = config_defaults(p);
	if (!ret) {
		p->f = fopen(p->cfg->file, "re");
		if (!p->f)
			ret = -errno;
	}
	if (ret) {
		snprintf(errbuf, errlen, "%s: %s", file, strerror(-ret));
		goto err_free_cfg;
	}

	ret = ini_parse_stream(config_reader, p, config_handler, p);
	fclose(p->f);
	if (ret > 0)
		perr(p, (unsigned)ret, "syntax", -EINVAL,
		     "expected 'key = value' or '[section]'");
	else if (ret < 0)
		perr(p, 0, "parse", -ENOMEM, "out of memory");
	/* Only a config that parsed cleanly is worth checking further. */
	if (!p->err)
		config_check_keys(p);
	for (unsigned i = 0;
	     (flags & CONFIG_CHECK_FILES) && !p->err && i < p->cfg->nr_backends;
	     i++)
		config_check_backend(p, i, seen);
	if ((flags & CONFIG_CHECK_FILES) && !p->err)
		config_check_transport(p);
	if (p->err) {
		ret = p->err;
		goto err_free_cfg;
	}
	*out = p->cfg;
	free(p);
	return 0;

err_free_cfg:
	free(p->cfg);
err_free_parse:
	free(p);
	return ret;
}

void config_free(struct config *cfg)
{
	free(cfg);
}

const struct config_backend *config_backend_find(const struct config *cfg,
						 const char *name)
{
	for (unsigned i = 0; i < cfg->nr_backends; i++)
		if (!strcmp(cfg->backends[i].name, name))
			return &cfg->backends[i];
	return NULL;
}

bool config_backend_same(const struct config_backend *a,
			 const struct config_backend *b)
{
	return !strcmp(a->name, b->name) && !strcmp(a->path, b->path) &&
	       a->id == b->id && a->handlers == b->handlers &&
	       a->readonly == b->readonly && a->writeback == b->writeback &&
	       a->cache_size == b->cache_size &&
	       a->cache_gc_percent == b->cache_gc_percent &&
	       a->cache_data_crc == b->cache_data_crc &&
	       a->cache_volatile == b->cache_volatile;
}

bool config_transport_same(const struct config *a, const struct config *b)
{
	return !strcmp(a->path, b->path) && a->size == b->size &&
	       a->format == b->format && !strcmp(a->hostname, b->hostname) &&
	       a->hb_interval_ms == b->hb_interval_ms &&
	       a->hb_timeout_ms == b->hb_timeout_ms;
}

int config_transport_locate(const char *transport, const char *file, char *path,
			    size_t len, uint64_t *size, char *errbuf,
			    size_t errlen)
{
	struct config *cfg;
	int ret;

	if (size)
		*size = 0;
	if (transport) {
		if (strlen(transport) >= len) {
			snprintf(errbuf, errlen, "%s: %s", transport,
				 strerror(ENAMETOOLONG));
			return -ENAMETOOLONG;
		}
		strcpy(path, transport);
		return 0;
	}
	ret = config_load(file ? file : CONFIG_DEFAULT_FILE, 0, &cfg, errbuf,
			  errlen);
	if (ret)
		return ret;
	snprintf(path, len, "%s", cfg->path);
	if (size)
		*size = cfg->size;
	config_free(cfg);
	return 0;
}
