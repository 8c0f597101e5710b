/* SPDX-License-Identifier: MIT */
/*
 * Slots: owner words changed only by CAS, double-buffered records,
 * heartbeats, backend identities.  Any thread or process may call these
 * concurrently; a record has one writer (the slot's owner) and any number
 * of readers.  The policies built on slots (the janitor lease, the
 * backends' writable locks) are in lease.c.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "barrier.h"
#include "cbdt.h"

/*
 * A reader racing a writer that rewrites back to back may see both copies
 * torn; only a real corruption (or a writer dead mid-write twice) keeps
 * them so.  Bounded at about a millisecond.
 */
#define RECORD_READ_TRIES 1000

static const char *const obj_names[CBDT_OBJ_NR] = {
	[CBDT_OBJ_HOST] = "host",
	[CBDT_OBJ_BACKEND] = "backend",
	[CBDT_OBJ_BLKDEV] = "blkdev",
	[CBDT_OBJ_SEGMENT] = "segment",
};

const char *cbdt_obj_name(enum cbdt_obj type)
{
	if ((unsigned)type >= CBDT_OBJ_NR)
		return "unknown";
	return obj_names[type];
}

static const struct cbdt_area *slot_area(const struct cbdt *t,
					 enum cbdt_obj type)
{
	const struct cbdt_info *in = cbdt_get_info(t);

	switch (type) {
	case CBDT_OBJ_HOST:
		return &in->hosts;
	case CBDT_OBJ_BACKEND:
		return &in->backends;
	case CBDT_OBJ_BLKDEV:
		return &in->blkdevs;
	case CBDT_OBJ_SEGMENT:
		return &in->segments;
	default:
		return NULL;
	}
}

uint32_t cbdt_slot_count(const struct cbdt *t, enum cbdt_obj type)
{
	const struct cbdt_area *a = slot_area(t, type);

	return a ? a->count : 0;
}

struct cbdt_slot *cbdt_slot_get(const struct cbdt *t, enum cbdt_obj type,
				uint32_t id)
{
	const struct cbdt_area *a = slot_area(t, type);

	/* The area was validated against the mapping at open. */
	if (!a || id >= a->count)
		return NULL;
	return (struct cbdt_slot *)((uint8_t *)cbdt_base(t) + a->off +
				    (uint64_t)id * a->entry_size);
}

uint64_t cbdt_slot_owner(const struct cbdt *t, enum cbdt_obj type, uint32_t id)
{
	struct cbdt_slot *s = cbdt_slot_get(t, type, id);

	if (!s)
		return 0;
	/* Pairs with the CAS (acq_rel) of whoever last claimed, took over or
	 * released the slot: their record writes before it are visible. */
	return smp_load_acquire(&s->hdr.owner);
}

/* A host slot's owner field is the host's own id (layout.h). */
static uint16_t owner_host(enum cbdt_obj type, uint32_t id, uint16_t host_id)
{
	return type == CBDT_OBJ_HOST ? (uint16_t)id : host_id;
}

/* One CAS attempt loop on one slot: 0 if won, -EBUSY if not FREE. */
static int slot_claim_one(struct cbdt_slot *s, enum cbdt_obj type, uint32_t id,
			  uint16_t host_id, uint64_t *owner)
{
	/* Pairs with the CAS of the last releaser. */
	uint64_t cur = smp_load_acquire(&s->hdr.owner);
	uint64_t next;

	for (;;) {
		if (CBDT_OWNER_STATE(cur) != CBDT_SLOT_FREE)
			return -EBUSY;
		next = CBDT_OWNER_MAKE(
			CBDT_SLOT_ACTIVE, owner_host(type, id, host_id),
			(CBDT_OWNER_GEN(cur) + 1) & CBDT_GEN_MASK);
		/* The CAS is the claim: of all racers exactly one sees cur. */
		if (cmpxchg(&s->hdr.owner, &cur, next)) {
			*owner = next;
			return 0;
		}
	}
}

int cbdt_slot_claim(struct cbdt *t, enum cbdt_obj type, int want,
		    uint16_t host_id, uint64_t *owner)
{
	uint32_t count = cbdt_slot_count(t, type);
	uint64_t o;

	if ((unsigned)type >= CBDT_OBJ_NR)
		return -EINVAL;
	if (type != CBDT_OBJ_HOST && host_id == CBDT_HOST_NONE)
		return -EINVAL;
	if (want >= 0) {
		int ret;

		if ((uint32_t)want >= count)
			return -ERANGE;
		ret = slot_claim_one(cbdt_slot_get(t, type, (uint32_t)want),
				     type, (uint32_t)want, host_id, &o);
		if (ret)
			return ret;
		if (owner)
			*owner = o;
		return want;
	}
	for (uint32_t id = 0; id < count; id++) {
		if (slot_claim_one(cbdt_slot_get(t, type, id), type, id,
				   host_id, &o))
			continue;
		if (owner)
			*owner = o;
		return (int)id;
	}
	return -ENOSPC;
}

