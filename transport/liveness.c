/* SPDX-License-Identifier: MIT */
/*
 * Heartbeat observers: an object is alive while its counter keeps moving on
 * the observer's own CLOCK_MONOTONIC; clocks of other hosts are never read.
 * An observer is private to one thread; the slots it samples are shared.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "barrier.h"
#include "cbdt.h"

struct obs_entry {
	uint64_t owner;	     /* owner word at the last sample */
	uint64_t hb;	     /* heartbeat at the last sample */
	uint64_t moved_ns;   /* when hb last changed (or window start) */
	uint64_t sampled_ns; /* when last sampled */
	bool seen;
	bool moved; /* hb changed at least once since first seen */
};

struct cbdt_observer {
	const struct cbdt *t;
	uint64_t timeout_ns;
	uint32_t count[CBDT_OBJ_NR];
	struct obs_entry *ent[CBDT_OBJ_NR];
};

uint64_t cbdt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t cbdt_now_ms(void)
{
	return cbdt_now_ns() / 1000000ULL;
}

int cbdt_observer_new(const struct cbdt *t, uint32_t timeout_ms,
		      struct cbdt_observer **out)
{
	struct cbdt_observer *obs;

	if (!t || !out || !timeout_ms)
		return -EINVAL;
	obs = calloc(1, sizeof(*obs));
	if (!obs)
		return -ENOMEM;
	obs->t = t;
	obs->timeout_ns = (uint64_t)timeout_ms * 1000000ULL;
	for (int type = 0; type < CBDT_OBJ_NR; type++) {
		obs->count[type] = cbdt_slot_count(t, type);
		obs->ent[type] = calloc(obs->count[type] ? obs->count[type] : 1,
					sizeof(struct obs_entry));
		if (!obs->ent[type]) {
			cbdt_observer_free(obs);
			return -ENOMEM;
		}
	}
	*out = obs;
	return 0;
}

void cbdt_observer_free(struct cbdt_observer *obs)
{
	if (!obs)
		return;
	for (int type = 0; type < CBDT_OBJ_NR; type++)
		free(obs->ent[type]);
	free(obs);
}

static struct obs_entry *obs_entry(const struct cbdt_observer *obs,
				   enum cbdt_obj type, uint32_t id)
{
	if ((unsigned)type >= CBDT_OBJ_NR || id >= obs->count[type])
		return NULL;
	return &obs->ent[type][id];
}

static void obs_sample_one(struct cbdt_observer *obs, enum cbdt_obj type,
			   uint32_t id, struct obs_entry *e, uint64_t now)
{
	uint64_t owner = cbdt_slot_owner(obs->t, type, id);
	uint64_t hb = cbdt_slot_heartbeat_read(obs->t, type, id);

	e->sampled_ns = now;
	if (!e->seen || owner != e->owner) {
		/* New object (or a new generation of it): fresh window. */
		e->seen = true;
		e->owner = owner;
		e->hb = hb;
		e->moved_ns = now;
		e->moved = false;
		return;
	}
	if (hb != e->hb) {
		e->hb = hb;
		e->moved_ns = now;
		e->moved = true;
	}
}

static bool obs_entry_alive(const struct cbdt_observer *obs,
			    const struct obs_entry *e)
{
	return e->seen && CBDT_OWNER_STATE(e->owner) == CBDT_SLOT_ACTIVE &&
	       e->sampled_ns - e->moved_ns < obs->timeout_ns;
}

void cbdt_observer_sample(struct cbdt_observer *obs)
{
	uint64_t now = cbdt_now_ns();

	for (int type = 0; type < CBDT_OBJ_NR; type++)
		for (uint32_t id = 0; id < obs->count[type]; id++)
			obs_sample_one(obs, type, id, &obs->ent[type][id], now);
}

bool cbdt_observer_alive(struct cbdt_observer *obs, enum cbdt_obj type,
			 uint32_t id)
{
	struct obs_entry *e = obs_entry(obs, type, id);

	if (!e)
		return false;
	obs_sample_one(obs, type, id, e, cbdt_now_ns());
	return obs_entry_alive(obs, e);
}

uint64_t cbdt_observer_age_ms(const struct cbdt_observer *obs,
			      enum cbdt_obj type, uint32_t id)
{
	const struct obs_entry *e = obs_entry(obs, type, id);

	if (!e || !e->seen)
		return 0;
	return (e->sampled_ns - e->moved_ns) / 1000000ULL;
}

const struct cbdt *cbdt_observer_transport(const struct cbdt_observer *obs)
{
	return obs->t;
}

void cbdt_sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
