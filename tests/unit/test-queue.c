/* Description: the client queue (transport/queue.c) and the serve loop
 * (transport/serve.c) on a real channel, without root or FUSE: round trips
 * with cookies and data, a full ring and a full data area, timeouts with
 * late completions, stale and duplicate completions, a broken ring, stop
 * and drain, submitters that poll for their own completions (reap_try,
 * polled requests, the kick); serve's validation, stop reasons, LOST channels, and a
 * handler that crashes mid-stream and is re-attached: every request runs
 * exactly once. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "barrier.h"
#include "channel-fixture.h"

#define DEV_SIZE  (1ULL << 30)
#define CALLS_MAX 64

/* Every callback, recorded. */
struct rec {
	struct cbdt_queue *q;
	bool nest;	/* each call tries to reap too: */
	int nested_ret; /* what that got */
	unsigned n;
	struct cbdt_queue_done d[CALLS_MAX];
	uint8_t data[CALLS_MAX][8]; /* first bytes of READ data */
};

static void rec_done(void *arg, const struct cbdt_queue_done *d)
{
	struct rec *r = arg;

	assert_true(r->n < CALLS_MAX);
	r->d[r->n] = *d;
	if (d->data)
		memcpy(r->data[r->n], d->data, d->len < 8 ? d->len : 8);
	r->d[r->n].data = NULL; /* valid during the call only */
	r->n++;
	if (r->nest)
		r->nested_ret = cbdt_queue_reap_try(r->q, 100, NULL);
}

struct qfx {
	struct fx *f;
	struct rec rec;
};

static int setup_n(void **state, uint32_t entries)
{
	struct qfx *x = calloc(1, sizeof(*x));

	if (!x || !(x->f = fx_new(0, entries, entries)) ||
	    cbdt_queue_new(x->f->c, rec_done, &x->rec, &x->rec.q)) {
		free(x);
		return -1;
	}
	*state = x;
	return 0;
}

static int setup(void **state)
{
	return setup_n(state, 8);
}

static int teardown(void **state)
{
	struct qfx *x = *state;

	cbdt_queue_free(x->rec.q);
	fx_free(x->f);
	free(x);
	return 0;
}

static int qsubmit_polled(struct qfx *x, uint16_t op, uint64_t off,
			  uint32_t len, uintptr_t cookie, bool polled)
{
	static uint8_t wbuf[1 << 20];
	struct cbdt_queue_req r = {.op = op,
				   .offset = off,
				   .len = len,
				   .cookie = (void *)cookie,
				   .polled = polled};

	if (op == CBDT_OP_WRITE) {
		fx_fill(wbuf, len, off);
		r.wbuf = wbuf;
	}
	return cbdt_queue_submit(x->rec.q, &r);
}

static int qsubmit(struct qfx *x, uint16_t op, uint64_t off, uint32_t len,
		   uintptr_t cookie)
{
	return qsubmit_polled(x, op, off, len, cookie, false);
}

/* The handler side by hand: take the next request, answer @result. */
static void hserve(struct qfx *x, int result, struct cbdt_request *rq)
{
	struct cbdt_request tmp;

	if (!rq)
		rq = &tmp;
	assert_int_equal(cbdt_channel_peek(x->f->h, rq), 1);
	assert_int_equal(cbdt_channel_validate(x->f->h, rq, DEV_SIZE), 0);
	if (rq->op == CBDT_OP_READ)
		fx_fill(cbdt_channel_data(x->f->h, rq->data_off), rq->len,
			rq->offset);
	assert_int_equal(cbdt_channel_complete(x->f->h, rq, result), 0);
}

/* ---- the queue ---- */

