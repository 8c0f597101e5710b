/* SPDX-License-Identifier: MIT */
/*
 * cbdfs request engine: FUSE reads, writes, flushes and trims become
 * commands on libcbdt queues, one per channel of a mapped blkdev (split
 * when larger than a command may be), and each queue's reaper thread
 * answers FUSE once the backend completed them.
 *
 * Concurrency: any FUSE worker submits (the library serialises the
 * channel's producer side) and returns without waiting; the reaper
 * answers.  A split request's parent is shared by its commands through
 * atomic counters; the write epochs that order fsync are under bd->wlock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "cbdfs.h"
#include "log.h"
#include "util.h"

#define TRIM_CHUNK (1U << 30) /* DISCARD/WRITE_ZEROES per command */
#define REAP_BATCH 32
/* Requests in flight on a packed queue before the next one is used: a
 * QD32 stream stays on one handler, more spreads. */
#define PACK_DEPTH   32U
#define PACK_MAX_LEN (64U << 10)
/* Reaper spin before sleeping: as short as a handler's poll_us default,
 * for the same reason (docs/performance.md, phase 2). */
#define REAPER_SPIN_NS 3000U
#define SCAN_NS	       100000000ULL  /* timeout scan period */
#define WAIT_SLICE_NS  1000000000ULL /* unbounded waits re-check exit */

/* A request split into several commands (larger than max_chunk). */
struct cbdfs_io {
	struct cbdfs_req *req;
	uint16_t op;
	int remaining; /* commands + the submitter's bias; atomic */
	int error;     /* first errno; atomic */
	uint64_t offset;
	size_t len;
	char *buf; /* READ: the data, assembled */
};

static void reply_write(struct cbdfs_req *req, size_t len)
{
	struct fuse_write_out out = {.size = (uint32_t)len};

	cbdfs_reply_buf(req, &out, sizeof(out));
}

static int errno_of(int result)
{
	return result < 0 && result > -4096 ? -result : EIO;
}

int cbdfs_cond_wait_until(struct cbdfs *fs, pthread_cond_t *c,
			  pthread_mutex_t *m, uint64_t deadline_ns)
{
	int ret = cbdt_cond_wait_until(c, m, deadline_ns);

	if (!ret && cbdfs_session_exiting(fs))
		return -ESHUTDOWN;
	return ret;
}

/* ---- polling: a FUSE thread reaps what it submitted ------------------ */

/*
 * The queues this thread submitted to since its last cbdfs_engine_poll_end().
 * Each holds one count of its blkdev's pollers until then, so that the
 * blkdev's queues are not freed under us: over /dev/fuse our answer goes
 * to the kernel at once, and a RELEASE read meanwhile by another worker
 * could unmap the blkdev before we let go of its queues.
 */
#define POLL_MAX 8
/* Larger commands take longer than polling is worth, and their copies
 * are better made by the reapers, beside the polling thread. */
#define POLL_MAX_LEN (64U << 10)
static __thread struct {
	bool on;
	unsigned held; /* FUSE requests our transport holds (cbdfs_engine_held) */
	unsigned n;
	struct cbdfs_queue *q[POLL_MAX];
} tl_poll;

/* True if this thread will poll @q for what it submits now. */
static bool poll_take(struct cbdfs_queue *q)
{
	if (!tl_poll.on)
		return false;
	for (unsigned i = 0; i < tl_poll.n; i++)
		if (tl_poll.q[i] == q)
			return true;
	if (tl_poll.n == POLL_MAX)
		return false;
	/* pairs with the load-acquire in cbdfs_engine_stop() */
	atomic_add_release(&q->bd->pollers, 1);
	tl_poll.q[tl_poll.n++] = q;
	return true;
}

/* The reapers take over what this thread polls for: before it blocks. */
static void poll_handoff(void)
{
	for (unsigned i = 0; i < tl_poll.n; i++)
		cbdt_queue_kick(tl_poll.q[i]->q);
}

/*
 * Let go of the queues of blkdevs being stopped (all with @all): their
 * reapers take over, and our count of the blkdev's pollers goes, after
 * our last look at the queue.  A thread that polls on while answers flow
 * (io_uring) lets go here of a blkdev unmapped meanwhile, and the thread
 * that unmaps one lets go of it before it waits for the others.
 */
