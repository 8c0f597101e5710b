/* SPDX-License-Identifier: MIT */
/*
 * cbdfs private header: one section per file.  Shared state is described
 * next to each struct: which lock protects which field, and which thread
 * owns what.
 */
#ifndef CBD_CBDFS_H
#define CBD_CBDFS_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "cbdt.h"
#include "fuse-abi.h"
#include "worker.h"

/* Inodes: the root, a file per backend, by-name/ and a link per backend. */
#define CBDFS_ROOT_INO	      FUSE_ROOT_ID
#define CBDFS_INO(backend_id) ((uint64_t)(backend_id) + 2)
#define CBDFS_BYNAME_INO      CBDFS_INO(CBDT_BACKENDS_NR)
#define CBDFS_LINK_INO(id)    (CBDFS_BYNAME_INO + 1 + (uint64_t)(id))
#define CBDFS_BYNAME	      "by-name"

#define CBDFS_MAX_IO (1U << 20) /* max_write / max_read */
/* A /dev/fuse read takes the largest WRITE: header, write_in, data. */
#define CBDFS_DEV_BUF_SIZE   (CBDFS_MAX_IO + 4096)
#define CBDFS_HB_INTERVAL_MS 100U   /* host + blkdev heartbeats */
#define CBDFS_HB_TIMEOUT_MS  10000U /* advertised in the host record */
#define CBDFS_ATTACH_MS	     15000U /* wait for handlers (no timeout=) */
#define CBDFS_DRAIN_MS	     5000U  /* bounded drain of orphans */

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
	int uring;	    /* -o io_uring=: enum cbdfs_uring_mode */
};

struct cbdfs_blkdev;
struct cbdfs_dev;
struct cbdfs_uring;
struct cbdfs_uring_ent;
struct fuse_session;

/* -o io_uring= */
enum cbdfs_uring_mode {
	CBDFS_URING_AUTO, /* when the kernel offers it */
	CBDFS_URING_ON,	  /* or fail */
	CBDFS_URING_OFF,
};

/*
 * The FUSE session (session.c).  fd, minor and uring are set before the
 * workers start; exiting is written by anyone (stop), read by all.
 */
struct cbdfs_session {
	struct cbdfs *fs;
	int fd;		/* /dev/fuse, as libfuse mounted it */
	uint32_t minor; /* protocol minor in use */
	bool uring;	/* requests come over io_uring queues */
	bool exiting;
	unsigned held; /* /dev/fuse requests read, not yet answered (atomic) */
	sem_t stop;    /* posted to end cbdfs_session_run() */
	struct cbdfs_dev *dev;	/* fuse-dev.c: the /dev/fuse workers */
	struct cbdfs_uring *ur; /* fuse-uring.c */
};

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
	struct fuse_session *se; /* libfuse: options and the mount only */
	struct cbdfs_session sess;

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
/* engine.c: submission, the reaper, start/drain (on struct cbdt_queue) */
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
	unsigned pollers;   /* threads' polled queues of ours (engine.c) */
	bool stopping;	    /* cbdfs_engine_stop(): pollers let go (atomic) */
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
	struct cbdfs_req *req;
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
 * Answer FUSE for a finished (or failed) command: @who is the request,
 * or with @is_io the split request it is part of.
 */
void cbdfs_cmd_answer(struct cbdfs_queue *q, void *who, bool is_io,
		      const struct cbdt_queue_done *d);

/* Count a WRITE in the current epoch (returns its parity) / uncount it. */
uint8_t cbdfs_wepoch_get(struct cbdfs_blkdev *bd);
void cbdfs_wepoch_put(struct cbdfs_blkdev *bd, uint8_t parity);

/* Each answers @req itself, now or when the backend completes. */
void cbdfs_engine_read(struct cbdfs_blkdev *bd, struct cbdfs_req *req,
		       uint64_t off, size_t len);