static void test_round_trip_hands_back_cookie_and_data(void **state)
{
	struct qfx *x = *state;
	struct cbdt_request rq;
	uint8_t want[8];

	assert_int_equal(qsubmit(x, CBDT_OP_WRITE, 4096, 5000, 11), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 8192, 100, 22), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 33), 0);
	assert_int_equal(cbdt_queue_busy(x->rec.q), 3);
	hserve(x, 0, &rq);
	assert_true(
		fx_check(cbdt_channel_data(x->f->h, rq.data_off), 5000, 4096));
	hserve(x, 0, NULL);
	hserve(x, -ENOSPC, NULL);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), 3);
	assert_int_equal(x->rec.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(x->rec.d[i].answer);
		assert_true(x->rec.d[i].last);
		assert_int_equal((uintptr_t)x->rec.d[i].cookie, 11 * (i + 1));
	}
	assert_int_equal(x->rec.d[0].result, 0);
	assert_int_equal(x->rec.d[1].op, CBDT_OP_READ);
	assert_int_equal(x->rec.d[1].offset, 8192);
	assert_int_equal(x->rec.d[1].len, 100);
	fx_fill(want, 8, 8192);
	assert_memory_equal(x->rec.data[1], want, 8);
	assert_int_equal(x->rec.d[2].result, -ENOSPC);
	assert_int_equal(cbdt_queue_busy(x->rec.q), 0);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), 0);
}

static void test_bad_requests_are_refused(void **state)
{
	struct qfx *x = *state;
	uint32_t area = cbdt_channel_geom(x->f->c)->data_size;

	assert_int_equal(qsubmit(x, 0, 0, 4096, 1), -EINVAL);
	assert_int_equal(qsubmit(x, CBDT_OP_MAX + 1, 0, 4096, 1), -EINVAL);
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, 0, 1), -EINVAL);
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, area + 1, 1), -E2BIG);
	assert_int_equal(cbdt_queue_busy(x->rec.q), 0);
}

static void test_full_ring_then_full_data_area(void **state)
{
	struct qfx *x = *state;
	uint32_t area = cbdt_channel_geom(x->f->c)->data_size;

	/* 8 slots (the rings' size): the ninth waits for a completion */
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, i), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 8), -EAGAIN);
	hserve(x, 0, NULL);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), 1);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 8), 0);
	for (unsigned i = 0; i < 8; i++)
		hserve(x, 0, NULL);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), 8);
	/* the data area: half of it twice, then nothing fits */
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, area / 2, 1), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, area / 2, 2), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, 4096, 3), -EAGAIN);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 4), 0); /* no data */
	hserve(x, 0, NULL);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), 1);
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, 4096, 3), 0);
}

static void test_submit_wait_gives_up_at_its_deadline(void **state)
{
	struct qfx *x = *state;
	struct cbdt_queue_req r = {.op = CBDT_OP_FLUSH};
	uint64_t t0;

	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, i), 0);
	t0 = cbdt_now_ns();
	assert_int_equal(cbdt_queue_submit_wait(x->rec.q, &r, t0 + 50000000ULL),
			 -ETIMEDOUT);
	assert_true(cbdt_now_ns() - t0 >= 50000000ULL);
}

/* Expired: answered at once, slot and extent kept for the late answer. */
static void test_expired_request_keeps_its_slot_until_completion(void **state)
{
	struct qfx *x = *state;

	assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, 8192, 7), 0);
	assert_int_equal(cbdt_queue_expire(x->rec.q, 3600ULL * 1000000000ULL),
			 0);
	assert_int_equal(cbdt_queue_expire(x->rec.q, 0), 1);
	assert_int_equal(x->rec.n, 1);
	assert_true(x->rec.d[0].answer);
	assert_false(x->rec.d[0].last);
	assert_int_equal(x->rec.d[0].result, -ETIMEDOUT);
	assert_int_equal(cbdt_queue_expire(x->rec.q, 0), 0); /* once */
	assert_int_equal(cbdt_queue_busy(x->rec.q), 1);
	/* counted once, where cbd-status reads it */
	assert_int_equal(READ_ONCE(cbdt_channel_ctrl(x->f->c)->timed_out), 1);
	assert_int_equal(READ_ONCE(cbdt_channel_ctrl(x->f->c)->submitted), 1);
	/* the handler answers late: no second answer, only the release */
	hserve(x, 0, NULL);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), 1);
	assert_int_equal(x->rec.n, 2);
	assert_false(x->rec.d[1].answer);
	assert_true(x->rec.d[1].last);
	assert_int_equal((uintptr_t)x->rec.d[1].cookie, 7);
	assert_int_equal(cbdt_queue_busy(x->rec.q), 0);
}

