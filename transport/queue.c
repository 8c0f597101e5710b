/* SPDX-License-Identifier: MIT */
/*
 * The client side of one channel, once for every client (cbdfs, the test
 * client, cbd-bench): command slots, request ids, data extents, deadlines,
 * the broken state, and the lifetime of a request answered early (timed
 * out, queue broken) whose slot and extent still belong to the ring until
 * its completion arrives.  Completions go back through the owner's
 * callback with its opaque cookie, as io_uring hands back user_data.
 *
 * Concurrency: any number of submitter threads; one reaper thread at a
 * time runs the reaper-side calls (reap, expire, fail, idle) and so every
 * callback.  q->lock guards the slots, the free list and the channel's
 * producer side (submit, data alloc/free), which libcbdt's channel wants
 * single-threaded; the completion ring is read by the reaper alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "cbdt.h"

/* Slot index in the low bits of the req_id, a counter above it: a stale
 * or repeated completion cannot match a slot that was reused since. */
#define QUEUE_ID_SHIFT 16
#define QUEUE_SLOT(id) ((uint32_t)((id)&0xffffU))
#define QUEUE_NONE     0xffffU
/* Writes larger than this are copied into the data area outside the
 * lock, so that one big copy does not hold up every submitter. */
#define QUEUE_COPY_UNLOCKED (64U << 10)
/* Completions handed to callbacks before their slots go back at once. */
#define QUEUE_REAP_BATCH 32
/* A reaper that leaves polled requests to their submitters still looks
 * this often, in case a kick never comes. */
#define QUEUE_POLLED_SLEEP_NS 10000000ULL

enum slot_state {
	SLOT_FREE = 0,
	SLOT_PREP,     /* taken by a submitter, not in the ring yet */
	SLOT_INFLIGHT, /* in the ring: the ring owns its extent */
};

struct queue_slot {
	uint64_t req_id;
	uint64_t submit_ns;
	void *cookie;
	uint64_t offset;
	uint32_t len;
	uint32_t data_off;
	uint32_t data_len; /* 0: no extent */
	uint16_t op;
	uint8_t state; /* enum slot_state */
	bool answered; /* the callback answered it already */
	bool polled;   /* counted in q->polled */
	uint16_t next_free;
};

struct cbdt_queue {
	struct cbdt_channel *ch;
	cbdt_queue_done_fn done;
	void *arg;

	pthread_mutex_t lock;
	/* the consumer side (reap, expire, fail): the reaper, or a thread
	 * polling for its own completion with cbdt_queue_reap_try() */
	pthread_mutex_t reap_lock;
	pthread_cond_t space; /* submitters waiting for a slot / extent */
	pthread_cond_t work;  /* an idle reaper, nothing in flight */
	pthread_cond_t idle;  /* drainers, waiting for no slot in use */
	struct queue_slot *slots;
	uint32_t nslots;
	uint32_t free_head; /* QUEUE_NONE: none */
	uint32_t busy;	    /* slots not free */
	uint32_t inflight;  /* in the ring, not reaped */
	uint32_t polled;    /* of those, what submitters poll for themselves
			     * (at most: a kick gives them to the reaper) */
	uint32_t waiters;   /* submitters waiting on space */
	uint64_t counter;   /* req_id generator */
	bool reaper_asleep; /* on work */
	bool broken;	    /* atomic: never touch the ring again */
	bool stopped;	    /* atomic: submits refused */
};

/*
 * Ages of requests only decide timeouts of seconds: the coarse clock (one
 * tick, a few ms) costs a fraction of the precise one on every submit.
 */
static uint64_t queue_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int cbdt_queue_new(struct cbdt_channel *ch, cbdt_queue_done_fn done, void *arg,
		   struct cbdt_queue **out)
{
	const struct cbdt_channel_geom *g = cbdt_channel_geom(ch);
	struct cbdt_queue *q;

