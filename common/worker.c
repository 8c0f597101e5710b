/* SPDX-License-Identifier: MIT */
/* Stoppable worker threads (worker.h). */
#include <errno.h>

#include "cbdt.h"
#include "util.h"
#include "worker.h"

int worker_start(struct worker *w, const char *name, void *(*fn)(void *),
		 void *arg)
{
	int ret;

	pthread_mutex_init(&w->lock, NULL);
	cbdt_cond_init_mono(&w->cond);
	w->stop = false;
	ret = pthread_create(&w->thread, NULL, fn, arg);
	if (ret) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		return -ret;
	}
	thread_name(w->thread, "%s", name);
	w->started = true;
	return 0;
}

bool worker_sleep(struct worker *w, uint32_t ms)
{
	uint64_t deadline = cbdt_now_ns() + (uint64_t)ms * 1000000ULL;
	bool running;

	pthread_mutex_lock(&w->lock);
	while (!w->stop && !cbdt_cond_wait_until(&w->cond, &w->lock, deadline))
		;
	running = !w->stop;
	pthread_mutex_unlock(&w->lock);
	return running;
}

void worker_stop(struct worker *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	w->started = false;
}
