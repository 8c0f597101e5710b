/* SPDX-License-Identifier: MIT */
/*
 * cbdfs private header: one section per file.  Shared state is described
 * next to each struct: which lock protects which field, and which thread
 * owns what.
 */
#ifndef CBD_CBDFS_H
#define CBD_CBDFS_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cbdt.h"
#include "worker.h"

/* Inodes: the root, a file per backend, by-name/ and a link per backend. */
#define CBDFS_ROOT_INO	      FUSE_ROOT_ID
#define CBDFS_INO(backend_id) ((fuse_ino_t)(backend_id) + 2)
#define CBDFS_BYNAME_INO      CBDFS_INO(CBDT_BACKENDS_NR)
#define CBDFS_LINK_INO(id)    (CBDFS_BYNAME_INO + 1 + (fuse_ino_t)(id))
#define CBDFS_BYNAME	      "by-name"

#define CBDFS_MAX_IO	     (1U << 20) /* max_write / max_read */
#define CBDFS_HB_INTERVAL_MS 100U	/* host + blkdev heartbeats */
#define CBDFS_HB_TIMEOUT_MS  10000U	/* advertised in the host record */
#define CBDFS_ATTACH_MS	     15000U	/* wait for handlers (no timeout=) */
#define CBDFS_DRAIN_MS	     5000U	/* bounded drain of orphans */

/* ------------------------------------------------------------------ */
/* main.c: options and the whole-process state                         */
/* ------------------------------------------------------------------ */

struct cbdfs_cfg {
	char *transport;    /* -o transport= */
	char *hostname;	    /* -o hostname=, default: system host name */
	unsigned queues;    /* -o queues=, 0: min(handlers, CPUs) */
	unsigned timeout_s; /* -o timeout=, 0: I/O waits for ever */
	bool ro;	    /* -o ro: every mapping read-only */
	uint32_t chunk;	    /* -o chunk=: split READ/WRITE above it */
};

struct cbdfs_blkdev;

/*
 * One per process.  cfg, t, host_* and the times are set before the FUSE
 * loop starts and read-only afterwards.  bdevs[] and obs are protected by
 * lock; map/unmap (open/release) are serialised by open_lock, which is
 * taken before lock.
 */
struct cbdfs {
	struct cbdfs_cfg cfg;
	struct cbdt *t;
	uint32_t host_id;
	uint64_t host_owner;
	char mountpoint[CBDT_PATH_LEN]; /* absolute, in our host record */
	struct timespec start_time;
	uid_t uid;
	gid_t gid;
	struct fuse_session *se;

	pthread_mutex_t open_lock;
	pthread_mutex_t lock;
	struct cbdfs_blkdev *bdevs[CBDT_BACKENDS_NR];
	struct cbdt_observer *obs;

	pthread_t main_thread; /* runs the session loop: signalled to stop */
	bool host_lost; /* a janitor cleared our host: heartbeat thread */

	struct worker hb; /* heartbeat thread (blkdev.c) */
};

/* ------------------------------------------------------------------ */
/* blkdev.c: backends in the transport, mapped blkdevs, heartbeats      */
/* ------------------------------------------------------------------ */

/* What the directory shows of a backend. */
struct cbdfs_backend_info {
	uint64_t size;
	bool ro;
	char name[CBDT_NAME_LEN]; /* [backend NAME] of its cbd.ini */
};

int cbdfs_state_init(struct cbdfs *fs);
void cbdfs_state_destroy(struct cbdfs *fs);

/*
 * Backend @id as the directory shows it: alive in the transport (slot
 * ACTIVE, valid record, heartbeat moving within its host's timeout), or
 * mapped by us.  0 and *info, or -ENOENT.
 */
int cbdfs_backend_info(struct cbdfs *fs, uint32_t id,
		       struct cbdfs_backend_info *info);

/*
 * Open backend @id: map it on first open (blocks while the handlers
 * attach), share the mapping afterwards.  -EROFS, -EBUSY (another host
 * writes it, or a writable open of a blkdev this cbdfs mapped read-only),
 * -ENOENT, -ETIMEDOUT, -ENOSPC, -EIO.
 */
int cbdfs_blkdev_open(struct cbdfs *fs, uint32_t id, bool writable,
		      struct cbdfs_blkdev **out);

/* Last release drains and unmaps. */
void cbdfs_blkdev_release(struct cbdfs *fs, struct cbdfs_blkdev *bd);

/* Shutdown: drain (bounded) and unmap whatever is still mapped. */
void cbdfs_blkdev_release_all(struct cbdfs *fs);

/* Heartbeat thread: host and every mapped blkdev, every interval. */
int cbdfs_heartbeat_start(struct cbdfs *fs);
void cbdfs_heartbeat_stop(struct cbdfs *fs);

/* ------------------------------------------------------------------ */
/* queue.c: submission, the reaper, start/drain (on struct cbdt_queue) */
/* ------------------------------------------------------------------ */

