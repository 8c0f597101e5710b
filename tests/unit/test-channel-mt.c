/* Description: channel rings with the two sides running concurrently: a
 * client and a handler in two threads and in two fork()ed processes move
 * 100k requests of random ops, sizes and queue depths with payload
 * verification both ways (with and without crcs) through the library's
 * client queue and serve loop, also with the client split into three
 * submitting threads and a reaper, using the adaptive waits and
 * doorbells; and a handler asleep at its longest back-off is woken by the
 * doorbell of a submit. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "barrier.h"
#include "channel-fixture.h"

#define DEV_SIZE  (1ULL << 30)
#define NREQ	  100000
#define QD_MAX	  32
#define READ_SALT 0x5a5a0000ULL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * The handler: cbdt_serve() with ops that check every WRITE payload
 * against its offset's pattern (else -EIO) and fill READs with the salted
 * pattern.  Serves until the client closes.  Returns problems seen.
 */
struct mt_handler {
	uint64_t served;
	int problems;
};

static int mt_exec(void *arg, const struct cbdt_request *rq, void *data)
{
	if (rq->op == CBDT_OP_WRITE && !fx_check(data, rq->len, rq->offset))
		return -EIO;
	if (rq->op == CBDT_OP_READ)
		fx_fill(data, rq->len, rq->offset ^ READ_SALT);
	return 0;
}

static void mt_done(void *arg, const struct cbdt_request *rq, int result)
{
	struct mt_handler *mh = arg;

	mh->served++;
	if (result)
		mh->problems++;
}

static const struct cbdt_handler_ops mt_ops = {
	.exec = mt_exec,
	.done = mt_done,
};

static int handler_run(struct cbdt_channel *h, const struct cbdt_wait_cfg *wait,
		       uint64_t *served)
{
	struct cbdt_serve_cfg cfg = {.dev_size = DEV_SIZE};
	struct mt_handler mh = {0};
	int why;

	if (wait)
		cfg.wait = *wait;
	why = cbdt_serve(h, &cfg, &mt_ops, &mh);
	cbdt_channel_handler_detach(h);
	*served = mh.served;
	return mh.problems + (why != CBDT_SERVE_CLOSING);
}

/* The client's side of the checks, in the queue's callback. */
struct mt_client {
	struct cbdt_queue *q;
	uint64_t answered; /* atomic: the reaper counts, others look */
	uint32_t strays;   /* completions the queue could not match */
	int problems;
};

static void mt_client_done(void *arg, const struct cbdt_queue_done *d)
{
	struct mt_client *mc = arg;

	if (!d->answer || !d->last) {
		mc->problems++; /* nothing here may time out or break */
		return;
	}
	if (d->result)
		mc->problems++;
	if (d->op == CBDT_OP_READ &&
	    !fx_check(d->data, d->len, d->offset ^ READ_SALT))
		mc->problems++;
	smp_store_release(&mc->answered, mc->answered + 1);
}

/* A random request: FLUSH 1 in 8, else READ or WRITE of 1 B to 128 KiB. */
static void mt_random_req(struct cbdt_queue_req *r, unsigned *seed,
			  uint32_t max_len, uint8_t *wbuf)
{
	uint32_t x = (uint32_t)rand_r(seed);

	memset(r, 0, sizeof(*r));
	r->op = x % 8 == 0 ? CBDT_OP_FLUSH :
		x % 2	   ? CBDT_OP_READ :
			     CBDT_OP_WRITE;
	if (r->op == CBDT_OP_FLUSH)
		return;
	r->len = 1 + (uint32_t)rand_r(seed) % max_len;
	r->offset = (uint64_t)rand_r(seed) % (DEV_SIZE - r->len);
	if (r->op == CBDT_OP_WRITE) {
		fx_fill(wbuf, r->len, r->offset);
		r->wbuf = wbuf;
	}
}

/*
 * Client in one thread: keep a random queue depth of random requests in
 * flight through the library queue, reaping when it is full.  Returns
 * problems.
 */