static void poll_drop(bool all)
{
	unsigned n = 0;

	for (unsigned i = 0; i < tl_poll.n; i++) {
		struct cbdfs_queue *q = tl_poll.q[i];

		if (!all && !smp_load_acquire(&q->bd->stopping)) {
			tl_poll.q[n++] = q;
			continue;
		}
		cbdt_queue_kick(q->q);
		/* pairs with the load-acquire in cbdfs_engine_stop() */
		atomic_sub_return(&q->bd->pollers, 1);
	}
	tl_poll.n = n;
}

static void strays_log(struct cbdfs_queue *q, uint32_t strays)
{
	if (strays)
		log_warn(
			"backend%u: queue %u: %u completions for no request in flight",
			q->bd->backend_id, q->idx, strays);
}

void cbdfs_engine_poll_enable(bool on)
{
	tl_poll.on = on;
}

void cbdfs_engine_held(unsigned n)
{
	tl_poll.held = n;
}

/* Nothing left in flight in the queues polled (whoever reaped it). */
static bool poll_empty(void)
{
	for (unsigned i = 0; i < tl_poll.n; i++)
		if (cbdt_queue_inflight(tl_poll.q[i]->q))
			return false;
	return true;
}

bool cbdfs_engine_poll(uint64_t budget_ns, bool (*done)(void *), void *arg)
{
	uint64_t deadline = 0;
	uint32_t strays;

	poll_drop(false);
	while (tl_poll.n && !poll_empty()) {
		if (done(arg))
			return true; /* the caller comes back for the rest */
		if (!deadline)
			deadline = cbdt_now_ns() + budget_ns;
		else if (cbdt_now_ns() >= deadline)
			break;
		for (unsigned i = 0; i < tl_poll.n; i++) {
			strays = 0;
			cbdt_queue_reap_try(tl_poll.q[i]->q, REAP_BATCH,
					    &strays);
			strays_log(tl_poll.q[i], strays);
		}
		cpu_relax();
	}
	return false;
}

void cbdfs_engine_poll_end(void)
{
	poll_drop(true);
}

/* ---- write epochs: fsync covers every write submitted before it ---- */

uint8_t cbdfs_wepoch_get(struct cbdfs_blkdev *bd)
{
	uint8_t p;

	pthread_mutex_lock(&bd->wlock);
	p = (uint8_t)(bd->wepoch & 1);
	bd->wcount[p]++;
	pthread_mutex_unlock(&bd->wlock);
	return p;
}

void cbdfs_wepoch_put(struct cbdfs_blkdev *bd, uint8_t p)
{
	pthread_mutex_lock(&bd->wlock);
	if (--bd->wcount[p] == 0)
		pthread_cond_broadcast(&bd->wdone);
	pthread_mutex_unlock(&bd->wlock);
}

/*
 * Close the current epoch and wait until its writes completed.  Callers
 * hold flush_lock, so the parity being drained is never reused meanwhile.
 */
/* Writes on a broken queue were failed with EIO and never complete. */
static bool bdev_any_broken(struct cbdfs_blkdev *bd)
{
	for (unsigned i = 0; i < bd->nq; i++)
		if (cbdfs_queue_broken(&bd->q[i]))
			return true;
	return false;
}

static int wepoch_drain(struct cbdfs_blkdev *bd)
{
	uint64_t deadline = bd->fs->cfg.timeout_s ?
				    cbdt_now_ns() + cbdfs_timeout_ns(bd->fs) :
				    0;
	int ret = 0;
	uint8_t p;

	poll_handoff(); /* our own writes may be among those waited for */
	pthread_mutex_lock(&bd->wlock);
	p = (uint8_t)(bd->wepoch++ & 1);
	/* A broken queue's writes never come back to lower the count: the
	 * fsync fails (within a wait slice) instead of waiting forever. */
	while (bd->wcount[p] && !ret)
		ret = bdev_any_broken(bd) ?
			      -EIO :
			      cbdfs_cond_wait_until(bd->fs, &bd->wdone,
						    &bd->wlock, deadline);
	pthread_mutex_unlock(&bd->wlock);
	return ret ? -EIO : 0;
}

/* ---- answering ------------------------------------------------------ */

static void io_set_error(struct cbdfs_io *io, int e)
{
	int zero = 0;

	/* the first error wins; io_put's acquire/release publishes it */
	cmpxchg(&io->error, &zero, e);
}

