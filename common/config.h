/* SPDX-License-Identifier: MIT */
/*
 * cbd.ini: parsing and checking the configuration of cbd-backend, which
 * cbd-status and cbd-admin read too.  A loaded config is immutable; loading
 * is single-threaded and touches nothing but the files it checks (it never
 * writes).
 */
#ifndef CBD_BACKEND_CONFIG_H
#define CBD_BACKEND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

#define CONFIG_DEFAULT_FILE "/etc/cbd/cbd.ini"

#define CONFIG_HANDLERS_MIN	1U
#define CONFIG_HANDLERS_MAX	128U
#define CONFIG_HANDLERS_DEFAULT 4U

/* How long a handler polls for the next request before it sleeps (µs). */
#define CONFIG_POLL_US_DEFAULT 3U
#define CONFIG_POLL_US_MAX     1000U
/* ... and the longest it polls while requests sent alone (QD1) keep
 * coming back within it (adaptive; 0 = no adapting, poll_us alone).
 * docs/performance.md measured 100 on two kinds of 2-core VM. */
#define CONFIG_POLL_MAX_US_DEFAULT 100U

#define CONFIG_CACHE_GC_DEFAULT 70U
#define CONFIG_CACHE_GC_MAX	90U
/* A cache needs a segment per handler's data head, the log's, and room
 * to move on: at least handlers + this many segments. */
#define CONFIG_CACHE_SEGS_SPARE 3U

#define CONFIG_HB_INTERVAL_DEFAULT 1000U
#define CONFIG_HB_TIMEOUT_DEFAULT  10000U

/* inih keeps at most 49 characters of a section name: "backend " + 41. */
#define CONFIG_NAME_MAX 41U

enum config_format {
	CONFIG_FORMAT_NEVER = 0,    /* refuse a blank transport */
	CONFIG_FORMAT_IF_EMPTY = 1, /* format a blank (all-zero) one */
};

struct config_backend {
	char name[CBDT_NAME_LEN]; /* [backend NAME] */
	char path[CBDT_PATH_LEN]; /* absolute */
	int id;			  /* pinned slot id, -1 = any */
	unsigned handlers;	  /* max channels served at once */
	unsigned poll_us;	  /* handler polling before a sleep */
	unsigned poll_max_us;	  /* ... adaptive up to this; 0 = off */
	bool readonly;
	bool writeback;	     /* durability = writeback */
	uint64_t cache_size; /* bytes of pcache, whole segments; 0 = none */
	unsigned cache_gc_percent; /* GC above this use of the cache */
	bool cache_data_crc;	   /* cache keys carry a crc of their data */
	bool cache_volatile;	   /* a cache on a file transport accepted */
	unsigned line;		   /* of the section header */
};

struct config {
	char file[CBDT_PATH_LEN]; /* the config file, absolute */
	char path[CBDT_PATH_LEN]; /* transport, absolute */
	uint64_t size;		  /* to create a missing file; 0 = unset */
	enum config_format format;
	char hostname[CBDT_HOSTNAME_LEN];
	uint32_t hb_interval_ms;
	uint32_t hb_timeout_ms;
	unsigned nr_backends;
	struct config_backend backends[CBDT_BACKENDS_NR];
};

/* config_load flags */
#define CONFIG_CHECK_FILES (1U << 0) /* cbd-backend: check the files too */

/*
 * Parse @file: syntax, every key and value, the checks across keys; paths
 * are made absolute relative to the config file's directory.  With
 * CONFIG_CHECK_FILES, then the files it names (backend paths open with the
 * wanted access and are large enough; a missing transport can be
 * created).  On failure returns -errno and puts one line
 * "FILE:LINE: key: reason" into @errbuf.  *out is freed with config_free.
 */
int config_load(const char *file, unsigned flags, struct config **out,
		char *errbuf, size_t errlen);

/*
 * The transport a tool works on: @transport (-t) if given, else
 * [transport] path (and size) of @file (-c; NULL = CONFIG_DEFAULT_FILE),
 * read by config_load.  0, or -errno with @errbuf set.
 */
int config_transport_locate(const char *transport, const char *file, char *path,
			    size_t len, uint64_t *size, char *errbuf,
			    size_t errlen);
void config_free(struct config *cfg);

/* The backend named @name, NULL if none. */
const struct config_backend *config_backend_find(const struct config *cfg,
						 const char *name);

/* True if a running backend configured as @a can keep running as @b. */
bool config_backend_same(const struct config_backend *a,
			 const struct config_backend *b);

/* True if the [transport] sections agree (a reload cannot change it). */
bool config_transport_same(const struct config *a, const struct config *b);

#endif /* CBD_BACKEND_CONFIG_H */
