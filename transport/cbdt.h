/* SPDX-License-Identifier: MIT */
/*
 * libcbdt: the cbd transport library.
 *
 * Maps a transport (file or /dev/daxX.Y), validates and formats it, claims
 * and releases slots, reads and writes records, keeps heartbeats, observes
 * liveness, and moves requests through channel rings.
 *
 * Conventions: every function returns 0 (or a non-negative count/id) on
 * success and -errno on failure; the library never prints and never exits.
 * A struct cbdt may be used from many threads: the mapping is immutable
 * after open and every shared word is accessed through barrier.h.  A struct
 * cbdt_channel is single-threaded per side: the caller serialises the
 * producer calls (submit, data_alloc/free) and the consumer calls (reap) of
 * the client, and all handler calls.  Observers are single-threaded.
 */
#ifndef CBD_TRANSPORT_CBDT_H
#define CBD_TRANSPORT_CBDT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

struct cbdt;
struct cbdt_channel;
struct cbdt_observer;
struct cbdt_inuse;

/* ------------------------------------------------------------------ */
/* transport.c: map, validate, format (info.c: layout, info checks)    */
/* ------------------------------------------------------------------ */

/*
 * Distinct errors of cbdt_open()/cbdt_validate(), so that tools can say
 * exactly what is wrong:
 *   -ENOENT          path does not exist
 *   -ENOSPC          mapping too small to hold a transport (or to format)
 *   -ENODATA         not formatted: both info copies are all zero
 *   -EMEDIUMTYPE     bad magic in both copies (not a cbd transport)
 *   -EBADMSG         magic present but no copy with a valid crc
 *   -EPROTONOSUPPORT format version or endianness not supported
 *   -ERANGE          a valid info whose layout does not fit the mapping
 *                    (truncated file) or is inconsistent
 *   -ENODEV          neither a regular file nor a dax device (a block
 *                    device such as /dev/pmem0 is refused: each kernel
 *                    maps it through its own page cache)
 *   -EADDRINUSE      a dax device in system-ram mode
 *   -EREMOTE         a file on a network (or FUSE) file system
 * cbdt_strerror() turns any of these (and plain errnos) into a sentence.
 */
const char *cbdt_strerror(int err);

#define CBDT_MAP_RDONLY (1U << 0) /* PROT_READ mapping (cbd-status) */

/*
 * Smallest size cbdt_format() accepts: metadata plus one segment.
 * Formatting anything smaller fails with -ENOSPC.
 */
uint64_t cbdt_min_size(void);

/*
 * Create a regular file transport of @size bytes (sparse) if @path does
 * not exist; -EEXIST if it does.  Does not format.
 */
int cbdt_file_create(const char *path, uint64_t size);

/* Map @path without validating it (for format).  *out on success. */
int cbdt_map(const char *path, unsigned map_flags, struct cbdt **out);

/* Map and validate: the normal way in.  Errors as listed above. */
int cbdt_open(const char *path, unsigned map_flags, struct cbdt **out);

/* Unmap and free; NULL is fine. */
void cbdt_close(struct cbdt *t);

/*
 * Validate the info of a mapped transport: magic, versions, both copies
 * (newest valid wins), crc, every offset and size against the mapping.
 * On success the validated info is cached in @t and cbdt_get_info()
 * returns it.  Errors as listed above.
 */
int cbdt_validate(struct cbdt *t);

/*
 * Pure validation of a raw image of @len bytes (the first bytes of a
 * transport; @map_size is the size of the whole mapping).  On success
 * copies the winning info into *out.  Used by cbdt_validate and the fuzzer.
 */
int cbdt_info_check(const void *image, size_t len, uint64_t map_size,
		    struct cbdt_info *out);

/* True if the info area (first 1 MiB or the whole mapping) is all zero. */
bool cbdt_is_blank(const struct cbdt *t);

#define CBDT_FORMAT_FORCE (1U << 0)

/*
 * Format a mapped transport: compute the layout from the mapping size,
 * zero the metadata, write both info copies.  @flags: CBDT_F_* to enable
 * entry/data CRCs.  The rules, the same for every program:
 *   -EBUSY      it validates and something in it is alive
 *               (cbdt_inuse_find; *busy names it if given), whatever
 *               @format_flags say; this may take a heartbeat timeout;
 *   -EEXIST     it validates, and CBDT_FORMAT_FORCE was not given;
 *   -ENOTEMPTY  it does not validate but is not blank either (something
 *               else lives there), and CBDT_FORMAT_FORCE was not given;
 *   -ENOSPC     too small.
 */
int cbdt_format(struct cbdt *t, uint16_t flags, unsigned format_flags,
		struct cbdt_inuse *busy);

/*
 * Segment @id in the mapping (its first byte), and its channel control
 * area (a channel's first CBDT_CTRL_SIZE bytes, not validated: see
 * cbdt_channel_ctrl_validate); NULL if out of range.  The one place that
 * knows where segments live.
 */
void *cbdt_segment_base(const struct cbdt *t, uint32_t id);
struct cbdt_channel_ctrl *cbdt_segment_ctrl(const struct cbdt *t, uint32_t id);

/* Compute the layout for @size bytes (no I/O); -ENOSPC if too small. */
int cbdt_layout_compute(uint64_t size, uint16_t flags, struct cbdt_info *out);

const struct cbdt_info *cbdt_get_info(const struct cbdt *t);
const char *cbdt_path(const struct cbdt *t);
uint64_t cbdt_map_size(const struct cbdt *t);

