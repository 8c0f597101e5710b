/* SPDX-License-Identifier: MIT */
/*
 * cbd-testclient: a client host built on libcbdt alone, for the backend's
 * e2e tests.  One process is one host with at most one mapped blkdev.  All
 * I/O runs in the main thread; a second thread only bumps heartbeats.
 */
#ifndef CBD_TOOLS_TESTCLIENT_H
#define CBD_TOOLS_TESTCLIENT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "cbdt.h"

#define TC_IOS	 1024U	    /* requests in flight, all queues */
#define TC_CHUNK (1U << 20) /* largest single request */

struct tc;
struct tc_io;

/* Called once per completion, in the main thread (it may submit). */
typedef void (*tc_done_fn)(struct tc *tc, const struct tc_io *io, int result);

/* One request in flight: the cookie of its queue slot. */
struct tc_io {
	void *rbuf; /* READ: where the data goes */
	tc_done_fn done;
	uint64_t user[3]; /* caller's bookkeeping */
	uint64_t start_ns;
};

struct tc {
	const char *path;
	struct cbdt *t;
	uint32_t host_id;
	uint64_t host_owner;
	bool registered;
	struct cbdt_blkdev *b;	/* NULL when nothing is mapped */
	pthread_mutex_t b_lock; /* b against the heartbeat thread */

	uint32_t io_timeout_ms; /* 0: wait for ever (backend restarts) */
	struct cbdt_queue *q[CBDT_QUEUES_MAX]; /* one per channel of b */
	unsigned inflight;
	unsigned next_q;
	uint64_t last_progress_ns;
	uint64_t max_lat_ns;
	int fatal; /* first broken-channel error */
	struct cbdt_wait w;
	bool quiet;
};

extern volatile sig_atomic_t tc_stop; /* SIGINT/SIGTERM seen */

/* ---- testclient-io.c: the request engine and the data pattern ---- */

/*
 * Submit one request of at most TC_CHUNK bytes; waits (reaping) while no
 * slot, ring entry or data space is free.  @wdata: WRITE payload; @rbuf:
 * READ destination.  0 or -errno (a broken channel or the I/O timeout).
 */
int tc_submit(struct tc *tc, uint16_t op, uint16_t flags, uint64_t off,
	      uint32_t len, const void *wdata, void *rbuf, tc_done_fn done,
	      const uint64_t user[3]);

/* The queues of a freshly mapped tc->b / their end before the unmap. */
int tc_queues_open(struct tc *tc);
void tc_queues_close(struct tc *tc);

/* Reap what is there: completions handled, or -errno. */
int tc_poll(struct tc *tc);

/* Wait until at least one completion was handled (or -errno). */
int tc_wait_some(struct tc *tc);

/* Wait until nothing is in flight (or -errno). */
int tc_drain(struct tc *tc);

/*
 * One operation over any range, split into TC_CHUNK requests that run
 * concurrently: the first failing request's -errno, else 0.
 */
int tc_sync(struct tc *tc, uint16_t op, uint16_t flags, uint64_t off,
	    uint64_t len, const void *wdata, void *rbuf);

/* Deterministic content: byte at device offset @off under @seed. */
void tc_pattern_fill(void *buf, uint64_t off, uint64_t len, uint64_t seed);
uint8_t tc_pattern_byte(uint64_t off, uint64_t seed);

/* ---- testclient-stress.c ---- */

int tc_cmd_stress(struct tc *tc, int argc, char **argv, int *used);
int tc_cmd_verify_log(struct tc *tc, const char *file);

/* ---- testclient-cmds.c ---- */

int tc_cmd_write(struct tc *tc, uint64_t off, uint64_t len, uint64_t seed,
		 uint16_t flags);
int tc_cmd_read(struct tc *tc, uint64_t off, uint64_t len, uint64_t seed,
		bool zero);
int tc_cmd_status(struct tc *tc);
int tc_cmd_badentry(struct tc *tc, const char *kind);
int tc_cmd_badcompletion(struct tc *tc, uint32_t seg);

#endif /* CBD_TOOLS_TESTCLIENT_H */
