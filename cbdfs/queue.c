/* SPDX-License-Identifier: MIT */
/*
 * cbdfs queues: one per channel of a mapped blkdev.  Command slots, the
 * submission of one command (waiting while the ring or the data area is
 * full), the reaper thread, timeouts, start and drain.
 *
 * Concurrency: submitters (FUSE workers) hold the queue lock, which
 * serialises the channel's producer side (submit, data alloc/free) and the
 * slots; one reaper thread per queue alone reaps, answers (engine.c) and
 * then frees slots and extents under the lock.  A command that timed out
 * was answered with EIO but keeps its slot and extent until its completion
 * arrives or the channel is torn down: the handler may still write there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cbdfs.h"
#include "log.h"
#include "util.h"

#define CMD_NONE	0xffffU
#define CMD_IDX(id)	((uint32_t)((id) & 0xffffU))
#define COPY_UNLOCKED	(64U << 10)	/* larger writes copy outside the lock */
#define REAP_BATCH	32
/* Reaper spin before sleeping; see HANDLER_SPIN_NS in backend/handler.c
 * for why it is short (measured, 2 cores). */
#define REAPER_SPIN_NS	3000U
#define SCAN_NS		100000000ULL	/* timeout scan period */
#define WAIT_SLICE_NS	1000000000ULL	/* unbounded waits re-check exit */

void cbdfs_cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int cbdfs_cond_wait_until(struct cbdfs *fs, pthread_cond_t *c,
			   pthread_mutex_t *m, uint64_t deadline_ns)
{
	uint64_t now = cbdt_now_ns(), until = now + WAIT_SLICE_NS;
	struct timespec ts;

	if (deadline_ns && now >= deadline_ns)
		return -ETIMEDOUT;
	if (deadline_ns && deadline_ns < until)
		until = deadline_ns;
	ts.tv_sec = (time_t)(until / 1000000000ULL);
	ts.tv_nsec = (long)(until % 1000000000ULL);
	pthread_cond_timedwait(c, m, &ts);
	if (fs->se && fuse_session_exited(fs->se))
		return -ESHUTDOWN;
	return 0;
}

/* ---- slots ---------------------------------------------------------- */

static struct cbdfs_cmd *cmd_alloc(struct cbdfs_queue *q)
{
	struct cbdfs_cmd *c;

	if (q->free_head == CMD_NONE)
		return NULL;
	c = &q->cmds[q->free_head];
	q->free_head = c->next_free;
	c->in_use = true;
	q->busy++;
	return c;
}

static void cmd_free(struct cbdfs_queue *q, struct cbdfs_cmd *c)
{
	c->in_use = false;
	c->submitted = false;
	/* A reused slot must not look timed out to queue_fail_stale(). */
	c->timed_out = false;
	c->next_free = (uint16_t)q->free_head;
	q->free_head = (uint32_t)(c - q->cmds);
	q->busy--;
}

/* The command a completion names, or NULL for a stray req_id. */
static struct cbdfs_cmd *cmd_lookup(struct cbdfs_queue *q, uint64_t req_id)
{
	uint32_t i = CMD_IDX(req_id);

	if (i >= q->ncmds || !q->cmds[i].in_use || q->cmds[i].req_id != req_id)
		return NULL;
	return &q->cmds[i];
}

/* Undo a slot that never reached the ring (lock held). */
static void cmd_abandon(struct cbdfs_queue *q, struct cbdfs_cmd *c)
{
	if (c->data_len)
		cbdt_channel_data_free(q->ch, c->data_off, c->data_len);
	if (c->op == CBDT_OP_WRITE)
		cbdfs_wepoch_put(q->bd, c->wepoch);
	cmd_free(q, c);
	if (q->busy == 0)
		pthread_cond_broadcast(&q->idle);
}

/* Wait for a free slot or extent (lock held); -EIO on timeout or exit. */
static int queue_wait_space(struct cbdfs_queue *q, uint64_t deadline)
{
	int ret;

	q->waiters++;
	ret = cbdfs_cond_wait_until(q->bd->fs, &q->space, &q->lock, deadline);
	q->waiters--;
	return ret ? -EIO : 0;
}