/*
 * True if @t is a dax device whose namespace keeps its page map on the
 * device (ndctl create-namespace --map=dev): every kernel that maps it
 * writes its struct pages into it, so two hosts must never share it.
 * Callers warn; it still works for one host.
 */
bool cbdt_dax_pagemap_on_device(const struct cbdt *t);

/* True if @t is a dax device, false for a regular file. */
bool cbdt_is_dax(const struct cbdt *t);
void *cbdt_base(const struct cbdt *t); /* start of the mapping */

/* ------------------------------------------------------------------ */
/* slot.c: slots, owner words, records, heartbeats (lease.c: leases)   */
/* ------------------------------------------------------------------ */

enum cbdt_obj {
	CBDT_OBJ_HOST = 0,
	CBDT_OBJ_BACKEND = 1,
	CBDT_OBJ_BLKDEV = 2,
	CBDT_OBJ_SEGMENT = 3,
	CBDT_OBJ_NR
};

const char *cbdt_obj_name(enum cbdt_obj type); /* "host", "backend", ... */

/* Number of slots of @type in this transport. */
uint32_t cbdt_slot_count(const struct cbdt *t, enum cbdt_obj type);

/* Pointer to a slot in shared memory, NULL if @id is out of range. */
struct cbdt_slot *cbdt_slot_get(const struct cbdt *t, enum cbdt_obj type,
				uint32_t id);

/* Current owner word (load-acquire; pairs with the CAS that set it). */
uint64_t cbdt_slot_owner(const struct cbdt *t, enum cbdt_obj type, uint32_t id);

/*
 * Claim a free slot for @host_id: CAS FREE(gen g) -> ACTIVE(gen g+1, host).
 * @want < 0: the lowest free id; @want >= 0: exactly that id (-EBUSY if
 * taken, -ERANGE if out of range).  -ENOSPC if no slot is free.  On success
 * returns the id and stores the new owner word in *owner.  The records are
 * left as they were (a restarted backend looks for its old slot by the
 * ident in them); the claimer writes its record next.  The heartbeat keeps
 * counting from where it was.  Two claimers racing for one slot: exactly
 * one wins.
 */
int cbdt_slot_claim(struct cbdt *t, enum cbdt_obj type, int want,
		    uint16_t host_id, uint64_t *owner);

/*
 * Release a slot: CAS @owner -> FREE (same generation).  -ESTALE if the
 * owner word is no longer @owner (someone took the slot over).
 */
int cbdt_slot_release(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		      uint64_t owner);

/*
 * Take over an ACTIVE slot: CAS @old -> ACTIVE(gen+1, @host_id).  Used by a
 * restarted daemon to re-adopt its own slots.  -ESTALE if the owner word is
 * not @old.  New owner word in *owner.
 */
int cbdt_slot_takeover(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		       uint64_t old, uint16_t host_id, uint64_t *owner);

/* Bump the heartbeat counter (owner only; store-release). */
void cbdt_slot_heartbeat(struct cbdt *t, enum cbdt_obj type, uint32_t id);

/* Sample the heartbeat counter (load-acquire). */
uint64_t cbdt_slot_heartbeat_read(const struct cbdt *t, enum cbdt_obj type,
				  uint32_t id);

/*
 * Write a record: rewrite the older copy with seq = newest seq + 1, then its
 * crc.  @len <= CBDT_REC_PAYLOAD (-EINVAL otherwise).  Owner only.
 */
int cbdt_record_write(struct cbdt *t, enum cbdt_obj type, uint32_t id,
		      const void *rec, size_t len);

/*
 * Read the newest copy with a valid crc into @rec (@len bytes, zero padded
 * if the stored record is shorter).  -ENODATA if never written (both seq 0),
 * -EBADMSG if no copy is valid.  Returns 0; *seq (optional) gets the
 * winning copy's seq.
 */
int cbdt_record_read(const struct cbdt *t, enum cbdt_obj type, uint32_t id,
		     void *rec, size_t len, uint64_t *seq);

/* Typed helpers around cbdt_record_read/write. */
int cbdt_host_read(const struct cbdt *t, uint32_t id, struct cbdt_host_rec *r);
int cbdt_backend_read(const struct cbdt *t, uint32_t id,
		      struct cbdt_backend_rec *r);
int cbdt_blkdev_read(const struct cbdt *t, uint32_t id,
		     struct cbdt_blkdev_rec *r);
int cbdt_segment_read(const struct cbdt *t, uint32_t id,
		      struct cbdt_segment_rec *r);

/* Lease word value for (id, generation); 0 is never a valid lease. */
static inline uint64_t cbdt_lease_make(uint32_t id, uint64_t gen)
{
	return ((gen & CBDT_GEN_MASK) << 16) | ((uint64_t)(id & 0xffffU) + 1);
}
static inline uint32_t cbdt_lease_id(uint64_t lease)
{
	return (uint32_t)((lease & 0xffffU) - 1);
}
static inline uint64_t cbdt_lease_gen(uint64_t lease)
{
	return lease >> 16;
}

/*
 * Janitor lease (transport-wide, one janitor pass at a time).  Acquire:
 * CAS 0 -> lease(host_id, gen of host_id's owner word); if held by a host
 * that @obs says is dead (or whose slot no longer has that generation),
 * steal it.  -EBUSY if a live host holds it.  Release: CAS back to 0.
 */
int cbdt_janitor_lease_acquire(struct cbdt *t, uint32_t host_id,
			       struct cbdt_observer *obs);
void cbdt_janitor_lease_release(struct cbdt *t, uint32_t host_id);

