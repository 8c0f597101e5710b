/* SPDX-License-Identifier: MIT */
/*
 * Private to libcbdcommon: the parse state of one config_load(), shared by
 * config.c (the ini parser) and config-check.c (the checks after it).
 */
#ifndef CBD_COMMON_CONFIG_INTERNAL_H
#define CBD_COMMON_CONFIG_INTERNAL_H

#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "config.h"

/* The keys of [transport], named by tkeys[] in config.c. */
enum tkey {
	T_PATH,
	T_SIZE,
	T_FORMAT,
	T_HOSTNAME,
	T_HB_INTERVAL,
	T_HB_TIMEOUT,
	T_NR
};

/* The keys of [backend NAME], named by bkeys[] in config.c. */
enum bkey {
	B_PATH,
	B_ID,
	B_HANDLERS,
	B_POLL_US,
	B_POLL_MAX_US,
	B_READONLY,
	B_DURABILITY,
	B_CACHE_SIZE,
	B_CACHE_GC_PERCENT,
	B_CACHE_DATA_CRC,
	B_CACHE_VOLATILE,
	B_NR
};

/* The section the line being parsed is in. */
enum section {
	SEC_NONE,
	SEC_TRANSPORT,
	SEC_BACKEND,
	SEC_BAD
};

/* One config_load(): the file, where each key was, the first error. */
struct parse {
	FILE *f;
	const char *file;   /* as the user named it, for messages */
	char dir[PATH_MAX]; /* relative paths are relative to it */
	struct config *cfg;
	unsigned line;
	enum section sec;
	char sec_name[64];	 /* the header as inih will report it */
	unsigned transport_line; /* 0: no [transport] section */
	unsigned tlines[T_NR];	 /* line of each key, 0 = not given */
	unsigned blines[CBDT_BACKENDS_NR][B_NR];
	int err;
	unsigned err_line;
	char *errbuf;
	size_t errlen;
};

/*
 * config.c: report an error of @key at @line (0: none) into p->errbuf as
 * "FILE:LINE: key: reason"; the earliest line wins, among the post-parse
 * checks the first.
 */
__attribute__((format(printf, 5, 6))) void perr(struct parse *p, unsigned line,
						const char *key, int err,
						const char *fmt, ...);

/* config-check.c: checks across keys, before any file is looked at. */
void config_check_keys(struct parse *p);

/*
 * config-check.c: the store of backend @i opens with the access it needs,
 * is large enough and is none of the earlier ones (their stat in @seen[0]
 * to @seen[i - 1]; its own goes to @seen[i]).
 */
void config_check_backend(struct parse *p, unsigned i, struct stat *seen);

/* config-check.c: an existing transport is usable, a missing one creatable. */
void config_check_transport(struct parse *p);

#endif /* CBD_COMMON_CONFIG_INTERNAL_H */