int cbdfs_queue_submit(struct cbdfs_queue *q, const struct cbdfs_cmd_desc *d)
{
	struct cbdfs_bdev *bd = q->bd;
	bool has_data = d->op == CBDT_OP_READ || d->op == CBDT_OP_WRITE;
	uint32_t dlen = has_data ? d->len : 0, doff = 0;
	uint64_t deadline = 0;
	struct cbdt_request rq;
	struct cbdfs_cmd *c;
	int ret;

	if (bd->fs->cfg.timeout_s)
		deadline = cbdt_now_ns() + cbdfs_timeout_ns(bd->fs);
	pthread_mutex_lock(&q->lock);
	for (;;) {
		if (q->broken || q->stop) {
			ret = -EIO;
			goto out_unlock;
		}
		if (q->free_head != CMD_NONE) {
			if (!dlen)
				break;
			ret = cbdt_channel_data_alloc(q->ch, dlen, &doff);
			if (!ret)
				break;
			if (ret != -ENOSPC)
				goto out_unlock;
		}
		ret = queue_wait_space(q, deadline);
		if (ret)
			goto out_unlock;
	}
	c = cmd_alloc(q);
	c->req_id = (++q->seq << 16) | (uint64_t)(c - q->cmds);
	c->offset = d->offset;
	c->len = d->len;
	c->op = d->op;
	c->io = d->io;
	c->req = d->req;
	c->data_off = doff;
	c->data_len = dlen;
	c->timed_out = false;
	if (d->op == CBDT_OP_WRITE) {
		c->wepoch = cbdfs_wepoch_get(bd);
		if (dlen > COPY_UNLOCKED) {
			pthread_mutex_unlock(&q->lock);
			memcpy(cbdt_channel_data(q->ch, doff), d->wbuf, dlen);
			pthread_mutex_lock(&q->lock);
		} else {
			memcpy(cbdt_channel_data(q->ch, doff), d->wbuf, dlen);
		}
	}
	rq = (struct cbdt_request){
		.op = d->op,
		.req_id = c->req_id,
		.offset = d->offset,
		.len = d->len,
		.data_off = doff,
		.data_len = dlen,
	};
	c->submit_ns = cbdt_now_ns();
	for (;;) {
		ret = (q->broken || q->stop) ? -EIO
					     : cbdt_channel_submit(q->ch, &rq);
		if (ret != -EAGAIN)
			break;
		/* not expected: we never hold more slots than the rings */
		ret = queue_wait_space(q, deadline);
		if (ret)
			break;
	}
	if (ret) {
		cmd_abandon(q, c);
		goto out_unlock;
	}
	c->submitted = true;
	q->inflight++;
	if (q->reaper_idle)
		pthread_cond_signal(&q->wake);
out_unlock:
	pthread_mutex_unlock(&q->lock);
	return ret;
}

/* ---- the reaper ------------------------------------------------------ */

/* Free finished commands' extents and slots, wake whoever waits. */
static void queue_put_batch(struct cbdfs_queue *q, struct cbdfs_cmd **done,
			    unsigned n)
{
	unsigned i;

	pthread_mutex_lock(&q->lock);
	for (i = 0; i < n; i++) {
		if (done[i]->data_len)
			cbdt_channel_data_free(q->ch, done[i]->data_off,
					       done[i]->data_len);
		cmd_free(q, done[i]);
	}
	q->inflight -= n;
	if (q->waiters)
		pthread_cond_broadcast(&q->space);
	if (q->busy == 0)
		pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
}

/*
 * Fail every submitted command still waiting for an answer: older than
 * timeout= (@all false) or all of them (@all: the ring is broken or being
 * torn down).  They keep their slots and extents: the ring still owns them.
 */
static void queue_fail_stale(struct cbdfs_queue *q, bool all)
{
	uint64_t now = cbdt_now_ns(), tmo = cbdfs_timeout_ns(q->bd->fs);
	unsigned i, n = 0;

	pthread_mutex_lock(&q->lock);
	for (i = 0; i < q->ncmds; i++) {
		struct cbdfs_cmd *c = &q->cmds[i];

		if (!c->in_use || !c->submitted || c->timed_out)
			continue;
		if (!all && now - c->submit_ns < tmo)
			continue;
		c->timed_out = true;
		n++;
	}
	pthread_mutex_unlock(&q->lock);
	if (!n)
		return;
	warn("backend%u: queue %u: failing %u requests with EIO (%s)",
	     q->bd->backend_id, q->idx, n,
	     all ? "channel unusable" : "timeout");
	/* only this thread answers submitted commands: no race with reaping */
	for (i = 0; i < q->ncmds; i++) {
		struct cbdfs_cmd *c = &q->cmds[i];

		if (c->timed_out && (c->req || c->io)) {
			cbdfs_cmd_answer(q, c, -EIO);
			c->req = NULL;
			c->io = NULL;
		}
	}
}

