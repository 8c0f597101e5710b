/* SPDX-License-Identifier: MIT */
/*
 * A worker thread that sleeps between rounds and stops at once when told
 * to: the discovery and heartbeat threads of cbd-backend, the heartbeat
 * thread of cbdfs.  worker_start/worker_stop from the owner's thread;
 * worker_sleep from the worker itself.
 */
#ifndef CBD_COMMON_WORKER_H
#define CBD_COMMON_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* under lock */
	bool started;
};

/* Start @fn(@arg) on a new thread; 0 or -errno. */
int worker_start(struct worker *w, const char *name, void *(*fn)(void *),
		 void *arg);

/* In the worker: sleep @ms (CLOCK_MONOTONIC) unless told to stop
 * meanwhile; false once stopping. */
bool worker_sleep(struct worker *w, uint32_t ms);

/* Tell the worker to stop, wake it and join it; no-op if never started. */
void worker_stop(struct worker *w);

#endif /* CBD_COMMON_WORKER_H */