/* Drop @n references; the last one answers and frees the request. */
static void io_put(struct cbdfs_io *io, int n)
{
	int e;

	if (atomic_sub_return(&io->remaining, n) != 0)
		return;
	e = READ_ONCE(io->error);
	if (e)
		cbdfs_reply_err(io->req, e);
	else if (io->op == CBDT_OP_READ)
		cbdfs_reply_buf(io->req, io->buf, io->len);
	else if (io->op == CBDT_OP_WRITE)
		reply_write(io->req, io->len);
	else
		cbdfs_reply_err(io->req, 0);
	free(io->buf);
	free(io);
}

/* Answer for one finished command (the queue's reaper). */
void cbdfs_cmd_answer(struct cbdfs_queue *q, void *who, bool is_io,
		      const struct cbdt_queue_done *d)
{
	/* timeout= fails a request with EIO, as a disk would */
	int result = d->result == -ETIMEDOUT ? -EIO : d->result;
	struct cbdfs_io *io = who;
	struct cbdfs_req *req = who;

	if (result == -EBADMSG)
		log_warn("backend%u: queue %u: %s at %llu: data crc mismatch",
			 q->bd->backend_id, q->idx,
			 d->op == CBDT_OP_READ ? "READ" : "request",
			 (unsigned long long)d->offset);
	if (is_io) {
		if (result < 0)
			io_set_error(io, errno_of(result));
		else if (d->op == CBDT_OP_READ)
			memcpy(io->buf + (d->offset - io->offset), d->data,
			       d->len);
		io_put(io, 1);
		return;
	}
	if (result < 0) {
		cbdfs_reply_err(req, errno_of(result));
		return;
	}
	switch (d->op) {
	case CBDT_OP_READ:
		/* one copy: the shared data area straight to the kernel */
		cbdfs_reply_buf(req, d->data, d->len);
		break;
	case CBDT_OP_WRITE:
		reply_write(req, d->len);
		break;
	default:
		cbdfs_reply_err(req, 0);
	}
}

/*
 * The lowest queue that is not broken with fewer than @depth in flight
 * (with @pack, before the first whose handler does not pack), or NULL.
 */
static struct cbdfs_queue *queue_lowest(struct cbdfs_blkdev *bd, unsigned depth,
					bool pack)
{
	for (unsigned i = 0; i < bd->nq; i++) {
		struct cbdt_queue *q = bd->q[i].q;
		struct cbdt_channel *ch = cbdt_queue_channel(q);

		if (pack && !cbdt_channel_packs(ch))
			break;
		/* a broken queue fails what it gets: not more than its turn */
		if (cbdt_channel_inflight(ch) < depth && !cbdt_queue_broken(q))
			return &bd->q[i];
	}
	return NULL;
}

/*
 * Which queue a request of @len bytes goes to.  The only request our FUSE
 * transport holds (QD1) goes to the lowest idle queue: one handler takes
 * request after request, and its adaptive poll (poll_max_us) catches the
 * next one without a wake-up; handlers taking turns would each see a
 * quarter of them and sleep in between.  Behind a handler that says its
 * store is memory (CBDT_HF_PACK), a small request that arrived while our
 * transport holds others goes to the lowest queue with fewer than
 * PACK_DEPTH in flight: one busy handler serves them with fewer wake-ups
 * than several taking turns.  A large one (its copy costs more than a
 * wake-up, and handlers copy in parallel) and every request behind a disk
 * take turns, so that every handler keeps one at its device.
 * docs/performance.md, "Packing".
 */
static struct cbdfs_queue *queue_pick(struct cbdfs_blkdev *bd, uint64_t len)
{
	struct cbdfs_queue *q = NULL;
	unsigned i;

	if (tl_poll.held <= 1)
		q = queue_lowest(bd, 1, false);
	else if (len <= PACK_MAX_LEN)
		q = queue_lowest(bd, PACK_DEPTH, true);
	if (q)
		return q;
	i = atomic_fetch_add_relaxed(&bd->rr, 1);
	return &bd->q[i % bd->nq];
}

/*
 * Submit [off, off + len) as one command, or as several on one queue with
 * a parent that answers when the last one is done.
 */