static void queue_reap_one(struct cbdfs_queue *q,
			   const struct cbdt_completion *cp,
			   struct cbdfs_cmd **done, unsigned *ndone)
{
	struct cbdfs_cmd *c = cmd_lookup(q, cp->req_id);

	if (!c) {
		warn("backend%u: queue %u: completion for unknown request %#llx",
		     q->bd->backend_id, q->idx,
		     (unsigned long long)cp->req_id);
		return;
	}
	if (cp->result == -EBADMSG)
		warn("backend%u: queue %u: request %#llx: %s at %llu: data crc mismatch",
		     q->bd->backend_id, q->idx, (unsigned long long)cp->req_id,
		     c->op == CBDT_OP_READ ? "READ" : "request",
		     (unsigned long long)c->offset);
	if (!c->timed_out)
		cbdfs_cmd_answer(q, c, cp->result);
	if (c->op == CBDT_OP_WRITE)
		cbdfs_wepoch_put(q->bd, c->wepoch);
	done[(*ndone)++] = c;
}

bool cbdfs_queue_broken(struct cbdfs_queue *q)
{
	/* written under q->lock; a stale false costs one more reap at most */
	return __atomic_load_n(&q->broken, __ATOMIC_ACQUIRE);
}

/*
 * The ring must not be touched any more: it failed its checks, or our
 * blkdev was cleared by a janitor and the segment may be someone else's.
 */