/*
 * A completion for no request of the queue (here: one submitted past the
 * queue, carrying an id a queue slot had before) is dropped and counted,
 * never taken for the request now in that slot.
 */
static void test_stale_completion_is_counted_not_matched(void **state)
{
	struct qfx *x = *state;
	struct cbdt_request stale = {.op = CBDT_OP_FLUSH};
	struct cbdt_request rq;
	uint32_t strays = 0;

	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 1), 0);
	hserve(x, 0, &rq);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), 1);
	stale.req_id = rq.req_id; /* slot 0's old id */
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 2),
			 0); /* reuses slot 0 */
	assert_int_equal(cbdt_channel_submit(x->f->c, &stale), 0);
	hserve(x, 0, NULL); /* the queue's request */
	hserve(x, 0, NULL); /* the stale one */
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, &strays), 1);
	assert_int_equal(strays, 1);
	assert_int_equal(x->rec.n, 2);
	assert_int_equal((uintptr_t)x->rec.d[1].cookie, 2);
}

/* A second completion of one request breaks the ring's sequence: the
 * queue is broken, everything in flight fails once, submits fail. */
static void test_duplicate_completion_breaks_the_queue(void **state)
{
	struct qfx *x = *state;
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(x->f);
	uint32_t head;

	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 1), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 2), 0);
	hserve(x, 0, NULL);
	/* the same ce once more, as a confused handler would post it */
	head = ctrl->cq_head;
	memcpy(fx_ce(x->f, head), fx_ce(x->f, head - 1),
	       sizeof(struct cbdt_ce));
	smp_store_release(&ctrl->cq_head, head + 1);
	assert_true(cbdt_queue_reap(x->rec.q, 100, NULL) < 0);
	assert_true(cbdt_queue_broken(x->rec.q));
	assert_int_equal(x->rec.n, 2);
	assert_int_equal(x->rec.d[0].result, 0);
	assert_true(x->rec.d[1].answer);
	assert_int_equal(x->rec.d[1].result, -EIO);
	assert_int_equal((uintptr_t)x->rec.d[1].cookie, 2);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 3), -EIO);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), -EIO);
	assert_int_equal(x->rec.n, 2); /* answered once only */
}

static void test_break_answers_inflight_and_free_releases(void **state)
{
	struct qfx *x = *state;

	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, 4096, i), 0);
	cbdt_queue_break(x->rec.q);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), -EIO);
	assert_int_equal(x->rec.n, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(x->rec.d[i].answer);
		assert_false(x->rec.d[i].last);
		assert_int_equal(x->rec.d[i].result, -EIO);
	}
	assert_int_equal(cbdt_queue_drain(x->rec.q, cbdt_now_ns()), -EIO);
	/* the ring is never read again: free gives the last calls */
	cbdt_queue_free(x->rec.q);
	x->rec.q = NULL;
	assert_int_equal(x->rec.n, 6);
	for (unsigned i = 3; i < 6; i++) {
		assert_false(x->rec.d[i].answer);
		assert_true(x->rec.d[i].last);
	}
}

static void *idle_main(void *arg)
{
	struct qfx *x = arg;
	struct cbdt_wait w;

	cbdt_wait_init(&w, NULL);
	return (void *)(intptr_t)cbdt_queue_idle(x->rec.q, &w);
}

/* A broken queue's reaper has nothing to poll: idle sleeps until the
 * owner stops the queue, then tells it to exit (no spinning). */
static void test_idle_on_a_broken_queue_waits_for_stop(void **state)
{
	struct qfx *x = *state;
	pthread_t th;
	void *ret;

	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 1), 0);
	cbdt_queue_break(x->rec.q);
	assert_int_equal(pthread_create(&th, NULL, idle_main, x), 0);
	assert_true(tfx_wait_other_thread_sleeping());
	cbdt_queue_stop(x->rec.q);
	pthread_join(th, &ret);
	assert_int_equal((intptr_t)ret, -ESHUTDOWN);
}

/* A submitter polls: reap_try takes what completed, and yields to
 * whoever reaps already (here: itself, from within the callback). */