static void engine_submit(struct cbdfs_blkdev *bd, struct cbdfs_req *req,
			  uint16_t op, uint64_t off, uint64_t len,
			  const char *wbuf)
{
	bool has_data = op == CBDT_OP_READ || op == CBDT_OP_WRITE;
	uint64_t chunk = has_data ? bd->max_chunk : TRIM_CHUNK, done;
	struct cbdfs_queue *q = queue_pick(bd, len);
	struct cbdfs_cmd_desc d = {.op = op, .offset = off, .wbuf = wbuf};
	struct cbdfs_io *io;
	int ret, n;

	if (len <= chunk) {
		d.len = (uint32_t)len;
		d.req = req;
		ret = cbdfs_queue_submit(q, &d);
		if (ret)
			cbdfs_reply_err(req, errno_of(ret));
		return;
	}
	io = calloc(1, sizeof(*io));
	if (io && op == CBDT_OP_READ)
		io->buf = malloc(len);
	if (!io || (op == CBDT_OP_READ && !io->buf)) {
		free(io);
		cbdfs_reply_err(req, ENOMEM);
		return;
	}
	n = (int)((len + chunk - 1) / chunk);
	io->req = req;
	io->op = op;
	io->offset = off;
	io->len = len;
	io->remaining = n + 1;
	for (done = 0; done < len; done += d.len, n--) {
		d.offset = off + done;
		d.len = (uint32_t)MIN(chunk, len - done);
		d.wbuf = wbuf ? wbuf + done : NULL;
		d.io = io;
		ret = cbdfs_queue_submit(q, &d);
		if (ret) {
			io_set_error(io, errno_of(ret));
			break;
		}
	}
	/* commands never queued, plus the submitter's own reference */
	io_put(io, n + 1);
}

void cbdfs_engine_read(struct cbdfs_blkdev *bd, struct cbdfs_req *req,
		       uint64_t off, size_t len)
{
	if (off >= bd->size || len == 0) {
		cbdfs_reply_buf(req, NULL, 0);
		return;
	}
	engine_submit(bd, req, CBDT_OP_READ, off, MIN(len, bd->size - off),
		      NULL);
}

void cbdfs_engine_write(struct cbdfs_blkdev *bd, struct cbdfs_req *req,
			const char *buf, uint64_t off, size_t len)
{
	if (bd->ro) {
		cbdfs_reply_err(req, EROFS);
		return;
	}
	if (len == 0) {
		reply_write(req, 0);
		return;
	}
	/* a block device: no growing; a write across the end is short */
	if (off >= bd->size) {
		cbdfs_reply_err(req, ENOSPC);
		return;
	}
	engine_submit(bd, req, CBDT_OP_WRITE, off, MIN(len, bd->size - off),
		      buf);
}

/*
 * A backend with a cache acknowledges every write once it is durable in
 * the transport: a FLUSH would find nothing to do.  Its record says so
 * (read now: a restart without the cache takes the flag away).
 */
static bool flush_free(const struct cbdfs_blkdev *bd)
{
	struct cbdt_backend_rec rec;

	return !cbdt_backend_read(bd->fs->t, bd->backend_id, &rec) &&
	       rec.ident == bd->b->backend_ident &&
	       (rec.flags & CBDT_BACKEND_CACHED);
}

void cbdfs_engine_flush(struct cbdfs_blkdev *bd, struct cbdfs_req *req)
{
	int ret;

	if (bd->ro) {
		cbdfs_reply_err(req, 0);
		return;
	}
	pthread_mutex_lock(&bd->flush_lock);
	ret = wepoch_drain(bd);
	pthread_mutex_unlock(&bd->flush_lock);
	if (ret || flush_free(bd)) {
		cbdfs_reply_err(req, ret ? EIO : 0);
		return;
	}
	engine_submit(bd, req, CBDT_OP_FLUSH, 0, 0, NULL);
}

void cbdfs_engine_trim(struct cbdfs_blkdev *bd, struct cbdfs_req *req,
		       uint16_t op, uint64_t off, uint64_t len)
{
	if (bd->ro) {
		cbdfs_reply_err(req, EROFS);
		return;
	}
	if (off >= bd->size || len == 0) {
		cbdfs_reply_err(req, 0);
		return;
	}
	engine_submit(bd, req, op, off, MIN(len, bd->size - off), NULL);
}

/* ---- submission ------------------------------------------------------ */