void cbdfs_queue_break(struct cbdfs_queue *q)
{
	pthread_mutex_lock(&q->lock);
	__atomic_store_n(&q->broken, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&q->space);
	pthread_cond_broadcast(&q->idle);
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

/* A broken queue's reaper: fail what is in flight, then wait for stop. */
static void queue_reaper_broken(struct cbdfs_queue *q)
{
	queue_fail_stale(q, true);
	pthread_mutex_lock(&q->lock);
	while (!q->stop)
		pthread_cond_wait(&q->wake, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

static void *queue_reaper(void *arg)
{
	struct cbdfs_queue *q = arg;
	struct cbdt_completion cp;
	struct cbdfs_cmd *done[REAP_BATCH];
	uint64_t next_scan = 0, now;
	struct cbdt_wait w;
	unsigned n;
	int r = 0;

	cbdt_wait_init(&w,
		       &(struct cbdt_wait_cfg){ .spin_ns = REAPER_SPIN_NS });
	while (!cbdfs_queue_broken(q)) {
		n = 0;
		while (n < REAP_BATCH) {
			r = cbdt_channel_reap(q->ch, &cp);
			if (r <= 0)
				break;
			queue_reap_one(q, &cp, done, &n);
		}
		if (n) {
			queue_put_batch(q, done, n);
			cbdt_wait_reset(&w);
			continue;
		}
		if (r < 0) {
			err("backend%u: queue %u: completion ring: %s",
			    q->bd->backend_id, q->idx, cbdt_strerror(r));
			cbdfs_queue_break(q);
			break;
		}
		if (q->bd->fs->cfg.timeout_s) {
			now = cbdt_now_ns();
			if (now >= next_scan) {
				queue_fail_stale(q, false);
				next_scan = now + SCAN_NS;
			}
		}
		if (!cbdt_wait_would_sleep(&w)) {
			cbdt_channel_client_wait(q->ch, &w);
			continue;
		}
		/* spinning is over: sleep on the cv if nothing is in flight */
		pthread_mutex_lock(&q->lock);
		if (q->stop) {
			pthread_mutex_unlock(&q->lock);
			return NULL;
		}
		if (q->inflight == 0) {
			q->reaper_idle = true;
			pthread_cond_wait(&q->wake, &q->lock);
			q->reaper_idle = false;
			pthread_mutex_unlock(&q->lock);
			cbdt_wait_reset(&w);
			continue;
		}
		pthread_mutex_unlock(&q->lock);
		cbdt_channel_client_wait(q->ch, &w);
	}
	queue_reaper_broken(q);
	return NULL;
}

/* ---- start / stop ---------------------------------------------------- */

static int queue_init(struct cbdfs_bdev *bd, unsigned idx)
{
	struct cbdfs_queue *q = &bd->q[idx];
	const struct cbdt_channel_geom *g;
	uint32_t i;

	q->bd = bd;
	q->idx = idx;
	q->ch = bd->b->ch[idx];
	g = cbdt_channel_geom(q->ch);
	q->ncmds = MIN(MIN(g->se_count, g->ce_count), CMD_NONE);
	q->cmds = calloc(q->ncmds, sizeof(*q->cmds));
	if (!q->cmds)
		return -ENOMEM;
	for (i = 0; i < q->ncmds; i++)
		q->cmds[i].next_free = (uint16_t)(i + 1 < q->ncmds ? i + 1
								   : CMD_NONE);
	q->free_head = 0;
	pthread_mutex_init(&q->lock, NULL);
	cbdfs_cond_init_mono(&q->space);
	cbdfs_cond_init_mono(&q->idle);
	pthread_cond_init(&q->wake, NULL);
	return 0;
}

static void queue_destroy(struct cbdfs_queue *q)
{
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->space);
	pthread_cond_destroy(&q->idle);
	pthread_cond_destroy(&q->wake);
	free(q->cmds);
}

int cbdfs_engine_start(struct cbdfs_bdev *bd)
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
	cbdfs_cond_init_mono(&bd->wdone);
	for (i = 0; i < bd->nq; i++) {
		ret = queue_init(bd, i);
		if (ret)
			goto err_queues;
		data = MIN(data, cbdt_channel_geom(bd->q[i].ch)->data_size);
	}
	/* a quarter of the data area, so that big requests interleave */
	bd->max_chunk = MIN(CBDFS_MAX_IO, data / 4 / CBDT_DATA_UNIT * CBDT_DATA_UNIT);
	if (bd->fs->cfg.chunk)
		bd->max_chunk = MIN(bd->max_chunk, bd->fs->cfg.chunk);
	if (bd->max_chunk < CBDT_DATA_UNIT)
		bd->max_chunk = CBDT_DATA_UNIT;
	for (i = 0; i < bd->nq; i++) {
		ret = -pthread_create(&bd->q[i].reaper, NULL, queue_reaper,
				      &bd->q[i]);
		if (ret) {
			i = bd->nq;
			goto err_queues;
		}
		bd->q[i].reaper_started = true;
	}
	return 0;

err_queues:
	cbdfs_engine_stop(bd, 0);
	return ret;
}

void cbdfs_engine_stop(struct cbdfs_bdev *bd, uint32_t drain_ms)
{
	uint64_t deadline = cbdt_now_ns() + (uint64_t)drain_ms * 1000000ULL;
	unsigned i;

	if (!bd->q)
		return;
	for (i = 0; i < bd->nq; i++) {
		struct cbdfs_queue *q = &bd->q[i];

		if (!q->cmds)
			continue;
		pthread_mutex_lock(&q->lock);
		while (q->busy && !q->broken &&
		       cbdfs_cond_wait_until(bd->fs, &q->idle, &q->lock, deadline) !=
			       -ETIMEDOUT)
			;
		if (q->busy)
			warn("backend%u: queue %u: %u requests still in flight at unmap",
			     bd->backend_id, i, q->busy);
		q->stop = true;
		pthread_cond_broadcast(&q->wake);
		pthread_cond_broadcast(&q->space);
		pthread_mutex_unlock(&q->lock);
		if (q->reaper_started)
			pthread_join(q->reaper, NULL);
		q->reaper_started = false;
		/* the reaper is gone: answer what it never could */
		queue_fail_stale(q, true);
		queue_destroy(q);
	}
	free(bd->q);
	bd->q = NULL;
	pthread_mutex_destroy(&bd->flush_lock);
	pthread_mutex_destroy(&bd->wlock);
	pthread_cond_destroy(&bd->wdone);
}