static void test_reap_try_yields_to_a_reaper(void **state)
{
	struct qfx *x = *state;

	assert_int_equal(qsubmit_polled(x, CBDT_OP_READ, 0, 512, 1, true), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 2), 0);
	assert_int_equal(cbdt_queue_reap_try(x->rec.q, 100, NULL), 0);
	hserve(x, 0, NULL);
	hserve(x, 0, NULL);
	x->rec.nest = true;
	x->rec.nested_ret = 99;
	assert_int_equal(cbdt_queue_reap_try(x->rec.q, 100, NULL), 2);
	assert_int_equal(x->rec.nested_ret, 0); /* the lock was held */
	assert_int_equal(x->rec.n, 2);
	assert_ptr_equal(x->rec.d[0].cookie, (void *)1);
	assert_true(x->rec.d[0].answer && x->rec.d[0].last);
	assert_int_equal(cbdt_queue_busy(x->rec.q), 0);
}

/* A reaper: reap until something came, idle in between. */
static void *reaper_main(void *arg)
{
	struct qfx *x = arg;
	struct cbdt_wait w;
	int n;

	cbdt_wait_init(&w, NULL);
	while (!(n = cbdt_queue_reap(x->rec.q, 100, NULL)))
		if (cbdt_queue_idle(x->rec.q, &w) == -ESHUTDOWN)
			return (void *)(intptr_t)-ESHUTDOWN;
	return (void *)(intptr_t)n;
}

/* A polled submit leaves a sleeping reaper asleep; a kick hands what is
 * in flight over to it. */
static void test_polled_requests_and_the_kick(void **state)
{
	struct qfx *x = *state;
	pthread_t th;
	void *ret;

	assert_int_equal(pthread_create(&th, NULL, reaper_main, x), 0);
	assert_true(tfx_wait_other_thread_sleeping());
	assert_int_equal(qsubmit_polled(x, CBDT_OP_FLUSH, 0, 0, 1, true), 0);
	hserve(x, 0, NULL);
	/* not woken: the completion is still there for the submitter */
	assert_int_equal(cbdt_queue_reap_try(x->rec.q, 100, NULL), 1);
	assert_int_equal(x->rec.n, 1);

	assert_int_equal(qsubmit_polled(x, CBDT_OP_FLUSH, 0, 0, 2, true), 0);
	hserve(x, 0, NULL);
	cbdt_queue_kick(x->rec.q);
	pthread_join(th, &ret);
	assert_int_equal((intptr_t)ret, 1);
	assert_int_equal(x->rec.n, 2);
	assert_ptr_equal(x->rec.d[1].cookie, (void *)2);
}

static void test_stop_refuses_submits_and_ends_idle(void **state)
{
	struct qfx *x = *state;
	struct cbdt_wait w;

	cbdt_wait_init(&w, &(struct cbdt_wait_cfg){.spin_ns = 1});
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 1), 0);
	cbdt_queue_stop(x->rec.q);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 2), -ESHUTDOWN);
	/* what is in flight is still reaped after the stop */
	assert_int_equal(cbdt_queue_drain(x->rec.q, cbdt_now_ns() + 1000000ULL),
			 -ETIMEDOUT);
	assert_int_equal(cbdt_queue_idle(x->rec.q, &w), 0);
	hserve(x, 0, NULL);
	assert_int_equal(cbdt_queue_reap(x->rec.q, 100, NULL), 1);
	assert_int_equal(cbdt_queue_drain(x->rec.q, 0), 0);
	assert_int_equal(cbdt_queue_idle(x->rec.q, &w), -ESHUTDOWN);
	assert_int_equal(cbdt_queue_idle(x->rec.q, &w), -ESHUTDOWN);
}

/* ---- the serve loop ---- */

struct srv {
	struct cbdt_channel *h;
	struct cbdt_serve_cfg cfg;
	unsigned execs[64]; /* per request, by offset / 4096 */
	unsigned dones, errors;
	int stop_after; /* check() stops after this many dones */
	int why;
};

static int srv_exec(void *arg, const struct cbdt_request *rq, void *data)
{
	struct srv *s = arg;

	s->execs[rq->offset / 4096 % 64]++;
	if (rq->op == CBDT_OP_READ)
		fx_fill(data, rq->len, rq->offset);
	return 0;
}