void cbdfs_engine_write(struct cbdfs_blkdev *bd, struct cbdfs_req *req,
			const char *buf, uint64_t off, size_t len);
void cbdfs_engine_flush(struct cbdfs_blkdev *bd, struct cbdfs_req *req);
void cbdfs_engine_trim(struct cbdfs_blkdev *bd, struct cbdfs_req *req,
		       uint16_t op, uint64_t off, uint64_t len);

/*
 * A FUSE thread can reap the completions of what it submitted itself,
 * instead of waiting for the reaper's wake-up and then its own: with
 * polling on for what it submits (until turned off), after running
 * requests it polls, spinning until @done(@arg) says an answer (or new
 * work) is there, nothing it polls for is in flight any more, or
 * @budget_ns passed.  cbdfs_engine_poll() returns true when it stopped
 * for @done with requests still in flight: the thread may send its
 * answers and poll again without sleeping.  Before it sleeps,
 * cbdfs_engine_poll_end(): the reapers take over whatever is left.
 */
void cbdfs_engine_poll_enable(bool on);
/* The FUSE requests this thread's transport holds now, the one it is about
 * to run included (1: the only one, as at QD1): how the engine picks a
 * queue. */
void cbdfs_engine_held(unsigned n);
bool cbdfs_engine_poll(uint64_t budget_ns, bool (*done)(void *), void *arg);
void cbdfs_engine_poll_end(void);

/* ------------------------------------------------------------------ */
/* session.c: the FUSE protocol on /dev/fuse; fuse-uring.c: io_uring  */
/* ------------------------------------------------------------------ */

/*
 * A request being served.  With io_uring it lives in the entry that
 * carried it (ent); from /dev/fuse it is allocated, and freed by its
 * reply.  Either way it is valid until answered, from any thread.
 */
struct cbdfs_req {
	uint64_t unique;
	uint32_t opcode;
	struct cbdfs *fs;
	struct cbdfs_uring_ent *ent; /* NULL: came from /dev/fuse */
};

/* What an operation gets of its request. */
struct cbdfs_in {
	uint64_t nodeid;
	uint32_t uid;
	const void *arg;     /* the op's in-struct (insize bytes) */
	const void *payload; /* what follows: a name, WRITE data */
	size_t paylen;
};

/* An opcode cbdfs serves (ops.c). */
struct cbdfs_op {
	const char *name;
	uint32_t insize; /* its in-struct: shorter requests get EINVAL */
	void (*fn)(struct cbdfs_req *r, const struct cbdfs_in *in);
	bool noreply; /* FORGET, INTERRUPT: never answered */
};

const struct cbdfs_op *cbdfs_op_find(uint32_t opcode); /* NULL: ENOSYS */
const char *cbdfs_op_name(uint32_t opcode);

/*
 * Answer @r: @err (a positive errno, 0: success with the @n pieces of
 * @iov as the reply).  0, or -errno: the kernel took no reply (-ENOENT:
 * the request was interrupted and is gone).  @r is invalid afterwards.
 */
int cbdfs_reply(struct cbdfs_req *r, int err, const struct iovec *iov, int n);
int cbdfs_reply_buf(struct cbdfs_req *r, const void *buf, size_t len);
static inline int cbdfs_reply_err(struct cbdfs_req *r, int err)
{
	return cbdfs_reply(r, err, NULL, 0);
}
/* Drop a request that takes no reply (FORGET, INTERRUPT). */
void cbdfs_reply_none(struct cbdfs_req *r);

/*
 * One request as read from /dev/fuse (@n bytes): split into in-struct and
 * payload, and run; one that is shorter than a header or disagrees with
 * its own length is dropped (logged), there is no one to answer.
 */
void cbdfs_session_request(struct cbdfs_session *s, char *buf, size_t n);

/* Run a request: @arg is its in-struct, @payload the rest (session.c
 * and fuse-uring.c split what they received). */