/*
 * The cookie of a command: the struct cbdfs_req *, or the split request (tag 1),
 * and for a WRITE the parity of the write epoch it counts in (tag 2).
 * Both are aligned to 8 at least: the low bits are free.
 */
#define COOKIE_IO    1U
#define COOKIE_EPOCH 2U
#define COOKIE_TAGS  3U

int cbdfs_queue_submit(struct cbdfs_queue *q, const struct cbdfs_cmd_desc *d)
{
	struct cbdfs *fs = q->bd->fs;
	uint64_t deadline = 0, slice;
	uintptr_t cookie = d->io ? (uintptr_t)d->io | COOKIE_IO :
				   (uintptr_t)d->req;
	struct cbdt_queue_req r = {
		.op = d->op,
		.offset = d->offset,
		.len = d->len,
		.wbuf = d->wbuf,
	};
	int ret;

	if (fs->cfg.timeout_s)
		deadline = cbdt_now_ns() + cbdfs_timeout_ns(fs);
	if (d->op == CBDT_OP_WRITE && cbdfs_wepoch_get(q->bd))
		cookie |= COOKIE_EPOCH;
	r.cookie = (void *)cookie;
	r.polled = d->len <= POLL_MAX_LEN && poll_take(q);
	r.lone = tl_poll.held <= 1;
	ret = cbdt_queue_submit(q->q, &r);
	if (ret == -EAGAIN)
		cbdfs_dev_may_block(); /* others may read FUSE meanwhile */
	/* Wait for room in slices, so that an exiting session never hangs
	 * a worker behind a dead backend. */
	while (ret == -EAGAIN) {
		slice = cbdt_now_ns() + WAIT_SLICE_NS;
		ret = cbdt_queue_submit_wait(
			q->q, &r,
			deadline && deadline < slice ? deadline : slice);
		if (ret != -ETIMEDOUT ||
		    (deadline && cbdt_now_ns() >= deadline))
			break;
		if (cbdfs_session_exiting(fs)) {
			ret = -ESHUTDOWN;
			break;
		}
		ret = -EAGAIN; /* a slice passed: wait on */
	}
	if (ret && d->op == CBDT_OP_WRITE)
		cbdfs_wepoch_put(q->bd, cookie & COOKIE_EPOCH ? 1 : 0);
	return ret == -ETIMEDOUT || ret == -ESHUTDOWN ? -EIO : ret;
}

/* The queue's callback: answer FUSE, and count the write out once its
 * slot is given back (a timed-out write still counts until then). */
static void queue_done(void *arg, const struct cbdt_queue_done *d)
{
	struct cbdfs_queue *q = arg;
	uintptr_t cookie = (uintptr_t)d->cookie;

	if (d->answer)
		cbdfs_cmd_answer(q, (void *)(cookie & ~(uintptr_t)COOKIE_TAGS),
				 cookie & COOKIE_IO, d);
	if (d->last && d->op == CBDT_OP_WRITE)
		cbdfs_wepoch_put(q->bd, cookie & COOKIE_EPOCH ? 1 : 0);
}

/* ---- the reaper ------------------------------------------------------ */

bool cbdfs_queue_broken(struct cbdfs_queue *q)
{
	return cbdt_queue_broken(q->q);
}

/*
 * The ring must not be touched any more: it failed its checks, or our
 * blkdev was cleared by a janitor and the segment may be someone else's.
 */
void cbdfs_queue_break(struct cbdfs_queue *q)
{
	cbdt_queue_break(q->q);
}

static void *queue_reaper(void *arg)
{
	struct cbdfs_queue *q = arg;
	struct cbdfs_blkdev *bd = q->bd;
	uint64_t next_scan = 0, now;
	bool told = false;
	struct cbdt_wait w;
	uint32_t strays;
	int n;

	cbdt_wait_init(&w, &(struct cbdt_wait_cfg){.spin_ns = REAPER_SPIN_NS});
	for (;;) {
		strays = 0;
		n = cbdt_queue_reap(q->q, REAP_BATCH, &strays);
		strays_log(q, strays);
		if (n > 0) {
			cbdt_wait_reset(&w);
			continue;
		}
		if (n < 0 && !told) {
			told = true;
			if (n == -EBADMSG)
				log_err("backend%u: queue %u: completion ring: %s",
					bd->backend_id, q->idx,
					cbdt_strerror(n));
			log_warn(
				"backend%u: queue %u: channel unusable: requests in flight fail with EIO",
				bd->backend_id, q->idx);
		}
		if (n == 0 && bd->fs->cfg.timeout_s) {
			now = cbdt_now_ns();
			if (now >= next_scan) {
				n = cbdt_queue_expire(q->q,
						      cbdfs_timeout_ns(bd->fs));
				if (n > 0)
					log_warn(
						"backend%u: queue %u: failing %d requests with EIO (timeout)",
						bd->backend_id, q->idx, n);
				next_scan = now + SCAN_NS;
			}
		}
		if (cbdt_queue_idle(q->q, &w) == -ESHUTDOWN)
			return NULL;
	}
}