int cbdt_slot_release(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		      uint64_t owner)
{
	struct cbdt_slot *s = cbdt_slot_get(t, type, id);
	uint64_t cur = owner;

	if (!s)
		return -ERANGE;
	if (CBDT_OWNER_STATE(owner) != CBDT_SLOT_ACTIVE)
		return -EINVAL;
	/* Keep the generation: the next claim bumps it.  Release ordering
	 * publishes our last record writes to the next claimer. */
	if (!cmpxchg(&s->hdr.owner, &cur,
		     CBDT_OWNER_MAKE(CBDT_SLOT_FREE, 0, CBDT_OWNER_GEN(owner))))
		return -ESTALE;
	return 0;
}

int cbdt_slot_takeover(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		       uint64_t old, uint16_t host_id, uint64_t *owner)
{
	struct cbdt_slot *s = cbdt_slot_get(t, type, id);
	uint64_t cur = old, next;

	if (!s)
		return -ERANGE;
	if (CBDT_OWNER_STATE(old) != CBDT_SLOT_ACTIVE)
		return -EINVAL;
	if (type != CBDT_OBJ_HOST && host_id == CBDT_HOST_NONE)
		return -EINVAL;
	next = CBDT_OWNER_MAKE(CBDT_SLOT_ACTIVE, owner_host(type, id, host_id),
			       (CBDT_OWNER_GEN(old) + 1) & CBDT_GEN_MASK);
	/* Pairs with the claim/takeover CAS that installed @old. */
	if (!cmpxchg(&s->hdr.owner, &cur, next))
		return -ESTALE;
	if (owner)
		*owner = next;
	return 0;
}

void cbdt_slot_heartbeat(struct cbdt *t, enum cbdt_obj type, uint32_t id)
{
	struct cbdt_slot *s = cbdt_slot_get(t, type, id);

	/* Pairs with the observers' load-acquire of the counter. */
	if (s)
		atomic_add_release(&s->hdr.heartbeat, 1);
}

uint64_t cbdt_slot_heartbeat_read(const struct cbdt *t, enum cbdt_obj type,
				  uint32_t id)
{
	struct cbdt_slot *s = cbdt_slot_get(t, type, id);

	/* Pairs with atomic_add_release in cbdt_slot_heartbeat. */
	return s ? smp_load_acquire(&s->hdr.heartbeat) : 0;
}

/* ---- records ---- */

static uint32_t rec_crc(const struct cbdt_rec *r)
{
	return cbdt_crc32c(0, (const uint8_t *)r + 4, sizeof(*r) - 4);
}

static bool seq_newer(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b) > 0;
}

/* Copy a copy to private memory and judge the private copy only. */
static bool rec_copy_valid(const struct cbdt_rec *shared, struct cbdt_rec *r)
{
	/* Pairs with the store-release of crc in cbdt_record_write: a crc
	 * seen here comes with the body it was computed over, unless the
	 * body is being rewritten again, which the crc check catches. */
	r->hdr.crc = smp_load_acquire(&shared->hdr.crc);
	memcpy((uint8_t *)r + 4, (const uint8_t *)shared + 4, sizeof(*r) - 4);
	return r->hdr.seq != 0 && r->hdr.len <= CBDT_REC_PAYLOAD &&
	       r->hdr.crc == rec_crc(r);
}

int cbdt_record_write(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		      const void *rec, size_t len)
{
	struct cbdt_slot *s = cbdt_slot_get(t, type, id);
	struct cbdt_rec c[2], img;
	bool ok[2];
	uint64_t newest = 0;
	int dst;

	if (!s)
		return -ERANGE;
	if (len > CBDT_REC_PAYLOAD || (len && !rec))
		return -EINVAL;
	for (int i = 0; i < 2; i++)
		ok[i] = rec_copy_valid(&s->rec[i], &c[i]);
	if (ok[0] && ok[1]) {
		dst = seq_newer(c[0].hdr.seq, c[1].hdr.seq) ? 1 : 0;
		newest = c[1 - dst].hdr.seq;
	} else if (ok[0] || ok[1]) {
		/* Keep the only good copy intact; overwrite the other. */
		dst = ok[0] ? 1 : 0;
		newest = c[1 - dst].hdr.seq;
	} else {
		dst = 0;
		newest = seq_newer(c[1].hdr.seq, c[0].hdr.seq) ? c[1].hdr.seq :
								 c[0].hdr.seq;
	}

	memset(&img, 0, sizeof(img));
	img.hdr.len = (uint32_t)len;
	img.hdr.seq = newest + 1 ? newest + 1 : 1; /* 0 means unwritten */
	if (len)
		memcpy(img.payload, rec, len);
	img.hdr.crc = rec_crc(&img);

	/* Body first, then the crc that makes it valid.  Invalidating the
	 * old crc first keeps a reader from pairing it with the new body. */
	WRITE_ONCE(s->rec[dst].hdr.crc, ~img.hdr.crc);
	smp_mb();
	memcpy((uint8_t *)&s->rec[dst] + 4, (uint8_t *)&img + 4,
	       sizeof(img) - 4);
	/* Pairs with the load-acquire of crc in rec_copy_valid. */
	smp_store_release(&s->rec[dst].hdr.crc, img.hdr.crc);
	return 0;
}