static int client_run(struct cbdt_channel *c, unsigned seed)
{
	static uint8_t wbuf[128 << 10];
	struct mt_client mc = {0};
	struct cbdt_queue_req r;
	struct cbdt_wait w;
	uint64_t submitted = 0;
	unsigned qd = 1;
	int ret;

	assert_int_equal(cbdt_queue_new(c, mt_client_done, &mc, &mc.q), 0);
	cbdt_wait_init(&w, NULL);
	while (mc.answered < NREQ) {
		if (submitted % 1000 == 0)
			qd = 1 + (unsigned)rand_r(&seed) % QD_MAX;
		while (submitted < NREQ && submitted - mc.answered < qd) {
			mt_random_req(&r, &seed,
				      rand_r(&seed) % 16 ? 8192 : 128 << 10,
				      wbuf);
			ret = cbdt_queue_submit(mc.q, &r);
			if (ret == -EAGAIN)
				break; /* data area full: reap first */
			if (ret) {
				mc.problems++;
				break;
			}
			submitted++;
		}
		ret = cbdt_queue_reap(mc.q, UINT32_MAX, &mc.strays);
		if (ret < 0)
			return mc.problems + 1;
		if (ret == 0)
			cbdt_queue_idle(mc.q, &w);
		else
			cbdt_wait_reset(&w);
	}
	cbdt_queue_free(mc.q);
	cbdt_channel_client_close(c);
	return mc.problems + (int)mc.strays;
}

struct handler_thread {
	struct cbdt_channel *h;
	uint64_t served;
	int problems;
};

static void *handler_main(void *arg)
{
	struct handler_thread *ht = arg;

	ht->problems = handler_run(ht->h, NULL, &ht->served);
	return NULL;
}

static void run_threads(struct fx *f, uint16_t flags)
{
	struct handler_thread ht = {0};
	uint64_t start = now_ns();
	pthread_t th;
	int problems;

	ht.h = f->h;
	assert_int_equal(pthread_create(&th, NULL, handler_main, &ht), 0);
	problems = client_run(f->c, 12345);
	pthread_join(th, NULL);
	printf("threads, flags %#x: %d requests in %.2f s\n", flags, NREQ,
	       (double)(now_ns() - start) / 1e9);
	assert_int_equal(problems, 0);
	assert_int_equal(ht.problems, 0);
	assert_int_equal(ht.served, NREQ);
	assert_int_equal(fx_ctrl(f)->handler_state, CBDT_HANDLER_DETACHED);
}

static void test_threads_move_100k_verified(void **state)
{
	run_threads(*state, 0);
}

static void test_threads_move_100k_verified_crc(void **state)
{
	run_threads(*state, CBDT_F_ENTRY_CRC | CBDT_F_DATA_CRC);
}

/* The client split the way cbdfs uses it: submitting threads that wait
 * for room, one reaper thread. */
static void *split_reaper(void *arg)
{
	struct mt_client *mc = arg;
	struct cbdt_wait w;
	int ret;

	cbdt_wait_init(&w, NULL);
	while (smp_load_acquire(&mc->answered) < NREQ) {
		ret = cbdt_queue_reap(mc->q, 32, &mc->strays);
		if (ret < 0) {
			mc->problems++;
			break;
		}
		if (ret)
			cbdt_wait_reset(&w);
		else if (cbdt_queue_idle(mc->q, &w) == -ESHUTDOWN)
			break;
	}
	return NULL;
}

struct submitter {
	struct mt_client *mc;
	unsigned seed, n;
	int problems;
};

static void *split_submitter(void *arg)
{
	static __thread uint8_t wbuf[64 << 10];
	struct submitter *s = arg;
	struct cbdt_queue_req r;

	for (unsigned i = 0; i < s->n; i++) {
		mt_random_req(&r, &s->seed, 64 << 10, wbuf);
		if (cbdt_queue_submit_wait(s->mc->q, &r, 0))
			s->problems++;
	}
	return NULL;
}

static void test_split_client_threads_move_100k_verified(void **state)
{
	struct fx *f = *state;
	struct handler_thread ht = {0};
	struct mt_client mc = {0};
	struct submitter sub[3];
	pthread_t th, tr, ts[3];

	assert_int_equal(cbdt_queue_new(f->c, mt_client_done, &mc, &mc.q), 0);
	ht.h = f->h;
	assert_int_equal(pthread_create(&th, NULL, handler_main, &ht), 0);
	assert_int_equal(pthread_create(&tr, NULL, split_reaper, &mc), 0);
	for (unsigned i = 0; i < 3; i++) {
		sub[i] = (struct submitter){.mc = &mc,
					    .seed = 99 + i,
					    .n = NREQ / 3 +
						 (i == 0 ? NREQ % 3 : 0)};
		assert_int_equal(pthread_create(&ts[i], NULL, split_submitter,
						&sub[i]),
				 0);
	}
	for (unsigned i = 0; i < 3; i++) {
		pthread_join(ts[i], NULL);
		assert_int_equal(sub[i].problems, 0);
	}
	pthread_join(tr, NULL);
	assert_int_equal(cbdt_queue_busy(mc.q), 0);
	cbdt_queue_free(mc.q);
	cbdt_channel_client_close(f->c);
	pthread_join(th, NULL);
	assert_int_equal(mc.problems, 0);
	assert_int_equal(mc.strays, 0);
	assert_int_equal(mc.answered, NREQ);
	assert_int_equal(ht.problems, 0);
	assert_int_equal(ht.served, NREQ);
}