	if (!done)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->ch = ch;
	q->done = done;
	q->arg = arg;
	q->nslots = g->se_count < g->ce_count ? g->se_count : g->ce_count;
	if (q->nslots > QUEUE_NONE)
		q->nslots = QUEUE_NONE;
	q->slots = calloc(q->nslots, sizeof(*q->slots));
	if (!q->slots) {
		free(q);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < q->nslots; i++)
		q->slots[i].next_free =
			(uint16_t)(i + 1 < q->nslots ? i + 1 : QUEUE_NONE);
	q->free_head = 0;
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->reap_lock, NULL);
	cbdt_cond_init_mono(&q->space);
	cbdt_cond_init_mono(&q->work);
	cbdt_cond_init_mono(&q->idle);
	*out = q;
	return 0;
}

/* Hand a slot's request to the callback. */
static void slot_call(struct cbdt_queue *q, struct queue_slot *s, int result,
		      bool answer, bool last)
{
	struct cbdt_queue_done d = {
		.cookie = s->cookie,
		.result = result,
		.op = s->op,
		.offset = s->offset,
		.len = s->len,
		.answer = answer,
		.last = last,
	};

	if (answer && !result && s->op == CBDT_OP_READ)
		d.data = cbdt_channel_data(q->ch, s->data_off);
	q->done(q->arg, &d);
}

/* Give a slot (and its extent) back; q->lock held. */
static void slot_put(struct cbdt_queue *q, struct queue_slot *s)
{
	if (s->data_len)
		cbdt_channel_data_free(q->ch, s->data_off, s->data_len);
	s->state = SLOT_FREE;
	s->answered = false;
	s->next_free = (uint16_t)q->free_head;
	q->free_head = (uint32_t)(s - q->slots);
	q->busy--;
	if (q->waiters)
		pthread_cond_broadcast(&q->space);
	if (!q->busy)
		pthread_cond_broadcast(&q->idle);
}

void cbdt_queue_free(struct cbdt_queue *q)
{
	if (!q)
		return;
	/* The ring is gone with us: every cookie gets its last call. */
	for (uint32_t i = 0; i < q->nslots; i++) {
		struct queue_slot *s = &q->slots[i];

		if (s->state == SLOT_INFLIGHT)
			slot_call(q, s, -EIO, !s->answered, true);
	}
	pthread_mutex_destroy(&q->lock);
	pthread_mutex_destroy(&q->reap_lock);
	pthread_cond_destroy(&q->space);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->idle);
	free(q->slots);
	free(q);
}

static bool op_has_data(uint16_t op)
{
	return op == CBDT_OP_READ || op == CBDT_OP_WRITE;
}

/* Take a slot and, for data, an extent; q->lock held.  -EAGAIN if none. */
static int slot_take(struct cbdt_queue *q, const struct cbdt_queue_req *r,
		     struct queue_slot **out)
{
	uint32_t dlen = op_has_data(r->op) ? r->len : 0, doff = 0;
	struct queue_slot *s;
	int ret;

	if (smp_load_acquire(&q->broken))
		return -EIO;
	if (smp_load_acquire(&q->stopped))
		return -ESHUTDOWN;
	if (q->free_head == QUEUE_NONE)
		return -EAGAIN;
	if (dlen) {
		ret = cbdt_channel_data_alloc(q->ch, dlen, &doff);
		if (ret)
			return ret == -ENOSPC ? -EAGAIN : ret;
	}
	s = &q->slots[q->free_head];
	q->free_head = s->next_free;
	q->busy++;
	s->state = SLOT_PREP;
	s->answered = false;
	s->req_id = (++q->counter << QUEUE_ID_SHIFT) | (uint64_t)(s - q->slots);
	s->cookie = r->cookie;
	s->op = r->op;
	s->offset = r->offset;
	s->len = r->len;
	s->data_off = doff;
	s->data_len = dlen;
	*out = s;
	return 0;
}