struct cbdfs_io;

/* One channel of a blkdev: the library queue and its reaper thread. */
struct cbdfs_queue {
	struct cbdfs_blkdev *bd;
	struct cbdt_queue *q;
	unsigned idx;
	pthread_t reaper;
	bool reaper_started;
};

/*
 * A mapped blkdev.  b, size, ro, nq, q are fixed while mapped.  refs is
 * under fs->open_lock.  The write epochs (fsync ordering) are under wlock.
 */
struct cbdfs_blkdev {
	struct cbdfs *fs;
	struct cbdt_blkdev *b;
	uint32_t backend_id;
	uint64_t size;
	bool ro;	 /* mapped read-only */
	bool backend_ro; /* the backend itself is read-only */
	char name[CBDT_NAME_LEN];
	bool lost;	/* a janitor cleared the blkdev (fs->lock) */
	bool unmapping; /* engine stopping (fs->lock) */
	unsigned refs;
	unsigned nq;
	struct cbdfs_queue *q;
	unsigned rr;	    /* round-robin queue choice (atomic) */
	uint32_t max_chunk; /* largest READ/WRITE per command */

	pthread_mutex_t flush_lock; /* one fsync drains at a time */
	pthread_mutex_t wlock;
	pthread_cond_t wdone;
	uint64_t wepoch;
	uint64_t wcount[2]; /* writes in flight per epoch parity */
};

/* What a command is to do; @io or @req says whom to answer. */
struct cbdfs_cmd_desc {
	uint16_t op;
	uint64_t offset;
	uint32_t len;
	const char *wbuf; /* WRITE data */
	struct cbdfs_io *io;
	fuse_req_t req;
};

/* Queues and reapers of a freshly mapped blkdev. */
int cbdfs_engine_start(struct cbdfs_blkdev *bd);

/* Drain in-flight commands (up to @drain_ms), stop the reapers. */
void cbdfs_engine_stop(struct cbdfs_blkdev *bd, uint32_t drain_ms);

/*
 * Queue one command; waits while the ring or the data area is full (up to
 * timeout=, if set).  0: the reaper answers it from now on; -errno: nothing
 * was queued and the caller answers.
 */
int cbdfs_queue_submit(struct cbdfs_queue *q, const struct cbdfs_cmd_desc *d);

/*
 * Stop using the ring for good: in-flight commands fail with EIO, new ones
 * at once.  For a ring that failed its checks or a blkdev that a janitor
 * cleared (its segments may already serve someone else).
 */
void cbdfs_queue_break(struct cbdfs_queue *q);
/* True once cbdfs_queue_break() ran (any thread). */
bool cbdfs_queue_broken(struct cbdfs_queue *q);

/*
 * Wait on @c until signalled, but never past @deadline_ns (0: none); an
 * unbounded wait still wakes up every second so that a process that is
 * shutting down never hangs.  -ETIMEDOUT once the deadline passed,
 * -ESHUTDOWN if the FUSE session is exiting.
 */
int cbdfs_cond_wait_until(struct cbdfs *fs, pthread_cond_t *c,
			  pthread_mutex_t *m, uint64_t deadline_ns);

static inline uint64_t cbdfs_timeout_ns(const struct cbdfs *fs)
{
	return (uint64_t)fs->cfg.timeout_s * 1000000000ULL;
}

/* ------------------------------------------------------------------ */
/* engine.c: requests over the channels, answers, fsync ordering       */
/* ------------------------------------------------------------------ */

/*
 * Answer FUSE for a finished (or failed) command: @who is the fuse_req_t,
 * or with @is_io the split request it is part of.
 */
void cbdfs_cmd_answer(struct cbdfs_queue *q, void *who, bool is_io,
		      const struct cbdt_queue_done *d);

/* Count a WRITE in the current epoch (returns its parity) / uncount it. */
uint8_t cbdfs_wepoch_get(struct cbdfs_blkdev *bd);
void cbdfs_wepoch_put(struct cbdfs_blkdev *bd, uint8_t parity);

/* Each answers @req itself, now or when the backend completes. */
void cbdfs_engine_read(struct cbdfs_blkdev *bd, fuse_req_t req, uint64_t off,
		       size_t len);
void cbdfs_engine_write(struct cbdfs_blkdev *bd, fuse_req_t req,
			const char *buf, uint64_t off, size_t len);
void cbdfs_engine_flush(struct cbdfs_blkdev *bd, fuse_req_t req);
void cbdfs_engine_trim(struct cbdfs_blkdev *bd, fuse_req_t req, uint16_t op,
		       uint64_t off, uint64_t len);

/* ------------------------------------------------------------------ */
/* ops.c: the FUSE callbacks                                            */
/* ------------------------------------------------------------------ */

extern const struct fuse_lowlevel_ops cbdfs_ops;

#endif /* CBD_CBDFS_H */