/* The handler in a child that maps the transport on its own. */
static void test_processes_move_100k_verified(void **state)
{
	struct fx *f = *state;
	uint64_t start = now_ns();
	int status, problems;
	pid_t pid;

	/* The child re-opens: drop the parent's handler handle first. */
	cbdt_channel_close(f->h);
	f->h = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cbdt_channel *h;
		struct cbdt *t;
		uint64_t served = 0;
		int n;

		/* never outlive a test that failed before reaping us */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (cbdt_open(f->path, 0, &t) ||
		    cbdt_channel_open(t, f->seg, CBDT_CHANNEL_HANDLER, 7, &h))
			_exit(100);
		n = handler_run(h, NULL, &served);
		cbdt_channel_close(h);
		cbdt_close(t);
		_exit(n ? 101 : served == NREQ ? 0 : 102);
	}
	problems = client_run(f->c, 777);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	printf("processes: %d requests in %.2f s\n", NREQ,
	       (double)(now_ns() - start) / 1e9);
	assert_int_equal(problems, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

struct sleepy_handler {
	struct cbdt_channel *h;
	struct cbdt_wait_cfg cfg;
	uint64_t served;
	int problems;
};

static void *sleepy_handler_main(void *arg)
{
	struct sleepy_handler *sh = arg;

	sh->problems = handler_run(sh->h, &sh->cfg, &sh->served);
	return NULL;
}

/*
 * A handler idle long enough to sleep at its longest step: with a step of
 * twice TFX_DEADLINE_MS and no doorbell, a submit would wait that long;
 * the doorbell must wake it long before, however busy the machine is.
 */
static void test_doorbell_wakes_sleeping_handler(void **state)
{
	struct fx *f = *state;
	struct sleepy_handler sh = {
		.cfg = {.spin_ns = 1000,
			.sleep_min_us = 2 * TFX_DEADLINE_MS * 1000U,
			.sleep_max_us = 2 * TFX_DEADLINE_MS * 1000U},
	};
	struct cbdt_request rq = {.op = CBDT_OP_FLUSH, .req_id = 1};
	struct cbdt_completion comp;
	struct cbdt_wait w;
	uint64_t t0, lat;
	pthread_t th;

	sh.h = f->h;
	assert_int_equal(pthread_create(&th, NULL, sleepy_handler_main, &sh),
			 0);
	/* The handler announces its sleep in sq_sleep just before it. */
	while (READ_ONCE(fx_ctrl(f)->sq_sleep) != 1)
		usleep(1000);
	/* ... and then sleeps in the futex: ring it there, not before */
	assert_true(tfx_wait_other_thread_sleeping());
	t0 = now_ns();
	assert_int_equal(cbdt_channel_submit(f->c, &rq), 0);
	cbdt_wait_init(&w, NULL);
	while (cbdt_channel_reap(f->c, &comp) == 0)
		cbdt_channel_client_wait(f->c, &w);
	lat = now_ns() - t0;
	printf("doorbell wake-up of a sleeping handler: %.1f us\n",
	       (double)lat / 1e3);
	assert_int_equal(comp.result, 0);
	cbdt_channel_client_close(f->c);
	pthread_join(th, NULL);
	assert_true(lat < TFX_DEADLINE_MS * 1000000ULL);
	assert_int_equal(sh.served, 1);
	assert_int_equal(sh.problems, 0);
}

/* Teardown removes the transport even when an assertion failed. */
static int setup_plain(void **state)
{
	*state = fx_new(0, 0, 0);
	return *state ? 0 : -1;
}

static int setup_crc(void **state)
{
	*state = fx_new(CBDT_F_ENTRY_CRC | CBDT_F_DATA_CRC, 0, 0);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_threads_move_100k_verified, setup_plain),
		T(test_threads_move_100k_verified_crc, setup_crc),
		T(test_split_client_threads_move_100k_verified, setup_crc),
		T(test_processes_move_100k_verified, setup_crc),
		T(test_doorbell_wakes_sleeping_handler, setup_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
