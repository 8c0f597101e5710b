/* SPDX-License-Identifier: MIT */
/*
 * A snapshot of a transport in plain private structs, shared by cbd-status,
 * cbd-admin and the unit tests.  Single-threaded; collecting only reads the
 * transport (it works on a CBDT_MAP_RDONLY mapping).
 */
#ifndef CBD_TOOLS_STATUS_H
#define CBD_TOOLS_STATUS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cbdt-cache.h"
#include "cbdt.h"

/* Liveness window bounds when it is derived from the host records. */
#define STATUS_WINDOW_MIN_MS	 200U
#define STATUS_WINDOW_MAX_MS	 3000U
#define STATUS_WINDOW_DEFAULT_MS 1500U /* no host record says otherwise */

/* What cbdt_record_read said about a slot's record. */
enum status_rec {
	STATUS_REC_VALID = 0,
	STATUS_REC_UNWRITTEN, /* -ENODATA: never written */
	STATUS_REC_CORRUPT,   /* -EBADMSG or another error */
};

/* Common part of every slot. */
struct status_slot {
	uint32_t id;
	bool active;	     /* owner word state ACTIVE */
	uint32_t owner_host; /* host id in the owner word */
	uint64_t generation;
	enum status_rec rec;
	/* liveness (hosts, backends, blkdevs only) */
	bool alive;	    /* active and the counter moved in the window
				 * (cbdt_observer_alive, timeout = window) */
	uint64_t heartbeat; /* last counter value read */
	uint64_t hb_age_ms; /* since it was last seen moving; the time
				 * watched (a lower bound) if it never moved */
};

struct status_host {
	struct status_slot s;
	struct cbdt_host_rec r;
};

struct status_backend {
	struct status_slot s;
	struct cbdt_backend_rec r;
	bool locked;	      /* writable-mapping lock word set */
	uint32_t lock_blkdev; /* blkdev id of the lock holder */
};

struct status_blkdev {
	struct status_slot s;
	struct cbdt_blkdev_rec r;
};

struct status_segment {
	struct status_slot s;
	struct cbdt_segment_rec r;
	bool ctrl_valid;	/* channel control area carries the magic */
	uint32_t handler_state; /* enum cbdt_handler_state */
	uint32_t client_state;	/* enum cbdt_client_state */
	bool orphaned; /* its blkdev slot no longer holds blkdev_owner */
	/* I/O (status-io.c), channels only */
	bool lost;	    /* handler_flags LOST */
	bool packs;	    /* handler_flags PACK: its store is memory */
	uint32_t inflight;  /* submitted, not yet completed */
	uint32_t qdepth;    /* submission ring entries */
	uint32_t max_io;    /* data area: the largest request */
	uint64_t timed_out; /* the client's counts */
	uint64_t submitted;
	struct cbdt_chan_stats st;  /* counters at the end of the window */
	struct cbdt_chan_stats st0; /* ... and at its start */
	uint64_t owner0;	    /* owner word at the start */
};

/* I/O of a blkdev or a backend: its channels summed. */
struct status_io {
	uint32_t channels;
	uint64_t ops[CBDT_STAT_OPS]; /* since the channels were set up */
	uint64_t bytes[CBDT_STAT_OPS];
	uint64_t errors;
	uint64_t errors_window;	       /* new errors within the window */
	uint64_t timed_out, submitted; /* the clients' counts */
	uint64_t lat[CBDT_LAT_BUCKETS];
	uint32_t inflight;
	bool lost;   /* a channel is LOST */
	double iops; /* over the window */
	double read_mib_s, write_mib_s;
	uint32_t qdepth, max_io; /* the smallest of its channels */
};

/* A backend's cache (status-cache.c), found by its index-0 segment. */
struct status_cache {
	uint32_t seg0;	     /* segment holding index 0 */
	uint16_t backend_id; /* as its records say */
	uint64_t ident;
	uint32_t nsegs;
	bool whole;    /* all its segments are there */
	bool running;  /* its backend runs it (header set up) */
	bool paused;   /* writeback held back (cbd-admin --pause) */
	int log_dirty; /* its log holds ksets after the tail: 1, 0;
			 * -1 if not one whole cache */
	struct cbdt_cache_hdr h0, h; /* counters at the window's start, end */
	double wb_mib_s;	     /* over the window */
};