/*
 * Writable-mapping lock of a backend slot (hdr.lock): one writer blkdev per
 * backend across hosts.  Acquire CAS 0 -> lease(blkdev_id, blkdev gen);
 * -EBUSY if held by another blkdev whose owner word still matches the lease
 * (still mapped).  A lease whose blkdev slot moved on is stale and is
 * replaced.  Release CAS back to 0 (only if still ours).
 */
int cbdt_backend_lock(struct cbdt *t, uint32_t backend_id, uint32_t blkdev_id,
		      uint64_t blkdev_owner);
void cbdt_backend_unlock(struct cbdt *t, uint32_t backend_id,
			 uint32_t blkdev_id, uint64_t blkdev_owner);

/* The blkdev whose lease is in backend @backend_id's writer lock (it may
 * be stale): 0 and *blkdev_id, -ENOENT if unlocked, -ERANGE. */
int cbdt_backend_lock_holder(const struct cbdt *t, uint32_t backend_id,
			     uint32_t *blkdev_id);

/*
 * Stable 64-bit identity of a backend: a hash of the serving host's name,
 * the backend's name and its path.  The same config restarted gives the
 * same ident; a different backend that later gets the same id does not.
 */
uint64_t cbdt_backend_ident(const char *hostname, const char *name,
			    const char *path);

/* ------------------------------------------------------------------ */
/* host.c: host registration (every process that uses a transport)     */
/* ------------------------------------------------------------------ */

/*
 * Claim a host slot and write @rec (hostname, role, pid, boot_id, heartbeat
 * settings).  With @adopt (cbd-backend), first look for an ACTIVE slot with
 * the same hostname and role whose process is gone: same boot_id and its
 * pid no longer exists, or a different boot_id and a heartbeat that has not
 * moved for rec->hb_timeout_ms (this waits up to that long).  Such a slot is
 * taken over (generation bumped) so that the restarted daemon keeps its id;
 * -EEXIST if a live process already holds that hostname and role.
 * -ENOSPC if no host slot is free.  *id and *owner on success.
 */
int cbdt_host_register(struct cbdt *t, const struct cbdt_host_rec *rec,
		       bool adopt, uint32_t *id, uint64_t *owner);

/* The 16 bytes of /proc/sys/kernel/random/boot_id; 0 or -errno. */
int cbdt_boot_id(uint8_t out[16]);

/* True if a process @pid exists on this kernel (kill(pid, 0)). */
bool cbdt_pid_exists(uint32_t pid);

/* A live object found by cbdt_inuse_find(). */
struct cbdt_inuse {
	enum cbdt_obj type;
	uint32_t id;
};

/* Heartbeat timeout assumed for an object whose host record is unreadable. */
#define CBDT_HB_TIMEOUT_DEFAULT_MS 10000U

/*
 * Find a live host, backend or blkdev in a validated transport: 1 (and
 * *who, if given) when one is, 0 when none is.  An ACTIVE slot is live
 * unless its host is a process of this kernel that no longer exists, or
 * its heartbeat stays still for the timeout its host applies
 * (hb_timeout_ms of its host record, CBDT_HB_TIMEOUT_DEFAULT_MS when
 * unknown) on our own clock -- the janitor's rule.  So this can take
 * that long when a dead host of another kernel left slots behind; a live
 * object is found as soon as its counter moves.
 */
int cbdt_inuse_find(struct cbdt *t, struct cbdt_inuse *who);

/*
 * "host 0 (node-b, backend, pid 42)", "backend 1 (disk0, /img)", ... from
 * the object's record (just "blkdev 3" when it is unreadable); @buf.
 */
const char *cbdt_obj_describe(const struct cbdt *t, enum cbdt_obj type,
			      uint32_t id, char *buf, size_t len);

/* Release the host slot (clean shutdown). */
void cbdt_host_unregister(struct cbdt *t, uint32_t id, uint64_t owner);

/*
 * True if hosts @a and @b run on one kernel: both records valid with the
 * same non-zero boot_id (two processes on one machine).  Only then can a
 * futex wake-up reach the other side.
 */
bool cbdt_host_same_kernel(const struct cbdt *t, uint32_t a, uint32_t b);

/* ------------------------------------------------------------------ */
/* blkdev.c: the client side of mapping a backend                       */
/* ------------------------------------------------------------------ */

/* A mapped blkdev, as cbdfs and cbd-testclient hold it. */
struct cbdt_blkdev {
	uint32_t id;	  /* blkdev slot */
	uint64_t owner;	  /* blkdev owner word */
	uint32_t host_id; /* mapping host */
	uint32_t backend_id;
	uint64_t backend_ident;
	uint64_t size; /* backend size, bytes */
	bool ro;
	uint16_t queues;
	uint32_t segs[CBDT_QUEUES_MAX];
	struct cbdt_channel *ch[CBDT_QUEUES_MAX]; /* client handles */
	uint64_t seg_owners[CBDT_QUEUES_MAX];	  /* segment owner words, so
						 * unmap frees only its own */
};

/*
 * Map backend @backend_id for host @host_id: claim a blkdev slot, take the
 * backend's writable lock unless @ro (-EBUSY if another blkdev holds it),
 * claim and init @queues channel segments (clamped to the backend's
 * handler count), write the segment and blkdev records, then wait up to
 * @attach_timeout_ms for a handler to attach to every channel.
 * -ENOENT: backend slot not ACTIVE or no valid record.  -EROFS: writable
 * mapping of a read-only backend.  -ENOSPC: no free blkdev or segment slot.
 * -ETIMEDOUT: handlers did not attach (everything is undone).
 */