/* Copy the data in and put the request in the ring; q->lock held. */
static int slot_submit(struct cbdt_queue *q, struct queue_slot *s,
		       const struct cbdt_queue_req *r)
{
	struct cbdt_request rq = {
		.op = r->op,
		.flags = r->flags,
		.req_id = s->req_id,
		.offset = r->offset,
		.len = r->len,
		.data_off = s->data_off,
		.data_len = s->data_len,
	};
	int ret;

	if (r->op == CBDT_OP_WRITE && r->wbuf) {
		void *dst = cbdt_channel_data(q->ch, s->data_off);

		if (r->len > QUEUE_COPY_UNLOCKED) {
			/* the extent is ours alone until the submit */
			pthread_mutex_unlock(&q->lock);
			memcpy(dst, r->wbuf, r->len);
			pthread_mutex_lock(&q->lock);
		} else {
			memcpy(dst, r->wbuf, r->len);
		}
	}
	/*
	 * In flight before the submit: the reaper may see the completion
	 * before we get past cbdt_channel_submit().  The submit's
	 * store-release of sq_head (and the handler's of cq_head) order
	 * these stores before the reaper's lookup.
	 */
	s->submit_ns = queue_clock_ns();
	s->state = SLOT_INFLIGHT;
	s->polled = r->polled;
	q->inflight++;
	q->polled += r->polled;
	if (smp_load_acquire(&q->broken)) {
		ret = -EIO;
	} else {
		cbdt_channel_client_lone(q->ch, r->lone);
		/* never -EAGAIN: we hold no more slots than either ring has */
		ret = cbdt_channel_submit(q->ch, &rq);
	}
	if (ret) {
		q->inflight--;
		if (r->polled && q->polled)
			q->polled--;
		slot_put(q, s);
		return ret;
	}
	/* the client's own count (we hold the lock: one writer) */
	WRITE_ONCE(cbdt_channel_ctrl(q->ch)->submitted,
		   cbdt_channel_ctrl(q->ch)->submitted + 1);
	if (q->reaper_asleep && !r->polled)
		pthread_cond_signal(&q->work);
	return 0;
}

static int queue_check_req(const struct cbdt_queue *q,
			   const struct cbdt_queue_req *r)
{
	if (!r->op || r->op > CBDT_OP_MAX || (r->flags & ~CBDT_SE_FLAGS_ALL))
		return -EINVAL;
	if (op_has_data(r->op) &&
	    (!r->len || r->len > cbdt_channel_geom(q->ch)->data_size))
		return r->len ? -E2BIG : -EINVAL;
	return 0;
}

/* What is in flight is the reaper's now, polled or not; q->lock held. */
static void queue_kick(struct cbdt_queue *q)
{
	q->polled = 0;
	if (q->reaper_asleep && q->inflight)
		pthread_cond_signal(&q->work);
}

