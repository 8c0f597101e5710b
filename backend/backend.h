/* SPDX-License-Identifier: MIT */
/*
 * Private header of cbd-backend, one section per file.
 *
 * Threads: the main thread (signals, reload, janitor), one heartbeat
 * thread, one discovery thread and one handler thread per served channel.
 * svc->lock protects the backend list, each backend's handler list and
 * svc->served; a handler thread touches only its struct handler, its
 * channel and its backend's immutable fields (store, id, owner).
 */
#ifndef CBD_BACKEND_BACKEND_H
#define CBD_BACKEND_BACKEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "cbdt.h"
#include "config.h"
#include "worker.h"
#include "store.h"

struct backend;
struct service;

/* One served channel. */
struct handler {
	struct service *svc;
	struct backend *b;
	struct cbdt_channel *ch;
	uint32_t seg_id;
	uint64_t seg_owner; /* segment owner word when attached */
	pthread_t thread;
	uint32_t stop; /* service -> thread: finish and detach */
	uint32_t done; /* thread -> service: exited, join me */
	struct cache_head *cache_head; /* with a cache: where we write */
	uint64_t nr_requests;
	uint64_t nr_errors;
	struct handler *next;
};

/* One [backend NAME] being served. */
struct backend {
	struct config_backend conf;
	struct store store;
	uint32_t id;	/* backend slot */
	uint64_t owner; /* our owner word of that slot */
	uint64_t ident;
	bool lost;	     /* slot taken from us: serve nothing more.
				 * Written by the heartbeat thread, read by
				 * anyone, all under svc->lock (or once b is
				 * unlinked from svc->backends) */
	bool cap_warned;     /* "all handlers busy" logged */
	struct cache *cache; /* NULL: none; immutable while served */
	unsigned nr_handlers;
	struct handler *handlers;
	struct backend *next;
};

/* What discovery remembers of a segment it decided not to serve. */
struct seg_seen {
	uint64_t owner;
	uint64_t seq[2]; /* record copies' seq when judged */
	bool skip;	 /* nothing to do until one of the above moves */
};

struct service {
	struct config *cfg;
	struct cbdt *t;
	uint8_t boot_id[16]; /* this kernel's, as in our host record */
	uint32_t host_id;
	uint64_t host_owner;
	struct cbdt_observer *obs; /* main thread (janitor) only */
	uint32_t hb_interval_ms;   /* immutable (a reload keeps it) */

	pthread_mutex_t lock;
	struct backend *backends;
	struct handler **served; /* [segment] -> handler serving it */
	struct seg_seen *seen;	 /* [segment]: discovery's verdicts,
					 * reset when the set of backends
					 * changes; under lock */
	uint32_t nr_segs;

	uint32_t lost;	    /* host slot taken from us; atomic */
	struct worker hb;   /* heartbeat thread (service.c) */
	struct worker disc; /* discovery thread (discover.c) */
};

/* service.c */
int service_start(struct service *svc, struct config *cfg, bool format,
		  bool force);
void service_stop(struct service *svc);
void service_reload(struct service *svc);
void service_janitor(struct service *svc);
bool service_lost(const struct service *svc);

/* backends.c */
int backend_start(struct service *svc, const struct config_backend *conf);
/* Unlinked from svc->backends already: drain, release, free. */
void backend_stop(struct service *svc, struct backend *b);
void backends_heartbeat(struct service *svc); /* caller holds lock */

/* discover.c */
void discover_scan(struct service *svc); /* caller holds lock */
int discover_start(struct service *svc);
void discover_stop(struct service *svc);

/* handler.c */
int handler_start(struct service *svc, struct backend *b, uint32_t seg_id,
		  uint64_t seg_owner, struct cbdt_channel *ch);
/* Join the handlers that exited (caller holds svc->lock). */
void handlers_reap(struct service *svc, struct backend *b);
/* Stop and join all handlers of @b, no longer reachable by discovery. */
void handlers_stop(struct backend *b);

#endif /* CBD_BACKEND_BACKEND_H */