int cbdt_blkdev_map(struct cbdt *t, uint32_t host_id, uint32_t backend_id,
		    unsigned queues, bool ro, uint32_t attach_timeout_ms,
		    struct cbdt_blkdev **out);

/* Bump the blkdev heartbeat (the mapping process does it every interval). */
void cbdt_blkdev_heartbeat(struct cbdt *t, const struct cbdt_blkdev *b);

/*
 * Unmap: client_state CLOSING on every channel, wait up to
 * @detach_timeout_ms for the handlers to detach, free the segments, drop
 * the writable lock, free the blkdev slot and the struct.  The caller has
 * drained its in-flight requests first.
 */
void cbdt_blkdev_unmap(struct cbdt *t, struct cbdt_blkdev *b,
		       uint32_t detach_timeout_ms);

/* ------------------------------------------------------------------ */
/* clear.c: removing dead objects (janitor and cbd-admin share these)   */
/* ------------------------------------------------------------------ */

/* Why an object cannot be cleared (cbdt_*_clear's @by). */
enum cbdt_block {
	CBDT_BLOCK_ALIVE,     /* type/id is alive: the object itself, or
				 * (with via_*) an object of the host */
	CBDT_BLOCK_MAPPED,    /* backend mapped by live blkdev type/id */
	CBDT_BLOCK_BELONGS,   /* segment belongs to live blkdev type/id */
	CBDT_BLOCK_DIRTY,     /* a cache segment of backend type/id (a
				 * dead one) whose cache holds data not
				 * written back: kept for its restart */
	CBDT_BLOCK_DETACHING, /* -EAGAIN: a live handler of backend type/id
				 * has not detached from the channel yet */
};

struct cbdt_blocker {
	enum cbdt_block why;
	enum cbdt_obj type; /* the live object that keeps it */
	uint32_t id;
	enum cbdt_obj via_type; /* host clears: the host's own object that
				 * the blocker keeps; CBDT_OBJ_NR if none */
	uint32_t via_id;
};

/*
 * Each refuses with -EBUSY while the object is alive according to @obs (a
 * sampled observer), and clears what depends on it first, in a safe order:
 *   segment: a cache segment whose owner host is dead and whose cache
 *            holds nothing dirty (-EBUSY DIRTY otherwise: never lost);
 *            a channel whose blkdev slot no longer holds the recorded
 *            blkdev_owner (or is dead); asks its handler to detach
 *            (client_state CLOSING) and frees the slot once the handler
 *            detached or its backend is dead / gone.  -EAGAIN: a live
 *            handler has not detached yet, try again later.
 *   blkdev:  dead blkdev: its channel segments, the backend's writable
 *            lock if it holds it, then the blkdev slot.
 *   backend: dead backend: -EBUSY while a live blkdev maps it; else the slot.
 *   host:    dead host: its blkdevs and backends, then the host slot.
 * On -EBUSY / -EAGAIN, *@by (if given) says which object blocks and why.
 * Clearing a FREE slot is a no-op returning 0.
 */
int cbdt_segment_clear(struct cbdt *t, uint32_t id, struct cbdt_observer *obs,
		       struct cbdt_blocker *by);
int cbdt_blkdev_clear(struct cbdt *t, uint32_t id, struct cbdt_observer *obs,
		      struct cbdt_blocker *by);
int cbdt_backend_clear(struct cbdt *t, uint32_t id, struct cbdt_observer *obs,
		       struct cbdt_blocker *by);
int cbdt_host_clear(struct cbdt *t, uint32_t id, struct cbdt_observer *obs,
		    struct cbdt_blocker *by);

/* ------------------------------------------------------------------ */
/* liveness.c: heartbeat observers                                      */
/* ------------------------------------------------------------------ */

/*
 * An observer remembers, for every slot, the last heartbeat value and owner
 * word it saw and when (its own CLOCK_MONOTONIC).  A slot is dead when it is
 * FREE, or when its counter has not moved for @timeout_ms of the observer's
 * clock.  A slot first seen (or whose owner word changed) starts a fresh
 * window: it is alive until it fails to move for @timeout_ms.  No clock of
 * another host is ever compared.
 */
int cbdt_observer_new(const struct cbdt *t, uint32_t timeout_ms,
		      struct cbdt_observer **out);
void cbdt_observer_free(struct cbdt_observer *obs);

/* Sample every slot now (cheap; call once per janitor pass). */
void cbdt_observer_sample(struct cbdt_observer *obs);

/* Sample one slot and answer; false for FREE slots. */
bool cbdt_observer_alive(struct cbdt_observer *obs, enum cbdt_obj type,
			 uint32_t id);

/* Milliseconds since the counter last moved, as of the last sample. */
uint64_t cbdt_observer_age_ms(const struct cbdt_observer *obs,
			      enum cbdt_obj type, uint32_t id);

/* The transport @obs watches. */
const struct cbdt *cbdt_observer_transport(const struct cbdt_observer *obs);

/* CLOCK_MONOTONIC in ns / ms (helpers shared by daemons and tests). */
uint64_t cbdt_now_ns(void);
uint64_t cbdt_now_ms(void);

/* Sleep @ms milliseconds (through signals). */
void cbdt_sleep_ms(uint32_t ms);

/* ------------------------------------------------------------------ */
/* crc32c.c                                                             */
/* ------------------------------------------------------------------ */

