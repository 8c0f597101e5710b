/* SPDX-License-Identifier: MIT */
/*
 * Policies built on slots: the transport-wide janitor lease (one janitor
 * pass at a time, stolen from a host that died holding it) and each
 * backend's writable-mapping lock (one writer blkdev across hosts, taken
 * over from a blkdev that is gone).  Every change is a CAS on a shared
 * word; any thread or process may call these concurrently.
 */
#include <errno.h>

#include "barrier.h"
#include "cbdt.h"

static uint64_t *janitor_lease_word(struct cbdt *t)
{
	struct cbdt_global *g = (struct cbdt_global *)((uint8_t *)cbdt_base(t) +
						       CBDT_GLOBAL_OFF);

	return &g->janitor_lease;
}

/* The lease this host would hold now: 0 if it holds no ACTIVE slot. */
static uint64_t janitor_lease_mine(struct cbdt *t, uint32_t host_id)
{
	uint64_t o = cbdt_slot_owner(t, CBDT_OBJ_HOST, host_id);

	if (CBDT_OWNER_STATE(o) != CBDT_SLOT_ACTIVE ||
	    CBDT_OWNER_HOST(o) != host_id)
		return 0;
	return cbdt_lease_make(host_id, CBDT_OWNER_GEN(o));
}

/* A lease is stale once its host slot moved to another generation or the
 * observer saw the host die. */
static bool janitor_lease_stale(struct cbdt *t, uint64_t lease,
				struct cbdt_observer *obs)
{
	uint32_t holder = cbdt_lease_id(lease);
	uint64_t o;

	if (holder >= cbdt_slot_count(t, CBDT_OBJ_HOST))
		return true;
	o = cbdt_slot_owner(t, CBDT_OBJ_HOST, holder);
	if (CBDT_OWNER_STATE(o) != CBDT_SLOT_ACTIVE ||
	    (CBDT_OWNER_GEN(o) & CBDT_GEN_MASK) != cbdt_lease_gen(lease))
		return true;
	return obs && !cbdt_observer_alive(obs, CBDT_OBJ_HOST, holder);
}

int cbdt_janitor_lease_acquire(struct cbdt *t, uint32_t host_id,
			       struct cbdt_observer *obs)
{
	uint64_t *lease = janitor_lease_word(t);
	uint64_t mine = janitor_lease_mine(t, host_id);
	uint64_t cur;

	if (!mine)
		return -EINVAL;
	/* Pairs with the CAS of the previous holder's release. */
	cur = smp_load_acquire(lease);
	for (;;) {
		if (cur == mine)
			return 0;
		if (cur && !janitor_lease_stale(t, cur, obs))
			return -EBUSY;
		/* Free or stale: exactly one racer replaces @cur. */
		if (cmpxchg(lease, &cur, mine))
			return 0;
	}
}

void cbdt_janitor_lease_release(struct cbdt *t, uint32_t host_id)
{
	uint64_t mine = janitor_lease_mine(t, host_id);
	uint64_t cur = mine;

	/* Only our own lease: if our slot was taken over, the lease is
	 * stale for everybody and will be stolen instead. */
	if (mine)
		cmpxchg(janitor_lease_word(t), &cur, 0);
}

int cbdt_backend_lock(struct cbdt *t, uint32_t backend_id, uint32_t blkdev_id,
		      uint64_t blkdev_owner)
{
	struct cbdt_slot *s = cbdt_slot_get(t, CBDT_OBJ_BACKEND, backend_id);
	uint64_t mine, cur, o;

	if (!s || blkdev_id >= cbdt_slot_count(t, CBDT_OBJ_BLKDEV))
		return -ERANGE;
	mine = cbdt_lease_make(blkdev_id, CBDT_OWNER_GEN(blkdev_owner));
	/* Pairs with the CAS of the last locker or unlocker. */
	cur = smp_load_acquire(&s->hdr.lock);
	for (;;) {
		if (cur == mine)
			return 0;
		if (cur) {
			uint32_t holder = cbdt_lease_id(cur);

			o = cbdt_slot_owner(t, CBDT_OBJ_BLKDEV, holder);
			if (holder < cbdt_slot_count(t, CBDT_OBJ_BLKDEV) &&
			    CBDT_OWNER_STATE(o) == CBDT_SLOT_ACTIVE &&
			    (CBDT_OWNER_GEN(o) & CBDT_GEN_MASK) ==
				    cbdt_lease_gen(cur))
				return -EBUSY;
		}
		/* Free, or its blkdev moved on: replace it. */
		if (cmpxchg(&s->hdr.lock, &cur, mine))
			return 0;
	}
}

void cbdt_backend_unlock(struct cbdt *t, uint32_t backend_id,
			 uint32_t blkdev_id, uint64_t blkdev_owner)
{
	struct cbdt_slot *s = cbdt_slot_get(t, CBDT_OBJ_BACKEND, backend_id);
	uint64_t cur = cbdt_lease_make(blkdev_id, CBDT_OWNER_GEN(blkdev_owner));

	if (s)
		cmpxchg(&s->hdr.lock, &cur, 0);
}

int cbdt_backend_lock_holder(const struct cbdt *t, uint32_t backend_id,
			     uint32_t *blkdev_id)
{
	struct cbdt_slot *s = cbdt_slot_get(t, CBDT_OBJ_BACKEND, backend_id);
	uint64_t cur;

	if (!s)
		return -ERANGE;
	/* Pairs with the CAS of the last locker or unlocker. */
	cur = smp_load_acquire(&s->hdr.lock);
	if (!cur)
		return -ENOENT;
	*blkdev_id = cbdt_lease_id(cur);
	return 0;
}