static int srv_check(void *arg)
{
	struct srv *s = arg;

	return s->stop_after && (int)s->dones >= s->stop_after ?
		       CBDT_SERVE_USER :
		       0;
}

static void srv_done(void *arg, const struct cbdt_request *rq, int result)
{
	struct srv *s = arg;

	s->dones++;
	if (result)
		s->errors++;
}

static const struct cbdt_handler_ops srv_ops = {
	.exec = srv_exec,
	.check = srv_check,
	.done = srv_done,
};

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	s->why = cbdt_serve(s->h, &s->cfg, &srv_ops, s);
	return NULL;
}

/* Reap until @n requests answered (30 s at most). */
static void reap_until(struct qfx *x, unsigned n)
{
	uint64_t start = cbdt_now_ms();
	struct cbdt_wait w;

	cbdt_wait_init(&w, NULL);
	while (x->rec.n < n) {
		assert_true(cbdt_queue_reap(x->rec.q, 100, NULL) >= 0);
		assert_true(cbdt_now_ms() - start < TFX_DEADLINE_MS);
		cbdt_wait_idle(&w, NULL);
	}
}

static void test_serve_validates_and_stops_on_close(void **state)
{
	struct qfx *x = *state;
	struct srv s = {.h = x->f->h, .cfg = {.dev_size = 64 * 4096}};
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 4096, 4096, 1), 0);
	/* beyond the device: refused before exec, the loop goes on */
	assert_int_equal(qsubmit(x, CBDT_OP_WRITE, 64 * 4096, 4096, 2), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, 3), 0);
	reap_until(x, 3);
	assert_int_equal(x->rec.d[0].result, 0);
	assert_int_equal(x->rec.d[1].result, -EINVAL);
	assert_int_equal(x->rec.d[2].result, 0);
	cbdt_channel_client_close(x->f->c);
	pthread_join(th, NULL);
	assert_int_equal(s.why, CBDT_SERVE_CLOSING);
	assert_int_equal(s.dones, 3);
	assert_int_equal(s.errors, 1);
	assert_int_equal(s.execs[1], 1);
	assert_int_equal(s.execs[0], 1); /* the FLUSH */
	/* the counters cbd-status shows: by op, the refused WRITE as an
	 * EINVAL error that moved no data, every request timed once */
	const struct cbdt_chan_stats *st = &cbdt_channel_ctrl(x->f->h)->stats;
	uint64_t timed = 0;

	assert_int_equal(st->ops[CBDT_OP_READ], 1);
	assert_int_equal(st->ops[CBDT_OP_WRITE], 1);
	assert_int_equal(st->ops[CBDT_OP_FLUSH], 1);
	assert_int_equal(st->ops[0], 0);
	assert_int_equal(st->bytes[CBDT_OP_READ], 4096);
	assert_int_equal(st->bytes[CBDT_OP_WRITE], 0);
	assert_int_equal(st->errors[CBDT_ERR_EINVAL], 1);
	assert_int_equal(st->errors[CBDT_ERR_EIO], 0);
	for (unsigned i = 0; i < CBDT_LAT_BUCKETS; i++)
		timed += st->lat[i];
	assert_int_equal(timed, 3);
}

static void test_serve_stops_for_check_and_for_a_moved_segment(void **state)
{
	struct qfx *x = *state;
	struct srv s = {
		.h = x->f->h, .cfg = {.dev_size = DEV_SIZE}, .stop_after = 2};
	uint64_t o2;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(qsubmit(x, CBDT_OP_FLUSH, 0, 0, i), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.why, CBDT_SERVE_USER);
	assert_int_equal(s.dones, 2);
	reap_until(x, 2);
	/* the segment's slot moves on: stop before touching it again */
	s = (struct srv){.h = x->f->h,
			 .cfg = {.dev_size = DEV_SIZE,
				 .seg_owner = x->f->seg_owner}};
	assert_int_equal(cbdt_slot_takeover(x->f->t, CBDT_OBJ_SEGMENT,
					    x->f->seg, x->f->seg_owner, 0, &o2),
			 0);
	assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.why, CBDT_SERVE_SEG_GONE);
	assert_int_equal(s.dones, 0);
}