void cbdfs_session_dispatch(struct cbdfs_req *r, const struct fuse_in_header *h,
			    const void *arg, size_t arglen, const void *payload,
			    size_t paylen);

/* Before the mount (signals), and after the unmount. */
int cbdfs_session_init(struct cbdfs *fs);
void cbdfs_session_destroy(struct cbdfs *fs);
/*
 * Negotiate INIT on @fd, serve with @threads workers (or the io_uring
 * queues) until stopped: a signal, an unmount, cbdfs_session_stop().
 * Replies may still be sent afterwards, until cbdfs_session_end().
 */
int cbdfs_session_run(struct cbdfs *fs, int fd, unsigned threads,
		      enum cbdfs_uring_mode mode);
void cbdfs_session_end(struct cbdfs *fs);
void cbdfs_session_stop(struct cbdfs *fs); /* async-signal-safe */
bool cbdfs_session_exiting(const struct cbdfs *fs);
/* Interrupt thread @t (SIGUSR1) until it has returned, and join it. */
void cbdfs_thread_stop(pthread_t t);

/* Replies this thread has sent over /dev/fuse so far. */
unsigned cbdfs_session_replies(void);

/* fuse-dev.c: @threads workers reading /dev/fuse, until the session is
 * exiting (then cbdfs_dev_stop joins them). */
int cbdfs_dev_start(struct cbdfs_session *s, unsigned threads);
void cbdfs_dev_stop(struct cbdfs_session *s);
/* A worker read a request (@held: the requests we hold now, it included):
 * it reads no more until it served it, and wakes a parked one if needed. */
void cbdfs_dev_took(uint32_t opcode, unsigned held);
/* A worker is about to block (waiting for room in a ring): wake a parked
 * one if nobody reads; no-op on other threads. */
void cbdfs_dev_may_block(void);

bool cbdfs_uring_enabled(void); /* the fuse module offers io_uring */
int cbdfs_uring_start(struct cbdfs *fs);
int cbdfs_uring_commit(struct cbdfs_req *r, int err, const struct iovec *iov,
		       int n);
/*
 * The session is exiting: wait until no queue thread runs a request or
 * polls any more (new ones fail with EIO), so that the blkdevs can be
 * released under them; replies are still committed until uring_free.
 */
void cbdfs_uring_quiesce(struct cbdfs *fs);
void cbdfs_uring_free(struct cbdfs *fs);

/* ------------------------------------------------------------------ */
/* names.c: inodes, attributes, links, directory snapshots             */
/* ------------------------------------------------------------------ */

enum cbdfs_ino_kind {
	CBDFS_INO_NONE,
	CBDFS_INO_ROOT,
	CBDFS_INO_FILE, /* backendN */
	CBDFS_INO_BYNAME,
	CBDFS_INO_LINK, /* by-name/NAME */
};

/* A directory listing as READDIR returns it (fuse_dirent records). */
struct cbdfs_dir {
	char *p;
	size_t size;
};

enum cbdfs_ino_kind cbdfs_ino_kind(uint64_t ino, uint32_t *id);
/* The inode of @name in @parent, or 0. */
uint64_t cbdfs_lookup(struct cbdfs *fs, uint64_t parent, const char *name);
/* Attributes of @ino now: 0, or -ENOENT (gone); @bi may be NULL. */
int cbdfs_attr(struct cbdfs *fs, uint64_t ino, struct fuse_attr *a,
	       struct cbdfs_backend_info *bi);
/* The target of by-name/NAME of backend @id: its length, or -ENOENT. */
int cbdfs_link_target(struct cbdfs *fs, uint32_t id, char *buf, size_t size);
int cbdfs_dir_open(struct cbdfs *fs, uint64_t ino, struct cbdfs_dir **out);
void cbdfs_dir_free(struct cbdfs_dir *d);
void cbdfs_totals(struct cbdfs *fs, uint64_t *blocks, uint64_t *files);

#endif /* CBD_CBDFS_H */
