/* SPDX-License-Identifier: MIT */
/*
 * cbd-status and cbd-admin find the transport through cbd.ini: only
 * [transport] path (and size, for creating it) matter to them.
 * Single-threaded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "toolcfg.h"
#include "util.h"

struct parse {
	struct toolcfg *c;
	int err;
	char *why;
	size_t len;
};

static int on_key(void *user, const char *section, const char *key,
		  const char *value)
{
	struct parse *p = user;

	if (strcmp(section, "transport") || p->err)
		return 1;
	if (!strcmp(key, "path")) {
		free(p->c->path);
		p->c->path = strdup(value);
		if (!p->c->path)
			p->err = -ENOMEM;
	} else if (!strcmp(key, "size")) {
		int ret = parse_size(value, &p->c->size);

		if (ret) {
			snprintf(p->why, p->len, "[transport] size: bad value '%s'",
				 value);
			p->err = ret;
		}
	}
	return 1;
}

int toolcfg_read(const char *file, struct toolcfg *c, char *why, size_t len)
{
	struct parse p = { c, 0, why, len };
	int ret;

	memset(c, 0, sizeof(*c));
	ret = ini_parse(file, on_key, &p);
	if (ret < 0) {
		ret = errno ? -errno : -EIO;
		snprintf(why, len, "%s", strerror(-ret));
		return ret;
	}
	if (ret > 0) {
		snprintf(why, len, "line %d: syntax error", ret);
		toolcfg_free(c);
		return -EINVAL;
	}
	if (p.err) {
		if (p.err == -ENOMEM)
			snprintf(why, len, "%s", strerror(ENOMEM));
		toolcfg_free(c);
		return p.err;
	}
	if (!c->path || !*c->path) {
		snprintf(why, len, "no path in [transport]");
		toolcfg_free(c);
		return -EINVAL;
	}
	return 0;
}

void toolcfg_free(struct toolcfg *c)
{
	free(c->path);
	c->path = NULL;
}