int cbdt_record_read(const struct cbdt *t, enum cbdt_obj type, uint32_t id,
		     void *rec, size_t len, uint64_t *seq)
{
	struct cbdt_slot *s = cbdt_slot_get(t, type, id);
	struct cbdt_rec c[2];
	bool ok[2];
	int best;

	if (!s)
		return -ERANGE;
	if (len && !rec)
		return -EINVAL;
	for (int tries = 1;; tries++) {
		for (int i = 0; i < 2; i++)
			ok[i] = rec_copy_valid(&s->rec[i], &c[i]);
		if (ok[0] || ok[1]) {
			/*
			 * The copy we took may have been rewritten while we
			 * copied the other one (which is then torn); using it
			 * would let this reader go back in time.  Like a
			 * seqlock reader: order the copies before re-reading
			 * both crc words, and retry if a writer touched one.
			 * Pairs with the writer's invalidate + smp_mb.
			 */
			smp_mb();
			if ((READ_ONCE(s->rec[0].hdr.crc) == c[0].hdr.crc &&
			     READ_ONCE(s->rec[1].hdr.crc) == c[1].hdr.crc) ||
			    tries >= RECORD_READ_TRIES)
				break;
		} else if (c[0].hdr.seq == 0 && c[1].hdr.seq == 0) {
			return -ENODATA;
		} else if (tries >= RECORD_READ_TRIES) {
			return -EBADMSG;
		}
		if (tries % 16 == 0)
			sched_yield(); /* let a preempted writer finish */
		else
			cpu_relax();
	}
	if (ok[0] && ok[1])
		best = seq_newer(c[1].hdr.seq, c[0].hdr.seq) ? 1 : 0;
	else
		best = ok[0] ? 0 : 1;

	if (len) {
		size_t n = len < c[best].hdr.len ? len : c[best].hdr.len;

		memcpy(rec, c[best].payload, n);
		memset((uint8_t *)rec + n, 0, len - n);
	}
	if (seq)
		*seq = c[best].hdr.seq;
	return 0;
}

int cbdt_host_read(const struct cbdt *t, uint32_t id, struct cbdt_host_rec *r)
{
	int ret = cbdt_record_read(t, CBDT_OBJ_HOST, id, r, sizeof(*r), NULL);

	/* Strings in shared memory are untrusted: terminate them. */
	if (!ret)
		r->hostname[sizeof(r->hostname) - 1] = '\0';
	return ret;
}

int cbdt_backend_read(const struct cbdt *t, uint32_t id,
		      struct cbdt_backend_rec *r)
{
	int ret =
		cbdt_record_read(t, CBDT_OBJ_BACKEND, id, r, sizeof(*r), NULL);

	if (!ret) {
		r->name[sizeof(r->name) - 1] = '\0';
		r->path[sizeof(r->path) - 1] = '\0';
	}
	return ret;
}

int cbdt_blkdev_read(const struct cbdt *t, uint32_t id,
		     struct cbdt_blkdev_rec *r)
{
	return cbdt_record_read(t, CBDT_OBJ_BLKDEV, id, r, sizeof(*r), NULL);
}

int cbdt_segment_read(const struct cbdt *t, uint32_t id,
		      struct cbdt_segment_rec *r)
{
	return cbdt_record_read(t, CBDT_OBJ_SEGMENT, id, r, sizeof(*r), NULL);
}

/* ---- backend identity ---- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : "");;
	     p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
		if (!*p)
			return h; /* the NUL separates the fields */
	}
}

uint64_t cbdt_backend_ident(const char *hostname, const char *name,
			    const char *path)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = fnv1a(h, hostname);
	h = fnv1a(h, name);
	h = fnv1a(h, path);
	/* splitmix64 finaliser: spread similar names over all 64 bits */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1; /* 0 reads as "no ident" in records */
}
