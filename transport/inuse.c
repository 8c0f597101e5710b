/* SPDX-License-Identifier: MIT */
/*
 * Is anything alive in a transport?  The one rule that every path which
 * formats applies (cbdt_format), so that no option, config or tool can
 * destroy a transport that a live process still uses; and how to name an
 * object in a message.  Reads only; safe beside the objects' owners.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cbdt.h"

/* How often the heartbeats are sampled while deciding. */
#define INUSE_PROBE_MS 50U

struct inuse_cand {
	enum cbdt_obj type;
	uint32_t id;
	uint64_t owner;
	uint64_t hb;
	uint32_t timeout_ms;
};

/*
 * The host record of an object's owner host tells how long its heartbeats
 * may stay still (hb_timeout_ms), and whether it is a process of this very
 * kernel that is gone (same boot id, pid gone): that one is dead now.
 */
static bool owner_gone_here(const struct cbdt *t, uint32_t host_id,
			    const uint8_t boot_id[16], uint32_t *timeout_ms)
{
	struct cbdt_host_rec r;

	*timeout_ms = CBDT_HB_TIMEOUT_DEFAULT_MS;
	if (cbdt_host_read(t, host_id, &r))
		return false;
	if (r.hb_timeout_ms)
		*timeout_ms = r.hb_timeout_ms;
	return boot_id && !memcmp(r.boot_id, boot_id, sizeof(r.boot_id)) &&
	       !cbdt_pid_exists(r.pid);
}

int cbdt_inuse_find(struct cbdt *t, struct cbdt_inuse *who)
{
	static const enum cbdt_obj types[] = {CBDT_OBJ_HOST, CBDT_OBJ_BACKEND,
					      CBDT_OBJ_BLKDEV};
	struct inuse_cand
		cand[CBDT_HOSTS_NR + CBDT_BACKENDS_NR + CBDT_BLKDEVS_NR];
	uint8_t boot_id[16];
	const uint8_t *me = cbdt_boot_id(boot_id) ? NULL : boot_id;
	unsigned n = 0;
	uint64_t start;

	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		uint32_t count = cbdt_slot_count(t, types[i]);

		for (uint32_t id = 0;
		     id < count && n < sizeof(cand) / sizeof(cand[0]); id++) {
			uint64_t owner = cbdt_slot_owner(t, types[i], id);
			struct inuse_cand *c = &cand[n];
			uint32_t host;

			if (CBDT_OWNER_STATE(owner) != CBDT_SLOT_ACTIVE)
				continue;
			host = types[i] == CBDT_OBJ_HOST ?
				       id :
				       CBDT_OWNER_HOST(owner);
			if (owner_gone_here(t, host, me, &c->timeout_ms))
				continue;
			c->type = types[i];
			c->id = id;
			c->owner = owner;
			c->hb = cbdt_slot_heartbeat_read(t, types[i], id);
			n++;
		}
	}

	/*
	 * The janitor's rule: alive once its counter moves (or its slot is
	 * taken by a new owner); dead only after it stayed still for its
	 * host's timeout on our own clock.
	 */
	start = cbdt_now_ms();
	while (n) {
		for (unsigned i = 0; i < n; i++) {
			struct inuse_cand *c = &cand[i];
			uint64_t owner = cbdt_slot_owner(t, c->type, c->id);

			if (CBDT_OWNER_STATE(owner) != CBDT_SLOT_ACTIVE) {
				cand[i--] = cand[--n]; /* released: gone */
				continue;
			}
			if (owner != c->owner ||
			    cbdt_slot_heartbeat_read(t, c->type, c->id) !=
				    c->hb) {
				if (who) {
					who->type = c->type;
					who->id = c->id;
				}
				return 1;
			}
			if (cbdt_now_ms() - start >= c->timeout_ms)
				cand[i--] = cand[--n]; /* still: dead */
		}
		if (n)
			cbdt_sleep_ms(INUSE_PROBE_MS);
	}
	return 0;
}

const char *cbdt_obj_describe(const struct cbdt *t, enum cbdt_obj type,
			      uint32_t id, char *buf, size_t len)
{
	union {
		struct cbdt_host_rec h;
		struct cbdt_backend_rec b;
		struct cbdt_blkdev_rec d;
		struct cbdt_segment_rec g;
	} r;
	int n = snprintf(buf, len, "%s %" PRIu32, cbdt_obj_name(type), id);

	if (n < 0 || (size_t)n >= len)
		return buf;
	switch (type) {
	case CBDT_OBJ_HOST:
		if (!cbdt_host_read(t, id, &r.h))
			snprintf(buf + n, len - n, " (%s, %s, pid %" PRIu32 ")",
				 r.h.hostname,
				 r.h.role == CBDT_ROLE_BACKEND ? "backend" :
				 r.h.role == CBDT_ROLE_CLIENT  ? "client" :
								 "unknown",
				 r.h.pid);
		break;
	case CBDT_OBJ_BACKEND:
		if (!cbdt_backend_read(t, id, &r.b))
			snprintf(buf + n, len - n, " (%.*s, %.*s)",
				 (int)sizeof(r.b.name), r.b.name,
				 (int)sizeof(r.b.path), r.b.path);
		break;
	case CBDT_OBJ_BLKDEV:
		if (!cbdt_blkdev_read(t, id, &r.d))
			snprintf(buf + n, len - n, " (backend %u, host %u)",
				 r.d.backend_id, r.d.host_id);
		break;
	case CBDT_OBJ_SEGMENT:
		if (!cbdt_segment_read(t, id, &r.g) &&
		    r.g.type == CBDT_SEG_CHANNEL)
			snprintf(buf + n, len - n, " (channel %u of blkdev %u)",
				 r.g.queue, r.g.blkdev_id);
		break;
	default:
		break;
	}
	return buf;
}