static void test_serve_fails_everything_of_a_lost_channel(void **state)
{
	struct qfx *x = *state;
	struct srv s = {.h = x->f->h, .cfg = {.dev_size = DEV_SIZE}};
	static const uint8_t boot_a[16] = {1}, boot_b[16] = {2};
	pthread_t th;

	assert_false(cbdt_channel_handler_adopt(x->f->h, boot_a));
	cbdt_channel_handler_unflushed(x->f->h, true);
	cbdt_channel_close(x->f->h);
	assert_int_equal(cbdt_channel_open(x->f->t, x->f->seg,
					   CBDT_CHANNEL_HANDLER,
					   FX_BACKEND_OWNER, &x->f->h),
			 0);
	assert_true(cbdt_channel_handler_adopt(x->f->h, boot_b));
	s.h = x->f->h;
	assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_WRITE, 0, 4096, 1), 0);
	assert_int_equal(qsubmit(x, CBDT_OP_READ, 0, 4096, 2), 0);
	reap_until(x, 2);
	assert_int_equal(x->rec.d[0].result, -EIO);
	assert_int_equal(x->rec.d[1].result, -EIO);
	cbdt_channel_client_close(x->f->c);
	pthread_join(th, NULL);
	assert_int_equal(s.execs[0], 0); /* nothing reached the store */
	assert_int_equal(cbdt_channel_ctrl(x->f->h)->stats.errors[CBDT_ERR_EIO],
			 2);
}

/*
 * A handler dies mid-stream: one request executed but not completed, the
 * rest not even looked at.  The next handler's serve runs the unfinished
 * one again and the others once: every request is answered exactly once.
 */
static void test_crash_and_reattach_mid_stream(void **state)
{
	struct qfx *x = *state;
	struct srv s = {.cfg = {.dev_size = DEV_SIZE}};
	struct cbdt_request rq;
	pthread_t th;

	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(qsubmit(x, CBDT_OP_WRITE, i * 4096, 4096, i),
				 0);
	hserve(x, 0, NULL); /* request 0: done */
	assert_int_equal(cbdt_channel_peek(x->f->h, &rq), 1); /* 1: running */
	cbdt_channel_close(x->f->h); /* ... and the handler dies */
	assert_int_equal(cbdt_channel_open(x->f->t, x->f->seg,
					   CBDT_CHANNEL_HANDLER,
					   FX_BACKEND_OWNER, &x->f->h),
			 0);
	s.h = x->f->h;
	assert_int_equal(pthread_create(&th, NULL, srv_main, &s), 0);
	reap_until(x, 6);
	cbdt_channel_client_close(x->f->c);
	pthread_join(th, NULL);
	for (unsigned i = 0; i < 6; i++) {
		assert_int_equal((uintptr_t)x->rec.d[i].cookie, i);
		assert_int_equal(x->rec.d[i].result, 0);
		assert_true(x->rec.d[i].answer && x->rec.d[i].last);
	}
	assert_int_equal(x->rec.n, 6);
	assert_int_equal(s.execs[0], 0); /* the first handler did it */
	for (unsigned i = 1; i < 6; i++)
		assert_int_equal(s.execs[i], 1);
	assert_int_equal(cbdt_queue_busy(x->rec.q), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_trip_hands_back_cookie_and_data),
		T(test_bad_requests_are_refused),
		T(test_full_ring_then_full_data_area),
		T(test_submit_wait_gives_up_at_its_deadline),
		T(test_expired_request_keeps_its_slot_until_completion),
		T(test_stale_completion_is_counted_not_matched),
		T(test_duplicate_completion_breaks_the_queue),
		T(test_break_answers_inflight_and_free_releases),
		T(test_idle_on_a_broken_queue_waits_for_stop),
		T(test_stop_refuses_submits_and_ends_idle),
		T(test_reap_try_yields_to_a_reaper),
		T(test_polled_requests_and_the_kick),
		T(test_serve_validates_and_stops_on_close),
		T(test_serve_stops_for_check_and_for_a_moved_segment),
		T(test_serve_fails_everything_of_a_lost_channel),
		T(test_crash_and_reattach_mid_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