/* CRC32C (Castagnoli), SSE4.2 instruction when the CPU has it. */
uint32_t cbdt_crc32c(uint32_t crc, const void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* wait.c: adaptive waiting                                             */
/* ------------------------------------------------------------------ */

/*
 * Adaptive poller used by every thread that waits on a ring: spin for
 * spin_ns after the last work, then sleep with exponential back-off from
 * sleep_min_us up to sleep_max_us (the bound on wake-up latency when no
 * doorbell reaches us, e.g. across hosts).  When a doorbell word is given,
 * the sleep is a futex wait on it, so a same-host peer can wake us at once;
 * correctness never depends on that wake-up.  A caller that knows its
 * peer runs on this very kernel (cbdt_host_same_kernel) and rings for
 * every piece of work may set doorbell_max_us (> sleep_max_us): then every
 * futex sleep lasts until the ring, or doorbell_max_us at most, without
 * back-off steps (each a timer wake-up for nothing: at QD1 they were most
 * of a handler's context switches), so that idle pollers cost no
 * measurable CPU while every ring still wakes them at once.  Should the
 * futex fail, the plain back-off applies.  Across hosts nothing rings the
 * futex, so there sleep_max_us stays the latency bound.
 *
 * With spin_max_ns (> spin_ns) the spin adapts, for idle streaks the
 * caller expects to be short (cbdt_wait_expect: a handler after a request
 * its client sent alone, QD1): once work came back within spin_max_ns,
 * such streaks spin that long, until a few in a row outlast it; while
 * they are short, one in a few spins long to look.  A QD1 stream (the
 * client's own round trip between requests) is then caught by spinning
 * instead of a wake-up each; a deep one, whose client is busy, keeps the
 * short spin and leaves the CPU to it; an idle poller sleeps as before.
 */
struct cbdt_wait_cfg {
	uint32_t spin_ns;	  /* default 20000 */
	uint32_t sleep_min_us;	  /* default 50 */
	uint32_t sleep_max_us;	  /* default 5000 */
	uint32_t doorbell_max_us; /* cap of futex sleeps, peer on this kernel
				  * only; 0 (default) = sleep_max_us */
	uint32_t spin_max_ns;	  /* adaptive spin up to this; 0 (default) =
				  * spin_ns, no adapting */
};

struct cbdt_wait {
	struct cbdt_wait_cfg cfg;
	uint64_t idle_since_ns; /* start of the current idle streak, 0 = busy */
	uint32_t sleep_us;	/* next sleep length */
	bool expect;		/* cbdt_wait_expect() */
	bool hot;		/* expected streaks spin spin_max_ns */
	bool streak_adapts;	/* the current streak was expected */
	uint32_t streak_spin_ns; /* the current streak's spin */
	uint32_t streaks;	 /* expected streaks begun (probe every few) */
	uint32_t misses;	 /* long spins in a row work outlasted */
	uint64_t spins, sleeps;	 /* statistics */
};

void cbdt_wait_init(struct cbdt_wait *w, const struct cbdt_wait_cfg *cfg);

/* Work was found: the next idle streak starts with spinning again. */
void cbdt_wait_reset(struct cbdt_wait *w);

/* Whether the next idle streak is expected to be short (see spin_max_ns). */
void cbdt_wait_expect(struct cbdt_wait *w, bool soon);

/* True if the next cbdt_wait_idle() call would sleep rather than spin. */
bool cbdt_wait_would_sleep(const struct cbdt_wait *w);

/*
 * One spin step, never a sleep (it starts the idle streak if none).  What
 * a caller does after cbdt_wait_would_sleep() said "no": the spin phase
 * may end between the two, and a plain cbdt_wait_idle(w, NULL) would then
 * sleep where no doorbell can wake it.
 */
void cbdt_wait_spin(struct cbdt_wait *w);

/*
 * Nothing to do: spin one step or sleep one back-off step.  With
 * @doorbell != NULL and sleeping, the caller must already have published
 * "I am asleep" in *doorbell (== 1) and re-checked for work, so that a
 * waker's store + futex wake cannot be missed (see the channel helpers).
 */
void cbdt_wait_idle(struct cbdt_wait *w, uint32_t *doorbell);

/* Wake whoever sleeps on @doorbell if it is set (after smp_mb by caller). */
void cbdt_doorbell_ring(uint32_t *doorbell);

/* A condition variable on CLOCK_MONOTONIC (deadlines of cbdt_now_ns). */
#define CBDT_COND_SLICE_NS 1000000000ULL
void cbdt_cond_init_mono(pthread_cond_t *c);

/*
 * Wait on @c (with @m held) until signalled, but never past @deadline_ns
 * (0: none) nor longer than CBDT_COND_SLICE_NS, so that a waiter without
 * a deadline still looks at its exit conditions now and then.
 * -ETIMEDOUT (without waiting) once the deadline passed, else 0.
 */
int cbdt_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m,
			 uint64_t deadline_ns);

/* ------------------------------------------------------------------ */
/* channel.c: the data path (chan-ctrl.c: init, open, handler flags)    */
/* ------------------------------------------------------------------ */

/* A request as both sides see it, in private memory. */
struct cbdt_request {
	uint16_t op;	/* enum cbdt_op */
	uint16_t flags; /* CBDT_SE_* */
	uint64_t seq;	/* set by submit */
	uint64_t req_id;
	uint64_t offset;
	uint32_t len;
	uint32_t data_off;
	uint32_t data_len;
	uint32_t data_crc; /* set by submit when CBDT_F_DATA_CRC */
};

struct cbdt_completion {
	uint64_t req_id;
	uint64_t seq;
	int32_t result; /* 0 or -errno */
	uint32_t data_crc;
};