/* ---- start / stop ---------------------------------------------------- */

int cbdfs_engine_start(struct cbdfs_blkdev *bd)
{
	uint32_t data = UINT32_MAX;
	unsigned i;
	int ret;

	bd->nq = bd->b->queues;
	bd->q = calloc(bd->nq, sizeof(*bd->q));
	if (!bd->q)
		return -ENOMEM;
	pthread_mutex_init(&bd->flush_lock, NULL);
	pthread_mutex_init(&bd->wlock, NULL);
	cbdt_cond_init_mono(&bd->wdone);
	for (i = 0; i < bd->nq; i++) {
		struct cbdfs_queue *q = &bd->q[i];

		q->bd = bd;
		q->idx = i;
		ret = cbdt_queue_new(bd->b->ch[i], queue_done, q, &q->q);
		if (ret)
			goto err_queues;
		data = MIN(data, cbdt_channel_geom(bd->b->ch[i])->data_size);
	}
	/* a quarter of the data area, so that big requests interleave */
	bd->max_chunk =
		MIN(CBDFS_MAX_IO, data / 4 / CBDT_DATA_UNIT * CBDT_DATA_UNIT);
	if (bd->fs->cfg.chunk)
		bd->max_chunk = MIN(bd->max_chunk, bd->fs->cfg.chunk);
	if (bd->max_chunk < CBDT_DATA_UNIT)
		bd->max_chunk = CBDT_DATA_UNIT;
	for (i = 0; i < bd->nq; i++) {
		ret = -pthread_create(&bd->q[i].reaper, NULL, queue_reaper,
				      &bd->q[i]);
		if (ret)
			goto err_queues;
		thread_name(bd->q[i].reaper, "reap-b%u.%u", bd->backend_id, i);
		bd->q[i].reaper_started = true;
	}
	return 0;

err_queues:
	cbdfs_engine_stop(bd, 0);
	return ret;
}

void cbdfs_engine_stop(struct cbdfs_blkdev *bd, uint32_t drain_ms)
{
	uint64_t deadline = cbdt_now_ns() + (uint64_t)drain_ms * 1000000ULL;
	unsigned i;

	if (!bd->q)
		return;
	/* A thread still polling (for a request answered meanwhile) lets go
	 * within its budget, or at its next poll; none starts: nothing is
	 * submitted any more.  We may be such a thread ourselves (a queue
	 * thread running a RELEASE while it polls).  Pairs with the release
	 * in poll_take() and poll_drop(). */
	WRITE_ONCE(bd->stopping, true);
	smp_mb(); /* stopping before our look at pollers */
	poll_drop(false);
	while (smp_load_acquire(&bd->pollers))
		cbdt_sleep_ms(1);
	for (i = 0; i < bd->nq; i++) {
		struct cbdfs_queue *q = &bd->q[i];
		uint32_t busy;

		if (!q->q)
			continue;
		cbdt_queue_drain(q->q, deadline);
		busy = cbdt_queue_busy(q->q);
		if (busy)
			log_warn(
				"backend%u: queue %u: %u requests still in flight at unmap",
				bd->backend_id, i, busy);
		cbdt_queue_stop(q->q);
		if (q->reaper_started)
			pthread_join(q->reaper, NULL);
		q->reaper_started = false;
		/* the reaper is gone: what it never answered fails now */
		cbdt_queue_free(q->q);
		q->q = NULL;
	}
	free(bd->q);
	bd->q = NULL;
	pthread_mutex_destroy(&bd->flush_lock);
	pthread_mutex_destroy(&bd->wlock);
	pthread_cond_destroy(&bd->wdone);
}