/* Submit @r; with @wait, wait for room until @deadline_ns (0: for ever). */
static int queue_submit(struct cbdt_queue *q, const struct cbdt_queue_req *r,
			bool wait, uint64_t deadline_ns)
{
	struct queue_slot *s;
	int ret = queue_check_req(q, r);

	if (ret)
		return ret;
	pthread_mutex_lock(&q->lock);
	while ((ret = slot_take(q, r, &s)) == -EAGAIN && wait) {
		/* only reaping makes room: the reaper takes over */
		queue_kick(q);
		q->waiters++;
		ret = cbdt_cond_wait_until(&q->space, &q->lock, deadline_ns);
		q->waiters--;
		if (ret)
			break;
	}
	if (!ret)
		ret = slot_submit(q, s, r);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

int cbdt_queue_submit(struct cbdt_queue *q, const struct cbdt_queue_req *r)
{
	return queue_submit(q, r, false, 0);
}

int cbdt_queue_submit_wait(struct cbdt_queue *q, const struct cbdt_queue_req *r,
			   uint64_t deadline_ns)
{
	return queue_submit(q, r, true, deadline_ns);
}

/* ---- reaper side ----------------------------------------------------- */

/* The slot a completion names, or NULL for a stray or stale req_id. */
static struct queue_slot *queue_lookup(struct cbdt_queue *q, uint64_t req_id)
{
	uint32_t i = QUEUE_SLOT(req_id);
	struct queue_slot *s;

	if (i >= q->nslots)
		return NULL;
	s = &q->slots[i];
	/* state and req_id were set under the lock before the submit; the
	 * handler's completion is ordered after it (release/acquire). */
	if (s->state != SLOT_INFLIGHT || s->req_id != req_id)
		return NULL;
	return s;
}

/* Answer (early) what matches, keeping slots and extents; returns how
 * many.  The ring still owns them until the completion or the end.
 * Under reap_lock: a completion reaped meanwhile would be answered twice. */
static int queue_answer_early(struct cbdt_queue *q, uint64_t min_age_ns,
			      int result)
{
	uint64_t now = queue_clock_ns();
	int n = 0;

	for (uint32_t i = 0; i < q->nslots; i++) {
		struct queue_slot *s = &q->slots[i];
		bool due;

		pthread_mutex_lock(&q->lock);
		due = s->state == SLOT_INFLIGHT && !s->answered &&
		      now - s->submit_ns >= min_age_ns;
		if (due)
			s->answered = true;
		pthread_mutex_unlock(&q->lock);
		if (due) {
			slot_call(q, s, result, true, false);
			n++;
		}
	}
	return n;
}

/* Under reap_lock. */
static int queue_reap(struct cbdt_queue *q, unsigned max, uint32_t *strays)
{
	struct queue_slot *done[QUEUE_REAP_BATCH];
	struct cbdt_completion c;
	struct queue_slot *s;
	int total = 0, ret = 0;
	unsigned n;

	if (smp_load_acquire(&q->broken)) {
		queue_answer_early(q, 0, -EIO);
		return -EIO;
	}
	do {
		/* The callbacks run without the lock (they may submit); the
		 * slots go back in one go. */
		n = 0;
		while (n < QUEUE_REAP_BATCH && (unsigned)total + n < max &&
		       (ret = cbdt_channel_reap(q->ch, &c)) == 1) {
			s = queue_lookup(q, c.req_id);
			if (!s) {
				if (strays)
					(*strays)++;
				continue;
			}
			slot_call(q, s, c.result, !s->answered, true);
			done[n++] = s;
		}
		if (n) {
			pthread_mutex_lock(&q->lock);
			q->inflight -= n;
			for (unsigned i = 0; i < n; i++) {
				if (done[i]->polled && q->polled)
					q->polled--;
				slot_put(q, done[i]);
			}
			pthread_mutex_unlock(&q->lock);
		}
		total += (int)n;
	} while (n == QUEUE_REAP_BATCH && (unsigned)total < max);
	if (ret < 0) {
		/* the completion ring failed its checks twice: unusable */
		cbdt_queue_break(q);
		queue_answer_early(q, 0, -EIO);
		return ret;
	}
	return total;
}

int cbdt_queue_reap(struct cbdt_queue *q, unsigned max, uint32_t *strays)
{
	int ret;

	pthread_mutex_lock(&q->reap_lock);
	ret = queue_reap(q, max, strays);
	pthread_mutex_unlock(&q->reap_lock);
	return ret;
}

int cbdt_queue_reap_try(struct cbdt_queue *q, unsigned max, uint32_t *strays)
{
	int ret;

	if (pthread_mutex_trylock(&q->reap_lock))
		return 0; /* the reaper is at it */
	ret = queue_reap(q, max, strays);
	pthread_mutex_unlock(&q->reap_lock);
	return ret;
}

int cbdt_queue_expire(struct cbdt_queue *q, uint64_t age_ns)
{
	struct cbdt_channel_ctrl *ctrl = cbdt_channel_ctrl(q->ch);
	int n;

	pthread_mutex_lock(&q->reap_lock);
	n = queue_answer_early(q, age_ns, -ETIMEDOUT);
	/* The client's own counter (whoever holds reap_lock writes it);
	 * a broken ring is never written again. */
	if (n > 0 && !smp_load_acquire(&q->broken))
		WRITE_ONCE(ctrl->timed_out, ctrl->timed_out + (uint64_t)n);
	pthread_mutex_unlock(&q->reap_lock);
	return n;
}

int cbdt_queue_fail(struct cbdt_queue *q, int result)
{
	int n;

	pthread_mutex_lock(&q->reap_lock);
	n = queue_answer_early(q, 0, result);
	pthread_mutex_unlock(&q->reap_lock);
	return n;
}

int cbdt_queue_idle(struct cbdt_queue *q, struct cbdt_wait *w)
{
	if (smp_load_acquire(&q->broken)) {
		/* Nothing will ever come: wait for the owner to stop us. */
		pthread_mutex_lock(&q->lock);
		while (!smp_load_acquire(&q->stopped))
			pthread_cond_wait(&q->work, &q->lock);
		pthread_mutex_unlock(&q->lock);
		return -ESHUTDOWN;
	}
	/* inflight is written under the lock; a stale read costs one more
	 * step of polling, or a look under the lock below */
	if (READ_ONCE(q->inflight) == READ_ONCE(q->polled) &&
	    cbdt_wait_would_sleep(w)) {
		/* Nothing to poll for (or its submitters do): sleep until a
		 * submit, a kick, stop or break. */
		pthread_mutex_lock(&q->lock);
		if (!q->inflight && smp_load_acquire(&q->stopped)) {
			pthread_mutex_unlock(&q->lock);
			return -ESHUTDOWN;
		}
		if (q->inflight == q->polled && !smp_load_acquire(&q->broken)) {
			q->reaper_asleep = true;
			if (q->polled) /* a lost kick costs a slice at most */
				cbdt_cond_wait_until(
					&q->work, &q->lock,
					cbdt_now_ns() + QUEUE_POLLED_SLEEP_NS);
			else
				pthread_cond_wait(&q->work, &q->lock);
			q->reaper_asleep = false;
			pthread_mutex_unlock(&q->lock);
			cbdt_wait_reset(w);
			return 0;
		}
		pthread_mutex_unlock(&q->lock);
	}
	cbdt_channel_client_wait(q->ch, w);
	return 0;
}

/* ---- any thread ------------------------------------------------------ */

static void queue_wake_all(struct cbdt_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->polled = 0;
	pthread_cond_broadcast(&q->space);
	pthread_cond_broadcast(&q->work);
	pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
}

void cbdt_queue_break(struct cbdt_queue *q)
{
	smp_store_release(&q->broken, true);
	queue_wake_all(q);
}

bool cbdt_queue_broken(const struct cbdt_queue *q)
{
	return smp_load_acquire(&q->broken);
}

void cbdt_queue_stop(struct cbdt_queue *q)
{
	smp_store_release(&q->stopped, true);
	queue_wake_all(q);
}

uint32_t cbdt_queue_busy(struct cbdt_queue *q)
{
	uint32_t n;

	pthread_mutex_lock(&q->lock);
	n = q->busy;
	pthread_mutex_unlock(&q->lock);
	return n;
}

uint32_t cbdt_queue_inflight(const struct cbdt_queue *q)
{
	return READ_ONCE(q->inflight);
}

int cbdt_queue_drain(struct cbdt_queue *q, uint64_t deadline_ns)
{
	int ret = 0;

	pthread_mutex_lock(&q->lock);
	queue_kick(q);
	while (q->busy && !smp_load_acquire(&q->broken) &&
	       !(ret = cbdt_cond_wait_until(&q->idle, &q->lock, deadline_ns)))
		;
	if (!ret && q->busy)
		ret = -EIO;
	pthread_mutex_unlock(&q->lock);
	return ret;
}

void cbdt_queue_kick(struct cbdt_queue *q)
{
	pthread_mutex_lock(&q->lock);
	queue_kick(q);
	pthread_mutex_unlock(&q->lock);
}

struct cbdt_channel *cbdt_queue_channel(const struct cbdt_queue *q)
{
	return q->ch;
}