struct cbdt_channel_params {
	uint32_t se_count; /* power of two; 0 = default 256 */
	uint32_t ce_count; /* power of two; 0 = default = se_count */
	uint16_t backend_id;
	uint16_t blkdev_id;
	uint16_t queue;
	uint64_t blkdev_owner;
	uint64_t backend_ident; /* goes into the segment record */
};

/* Geometry of a channel as validated from its control area. */
struct cbdt_channel_geom {
	uint32_t flags;
	uint32_t se_off, se_count;
	uint32_t ce_off, ce_count;
	uint32_t data_off, data_size;
};

/*
 * Initialise segment @seg_id (which the caller has claimed) as a channel:
 * write the control area (geometry, indexes 0, client_state OPEN) and the
 * segment record.  Client side.  Flags come from the transport info.
 */
int cbdt_channel_init(struct cbdt *t, uint32_t seg_id,
		      const struct cbdt_channel_params *p);

/*
 * Validate a copy of a control area against a segment of @seg_size bytes:
 * magic, version, rings and data area inside the segment, not overlapping,
 * counts powers of two.  Pure; used by open and by the fuzzer.
 */
int cbdt_channel_ctrl_validate(const struct cbdt_channel_ctrl *ctrl,
			       uint32_t seg_size, struct cbdt_channel_geom *g);

enum cbdt_channel_role {
	CBDT_CHANNEL_CLIENT = 1,
	CBDT_CHANNEL_HANDLER = 2,
};

/*
 * Open a channel handle on segment @seg_id (validates the control area).
 * Handler side: sets handler_owner = @backend_owner, handler_state =
 * ATTACHED, and recovers after a crash: if the last posted ce
 * (cq_head - 1) completes the se at sq_tail, sq_tail is advanced, so the
 * request is neither lost nor completed twice.  Client side: rebuilds
 * nothing; a client always starts from a freshly initialised channel.
 */
int cbdt_channel_open(struct cbdt *t, uint32_t seg_id,
		      enum cbdt_channel_role role, uint64_t backend_owner,
		      struct cbdt_channel **out);
void cbdt_channel_close(struct cbdt_channel *ch);

struct cbdt_channel_ctrl *cbdt_channel_ctrl(const struct cbdt_channel *ch);
const struct cbdt_channel_geom *
cbdt_channel_geom(const struct cbdt_channel *ch);
uint32_t cbdt_channel_seg_id(const struct cbdt_channel *ch);
struct cbdt *cbdt_channel_transport(const struct cbdt_channel *ch);

/* Pointer to @off in the data area (caller validated the extent). */
void *cbdt_channel_data(const struct cbdt_channel *ch, uint32_t off);

/* -- client side -- */

/*
 * Allocate @len bytes (rounded up to CBDT_DATA_UNIT) in the data area;
 * extents are freed in any order.  -ENOSPC if no contiguous extent is free
 * now, -E2BIG if @len can never fit.
 */
int cbdt_channel_data_alloc(struct cbdt_channel *ch, uint32_t len,
			    uint32_t *off);
void cbdt_channel_data_free(struct cbdt_channel *ch, uint32_t off,
			    uint32_t len);

/*
 * Submit one request: fill the se at sq_head (seq, crcs), store-release
 * sq_head, and ring the handler's doorbell if it sleeps.  -EAGAIN if the
 * submission ring is full or as many requests are in flight as the
 * completion ring holds.  Sets rq->seq (and rq->data_crc).
 */
int cbdt_channel_submit(struct cbdt_channel *ch, struct cbdt_request *rq);

/*
 * Reap one completion: 1 and *c filled, 0 if none, -EBADMSG if the ce at
 * cq_tail fails its crc or seq check twice (the channel is then unusable:
 * fail everything in flight loudly).  Advances cq_tail.  c->req_id is the
 * one submitted at that seq; a ce naming another req_id completes it with
 * -EIO, and a READ whose data fails its crc twice with -EBADMSG (that
 * request fails, the channel goes on).
 */
int cbdt_channel_reap(struct cbdt_channel *ch, struct cbdt_completion *c);

/* Requests submitted and not yet reaped. */
uint32_t cbdt_channel_inflight(const struct cbdt_channel *ch);

/* Wait (one adaptive step) for completions; uses the cq doorbell. */
void cbdt_channel_client_wait(struct cbdt_channel *ch, struct cbdt_wait *w);

/* Ask the handler to detach (client_state CLOSING) and report its state. */
void cbdt_channel_client_close(struct cbdt_channel *ch);

/* -- handler side -- */

/*
 * Peek at the se at sq_tail: copy it into *rq (private) and check seq and
 * entry crc (re-reading once on mismatch).  1 if a request is there, 0 if
 * the ring is empty, -EBADMSG if the entry is torn or stale twice (complete
 * it with an error; the handler goes on).  Does not consume it.
 */
int cbdt_channel_peek(struct cbdt_channel *ch, struct cbdt_request *rq);

/*
 * Validate a request against the channel and a device of @dev_size bytes:
 * op and flags known, len > 0 where needed, offset+len <= dev_size without
 * overflow, data extent inside the data area, data_len == len for
 * READ/WRITE and 0 otherwise, FUA only on WRITE/DISCARD/WRITE_ZEROES,
 * data crc if enabled.  0 or -EINVAL (-EBADMSG for a data crc mismatch).
 */
int cbdt_channel_validate(const struct cbdt_channel *ch,
			  const struct cbdt_request *rq, uint64_t dev_size);