struct status_snap {
	char *path;
	uint64_t map_size;
	struct cbdt_info info;
	uint32_t window_ms; /* liveness window actually sampled; 0 = none */
	uint64_t io_ns;	    /* between the two I/O samples; 0 = one sample */
	bool janitor_held;
	uint32_t janitor_host;

	uint32_t nr_hosts, nr_backends, nr_blkdevs, nr_segments;
	uint32_t hosts_used, backends_used, blkdevs_used, segments_used;
	struct status_host *hosts; /* every slot, index == id */
	struct status_backend *backends;
	struct status_blkdev *blkdevs;
	struct status_segment *segments;
	uint32_t nr_caches;
	struct status_cache *caches;
};

struct status_opts {
	uint32_t window_ms; /* 0: derived from the host records */
	bool no_liveness;   /* skip sampling: every slot reads as dead */
	uint32_t poll_ms;   /* sampling period; 0 = 10 ms */
	/* set asynchronously (SIGINT): sampling stops with -EINTR */
	volatile sig_atomic_t *stop;
};

/*
 * Collect a snapshot, sampling the heartbeat counters for the liveness
 * window (this sleeps that long) through @obs, an observer whose timeout
 * is the window (NULL: a private one), so that a caller who clears next
 * hands the library the very observer that decided.  0, -ENOMEM, -EINTR.
 */
int status_collect(struct cbdt *t, const struct status_opts *o,
		   struct cbdt_observer *obs, struct status_snap **out);
void status_snap_free(struct status_snap *s);

/*
 * The window cbd-status uses by default: 1.5 x the largest heartbeat
 * interval in the records of ACTIVE hosts, clamped to
 * [STATUS_WINDOW_MIN_MS, STATUS_WINDOW_MAX_MS].
 */
uint32_t status_default_window(const struct cbdt *t);

/* status-io.c: channel counters (two samples: @first then the end of
 * the window) and their sums per blkdev and per backend. */
void status_io_sample(const struct cbdt *t, struct status_snap *s, bool first);
void status_io_blkdev(const struct status_snap *s, uint32_t id,
		      struct status_io *io);
void status_io_backend(const struct status_snap *s, uint32_t id,
		       struct status_io *io);

/* status-cache.c: the caches, sampled like the channels (@first, then
 * the end of the window); the one of backend @id (NULL if none); how
 * its state reads ("running", "stopped, dirty: kept for its backend's
 * restart", ...); the hit ratio of what was read through it (-1: none). */
int status_cache_sample(const struct cbdt *t, struct status_snap *s,
			bool first);
const struct status_cache *status_cache_of(const struct status_snap *s,
					   uint32_t backend_id);
/* A cache runs only while its backend is alive: after the liveness. */
void status_cache_liveness(struct status_snap *s);
const char *status_cache_state(const struct status_cache *c);
double status_cache_hit_ratio(const struct status_cache *c);
/* A stopped cache that still holds writes not on its disk. */
bool status_cache_dirty_kept(const struct status_cache *c);

/*
 * What --check reports: every dead host, backend or blkdev, every LOST
 * channel, every object with new errors in the window and every stopped
 * cache holding data not written back, one line each
 * on @f.  Returns how many problems.
 */
unsigned status_check(const struct status_snap *s, FILE *f);

/* Names used by both output formats. */
const char *status_role_name(uint16_t role);
const char *status_seg_type_name(uint16_t type);
const char *status_handler_name(const struct status_segment *g);
const char *status_client_name(const struct status_segment *g);
const char *status_rec_name(enum status_rec rec);
void status_uuid_format(const uint8_t uuid[16], char buf[37]);

/* Hostname of host @id if its record is valid, else NULL. */
const char *status_hostname(const struct status_snap *s, uint32_t id);

/* status-json.c: one object as documented in the README; NULL on ENOMEM. */
json_t *status_json(const struct status_snap *s, bool all);

/* status-table.c: the human tables; 0 or -errno (write error). */
int status_table_print(FILE *f, const struct status_snap *s, bool all);

#endif /* CBD_TOOLS_STATUS_H */