/* Pure form of the above for the fuzzer and tests. */
int cbdt_se_validate(const struct cbdt_se *se,
		     const struct cbdt_channel_geom *g, uint64_t dev_size);

/*
 * Complete the request last returned by peek: write the ce (seq, req_id,
 * result, crcs) at cq_head, store-release cq_head, then store-release
 * sq_tail, and ring the client's doorbell if it sleeps.  -EAGAIN if the
 * completion ring is full (wait and retry).
 */
int cbdt_channel_complete(struct cbdt_channel *ch,
			  const struct cbdt_request *rq, int result);

/* Wait (one adaptive step) for submissions; uses the sq doorbell. */
void cbdt_channel_handler_wait(struct cbdt_channel *ch, struct cbdt_wait *w);

/*
 * Right after attaching, with the boot id of this kernel: if the previous
 * handler of another boot left writes unflushed (durability = writeback
 * on a host that crashed), the channel is LOST for good and this returns
 * true: complete every request with -EIO.  Records our boot id.
 */
bool cbdt_channel_handler_adopt(struct cbdt_channel *ch,
				const uint8_t boot_id[16]);

/*
 * Writeback handlers: mark (true, after a write) or clear (false, after a
 * flush) that completed writes of this channel may be in this host's page
 * cache only.  Call before cbdt_channel_complete() of that request.
 */
void cbdt_channel_handler_unflushed(struct cbdt_channel *ch, bool unflushed);

/*
 * Right after attaching: say whether requests may be packed onto this
 * channel (CBDT_HF_PACK: the store is memory, one handler thread loses
 * no device parallelism).
 */
void cbdt_channel_handler_pack(struct cbdt_channel *ch, bool pack);

/* Client, any thread: the handler of the last completion reaped said
 * CBDT_HF_PACK (false before the first one). */
bool cbdt_channel_packs(const struct cbdt_channel *ch);

/*
 * Client, producer side, before the submit: whether this request is the
 * only one its client holds (CBDT_CH_LONE, a hint).  Handler: what the
 * client said last; after a lone request it may poll longer for the next
 * (cbdt_wait_expect).
 */
void cbdt_channel_client_lone(struct cbdt_channel *ch, bool lone);
bool cbdt_channel_lone(const struct cbdt_channel *ch);

/* True once the channel was found LOST (see cbdt_channel_handler_adopt). */
bool cbdt_channel_lost(const struct cbdt_channel *ch);

/* Handler stops serving: handler_state DETACHED (store-release). */
void cbdt_channel_handler_detach(struct cbdt_channel *ch);

/* client_state as last published by the client (load-acquire). */
uint32_t cbdt_channel_client_state(const struct cbdt_channel *ch);

/* handler_state as last published by a handler (load-acquire). */
uint32_t cbdt_channel_handler_state(const struct cbdt_channel *ch);

/* ------------------------------------------------------------------ */
/* queue.c: the client side of a channel (slots, ids, extents, timeouts) */
/* ------------------------------------------------------------------ */

/*
 * struct cbdt_queue owns what every client of a channel needs: command
 * slots, request ids (a counter above the slot index, so a stale
 * completion never matches a reused slot), data extents, the age of each
 * request, the broken state, and the lifetime of a request answered early
 * (expired, or failed when the queue broke) whose slot and extent stay the
 * ring's until its completion arrives.  Threads: submits from any number
 * of threads; the reaper-side calls (reap, expire, fail, idle), and so
 * every callback, from one thread at a time; break/stop/busy/drain from
 * any.  The queue does not own the channel.
 */
struct cbdt_queue;

/* One request to submit. */
struct cbdt_queue_req {
	uint16_t op;	/* enum cbdt_op */
	uint16_t flags; /* CBDT_SE_* */
	uint64_t offset;
	uint32_t len;
	const void *wbuf; /* WRITE: @len bytes copied into the data area */
	void *cookie;	  /* handed back in the callback */
	/* the submitter reaps it itself (cbdt_queue_reap_try) and calls
	 * cbdt_queue_kick() when it stops: the reaper is not woken for it */
	bool polled;
	/* the only request the submitter's client holds (CBDT_CH_LONE) */
	bool lone;
};

/*
 * What the callback gets.  @answer: this call answers the request (once
 * per request): @result is 0 or -errno (-ETIMEDOUT when expired, -EIO when
 * the queue broke), and for a READ with result 0 @data points at the bytes
 * in the shared data area, valid during the call only.  @last: the slot is
 * given back; no more calls for this cookie.  A request answered early
 * gets a second call (@answer false, @last true) when its completion
 * arrives or the queue is freed.
 */
struct cbdt_queue_done {
	void *cookie;
	int result;
	uint16_t op;
	uint64_t offset;
	uint32_t len;
	const void *data;
	bool answer;
	bool last;
};
typedef void (*cbdt_queue_done_fn)(void *arg, const struct cbdt_queue_done *d);

/* A queue on the client handle @ch; @done gets every completion. */
int cbdt_queue_new(struct cbdt_channel *ch, cbdt_queue_done_fn done, void *arg,
		   struct cbdt_queue **out);

/* Free (no thread may use it any more): requests still owned by the ring
 * get their last call (answered -EIO if they never were). */
void cbdt_queue_free(struct cbdt_queue *q);

/*
 * Submit one request: 0, or -EAGAIN (no slot or extent free now: reap and
 * retry), -E2BIG (larger than the data area), -EINVAL (bad op or flags),
 * -EIO (broken), -ESHUTDOWN (stopped).  On 0 the callback answers it.
 */
int cbdt_queue_submit(struct cbdt_queue *q, const struct cbdt_queue_req *r);

/* The same, waiting for room until @deadline_ns (CLOCK_MONOTONIC; 0: for
 * ever): -ETIMEDOUT once it passed. */
int cbdt_queue_submit_wait(struct cbdt_queue *q, const struct cbdt_queue_req *r,
			   uint64_t deadline_ns);

/*
 * Reaper side: reap up to @max completions and hand them to the callback;
 * completions naming no request in flight (stray, stale, duplicated) are
 * dropped and counted into *@strays if given.  Returns how many requests
 * completed, or -EIO / -EBADMSG once the queue is broken (then everything
 * in flight has been answered with -EIO).
 */
int cbdt_queue_reap(struct cbdt_queue *q, unsigned max, uint32_t *strays);

/*
 * Any thread: the same, unless another thread is reaping (then 0 at
 * once).  For a submitter that polls for its own completion instead of
 * waiting for the reaper to wake (and it, in turn, the submitter).
 */
int cbdt_queue_reap_try(struct cbdt_queue *q, unsigned max, uint32_t *strays);

/* Any thread: what is in flight, polled or not, is the reaper's now (a
 * submitter stops polling); wakes it if it sleeps. */
void cbdt_queue_kick(struct cbdt_queue *q);

/* Reaper side: answer requests submitted @age_ns ago or more with
 * -ETIMEDOUT (they keep their slots and extents); returns how many. */
int cbdt_queue_expire(struct cbdt_queue *q, uint64_t age_ns);

/* Reaper side: answer everything in flight with @result now. */
int cbdt_queue_fail(struct cbdt_queue *q, int result);

/*
 * Reaper side: nothing was reaped, wait one step: spin, poll the
 * completion ring with back-off, or, with nothing in flight, sleep until
 * a submit.  -ESHUTDOWN when stopped with nothing left in flight; on a
 * broken queue it sleeps until stopped, then -ESHUTDOWN (a reaper thread
 * has nothing left to do but exit).
 */
int cbdt_queue_idle(struct cbdt_queue *q, struct cbdt_wait *w);

/* Any thread: never touch the ring again (it failed its checks, or its
 * segment may be someone else's now); submits fail with -EIO and the
 * reaper answers what is in flight with -EIO. */
void cbdt_queue_break(struct cbdt_queue *q);
bool cbdt_queue_broken(const struct cbdt_queue *q);

/* Any thread: refuse submits from now on (-ESHUTDOWN), wake all waiters. */
void cbdt_queue_stop(struct cbdt_queue *q);

/* Slots in use (submitted or being submitted, or answered early). */
uint32_t cbdt_queue_busy(struct cbdt_queue *q);
/* Requests in the ring now, read without the lock: a hint. */
uint32_t cbdt_queue_inflight(const struct cbdt_queue *q);

/* Wait until no slot is in use, until @deadline_ns (0: for ever):
 * 0, -ETIMEDOUT, or -EIO if the queue broke with slots still in use. */
int cbdt_queue_drain(struct cbdt_queue *q, uint64_t deadline_ns);

struct cbdt_channel *cbdt_queue_channel(const struct cbdt_queue *q);

/* ------------------------------------------------------------------ */
/* serve.c: the handler side of a channel                               */
/* ------------------------------------------------------------------ */

/*
 * What a server fills in, like ublksrv's target ops.  cbdt_serve() calls
 * them on its own thread, one request at a time, in ring order.
 */
struct cbdt_handler_ops {
	/*
	 * Required.  Execute one request that passed cbdt_channel_validate()
	 * against the device size: @data is its extent in the shared data
	 * area (READ: fill @rq->len bytes; WRITE: read them), NULL for
	 * requests without data.  Returns 0 or -errno, the client's result.
	 */
	int (*exec)(void *arg, const struct cbdt_request *rq, void *data);
	/*
	 * Optional.  0 to go on serving, or a positive reason to stop
	 * (returned by cbdt_serve).  Called after every request, while idle
	 * and while the completion ring is full: keep it cheap.
	 */
	int (*check)(void *arg);
	/*
	 * Optional.  Every request's result just before its completion is
	 * posted, bad entries included (logging, counters).
	 */
	void (*done)(void *arg, const struct cbdt_request *rq, int result);
};

struct cbdt_serve_cfg {
	uint64_t dev_size;	   /* requests must lie within [0, dev_size) */
	uint64_t seg_owner;	   /* the segment's owner word at attach: stop
				 * serving once it changes (0: not checked) */
	struct cbdt_wait_cfg wait; /* idle polling */
};

/* Reasons of cbdt_serve(); a check() may return its own (> these). */
#define CBDT_SERVE_CLOSING  1  /* the client closed the channel */
#define CBDT_SERVE_SEG_GONE 2  /* the segment was freed or reused */
#define CBDT_SERVE_USER	    16 /* first reason free for check() */

/*
 * Serve the handler handle @ch until a reason to stop: peek, check (a bad
 * entry completes with -EINVAL or -EBADMSG, a LOST channel everything with
 * -EIO), exec, complete (waiting while the completion ring is full), and
 * adaptive waiting when idle.  Crash recovery happened at
 * cbdt_channel_open(): a request submitted but not completed runs once.
 * Returns the reason (> 0), or -EINVAL without ops->exec.
 */
int cbdt_serve(struct cbdt_channel *ch, const struct cbdt_serve_cfg *cfg,
	       const struct cbdt_handler_ops *ops, void *arg);

#endif /* CBD_TRANSPORT_CBDT_H */
