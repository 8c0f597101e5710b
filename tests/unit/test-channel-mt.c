/* Description: channel rings with the two sides running concurrently: a
 * client and a handler in two threads and in two fork()ed processes move
 * 100k requests of random ops, sizes and queue depths with payload
 * verification both ways (with and without crcs), also with the client
 * split into submitting and reaping threads, using the adaptive
 * waits and doorbells; and a handler asleep at its longest back-off is
 * woken by the doorbell of a submit. */
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

#define DEV_SIZE (1ULL << 30)
#define NREQ 100000
#define QD_MAX 32
#define READ_SALT 0x5a5a0000ULL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Handler loop: WRITE payloads must carry their req_id's pattern (else
 * -EIO), READs get the salted pattern; runs until the client closes and
 * the ring is empty.  Returns the number of problems seen.
 */
static int handler_run(struct cbdt_channel *h, struct cbdt_wait_cfg *cfg,
		       uint64_t *served)
{
	struct cbdt_request rq;
	struct cbdt_wait w;
	int problems = 0, ret, result;

	cbdt_wait_init(&w, cfg);
	for (;;) {
		ret = cbdt_channel_peek(h, &rq);
		if (ret == 0) {
			if (cbdt_channel_client_state(h) != CBDT_CLIENT_OPEN)
				break;
			cbdt_channel_handler_wait(h, &w);
			continue;
		}
		cbdt_wait_reset(&w);
		result = ret < 0 ? ret : cbdt_channel_validate(h, &rq, DEV_SIZE);
		if (!result && rq.op == CBDT_OP_WRITE &&
		    !fx_check(cbdt_channel_data(h, rq.data_off), rq.len, rq.req_id))
			result = -EIO;
		if (!result && rq.op == CBDT_OP_READ)
			fx_fill(cbdt_channel_data(h, rq.data_off), rq.len,
				rq.req_id ^ READ_SALT);
		if (result)
			problems++;
		while ((ret = cbdt_channel_complete(h, &rq, result)) == -EAGAIN)
			cpu_relax();
		if (ret)
			return problems + 1;
		(*served)++;
	}
	cbdt_channel_handler_detach(h);
	return problems;
}

struct inflight {
	bool used;
	uint16_t op;
	uint32_t off, len;
};

/*
 * Client loop: keep a random queue depth of random requests in flight,
 * keyed by req_id = slot in @fl; verify READ payloads.  Returns problems.
 */
static int client_run(struct cbdt_channel *c, unsigned seed)
{
	struct inflight fl[QD_MAX];
	struct cbdt_completion comp;
	struct cbdt_request rq;
	struct cbdt_wait w;
	uint64_t submitted = 0, reaped = 0;
	int problems = 0, ret;
	unsigned qd = 1;

	memset(fl, 0, sizeof(fl));
	cbdt_wait_init(&w, NULL);
	while (reaped < NREQ) {
		if (submitted % 1000 == 0)
			qd = 1 + (unsigned)rand_r(&seed) % QD_MAX;
		while (submitted < NREQ && submitted - reaped < qd) {
			uint32_t id = (uint32_t)rand_r(&seed) % QD_MAX, r;

			while (fl[id].used)
				id = (id + 1) % QD_MAX;
			memset(&rq, 0, sizeof(rq));
			r = (uint32_t)rand_r(&seed);
			rq.op = r % 8 == 0 ? CBDT_OP_FLUSH :
				r % 2 ? CBDT_OP_READ : CBDT_OP_WRITE;
			rq.req_id = id;
			if (rq.op != CBDT_OP_FLUSH) {
				rq.len = 1 + (uint32_t)rand_r(&seed) %
					     (rand_r(&seed) % 16 ? 8192 : 128 << 10);
				rq.offset = (uint64_t)rand_r(&seed) % (DEV_SIZE - rq.len);
				rq.data_len = rq.len;
				if (cbdt_channel_data_alloc(c, rq.len, &rq.data_off))
					break;	/* data area full: reap first */
				if (rq.op == CBDT_OP_WRITE)
					fx_fill(cbdt_channel_data(c, rq.data_off),
						rq.len, id);
			}
			ret = cbdt_channel_submit(c, &rq);
			if (ret) {
				problems++;
				break;
			}
			fl[id] = (struct inflight){ true, rq.op, rq.data_off,
						    rq.len };
			submitted++;
		}
		ret = cbdt_channel_reap(c, &comp);
		if (ret == 0) {
			cbdt_channel_client_wait(c, &w);
			continue;
		}
		cbdt_wait_reset(&w);
		if (ret < 0 || comp.req_id >= QD_MAX || !fl[comp.req_id].used)
			return problems + 1;
		if (comp.result)
			problems++;
		if (fl[comp.req_id].op == CBDT_OP_READ &&
		    !fx_check(cbdt_channel_data(c, fl[comp.req_id].off),
			      fl[comp.req_id].len, comp.req_id ^ READ_SALT))
			problems++;
		if (fl[comp.req_id].op != CBDT_OP_FLUSH)
			cbdt_channel_data_free(c, fl[comp.req_id].off,
					       fl[comp.req_id].len);
		fl[comp.req_id].used = false;
		reaped++;
	}
	cbdt_channel_client_close(c);
	return problems;
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
	struct handler_thread ht = { 0 };
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

/*
 * The client split the way cbdfs uses it: submitting threads serialised by
 * a producer lock (submit, data_alloc, data_free), one reaper thread
 * calling reap concurrently with them.
 */
struct split {
	struct cbdt_channel *c;
	pthread_mutex_t lock;	/* producer calls and fl[] */
	struct inflight fl[QD_MAX];
	uint64_t submitted, reaped;
	int problems;
};

static void *split_reaper(void *arg)
{
	struct split *sp = arg;
	struct cbdt_completion comp;
	struct cbdt_wait w;
	struct inflight f;
	int ret;

	cbdt_wait_init(&w, NULL);
	while (sp->reaped < NREQ) {
		ret = cbdt_channel_reap(sp->c, &comp);
		if (ret == 0) {
			cbdt_channel_client_wait(sp->c, &w);
			continue;
		}
		cbdt_wait_reset(&w);
		if (ret < 0 || comp.req_id >= QD_MAX) {
			sp->problems++;
			break;
		}
		pthread_mutex_lock(&sp->lock);
		f = sp->fl[comp.req_id];
		pthread_mutex_unlock(&sp->lock);
		if (!f.used || comp.result)
			sp->problems++;
		/* the extent is ours until freed: no lock needed to read it */
		if (f.op == CBDT_OP_READ &&
		    !fx_check(cbdt_channel_data(sp->c, f.off), f.len,
			      comp.req_id ^ READ_SALT))
			sp->problems++;
		pthread_mutex_lock(&sp->lock);
		if (f.op != CBDT_OP_FLUSH)
			cbdt_channel_data_free(sp->c, f.off, f.len);
		sp->fl[comp.req_id].used = false;
		pthread_mutex_unlock(&sp->lock);
		__atomic_store_n(&sp->reaped, sp->reaped + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void test_split_client_threads_move_100k_verified(void **state)
{
	struct fx *f = *state;
	struct handler_thread ht = { 0 };
	struct split sp = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t th, tr;
	unsigned seed = 99;
	int ret;

	sp.c = f->c;
	ht.h = f->h;
	assert_int_equal(pthread_create(&th, NULL, handler_main, &ht), 0);
	assert_int_equal(pthread_create(&tr, NULL, split_reaper, &sp), 0);
	while (sp.submitted < NREQ && !__atomic_load_n(&sp.problems, __ATOMIC_RELAXED)) {
		struct cbdt_request rq = { 0 };
		uint32_t id = (uint32_t)rand_r(&seed) % QD_MAX, r;

		pthread_mutex_lock(&sp.lock);
		for (r = 0; r < QD_MAX && sp.fl[id].used; r++)
			id = (id + 1) % QD_MAX;
		if (r == QD_MAX) {
			pthread_mutex_unlock(&sp.lock);
			sched_yield();
			continue;
		}
		r = (uint32_t)rand_r(&seed);
		rq.op = r % 8 == 0 ? CBDT_OP_FLUSH :
			r % 2 ? CBDT_OP_READ : CBDT_OP_WRITE;
		rq.req_id = id;
		ret = 0;
		if (rq.op != CBDT_OP_FLUSH) {
			rq.len = rq.data_len = 1 + (uint32_t)rand_r(&seed) % 65536;
			ret = cbdt_channel_data_alloc(f->c, rq.len, &rq.data_off);
			if (!ret && rq.op == CBDT_OP_WRITE)
				fx_fill(cbdt_channel_data(f->c, rq.data_off),
					rq.len, id);
		}
		if (!ret) {
			/* before submit: the reaper may see it complete at once */
			sp.fl[id] = (struct inflight){ true, rq.op, rq.data_off,
						       rq.len };
			ret = cbdt_channel_submit(f->c, &rq);
			if (ret) {
				sp.fl[id].used = false;
				if (rq.data_len)
					cbdt_channel_data_free(f->c, rq.data_off,
							       rq.len);
			}
		}
		pthread_mutex_unlock(&sp.lock);
		if (!ret)
			sp.submitted++;
		else if (ret == -EAGAIN || ret == -ENOSPC)
			sched_yield();
		else
			sp.problems++;
		/* the other side of the lock-free pair: read it as well */
		assert_true(cbdt_channel_inflight(f->c) <= QD_MAX);
	}
	pthread_join(tr, NULL);
	cbdt_channel_client_close(f->c);
	pthread_join(th, NULL);
	assert_int_equal(sp.problems, 0);
	assert_int_equal(sp.reaped, NREQ);
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
};

static void *sleepy_handler_main(void *arg)
{
	struct sleepy_handler *sh = arg;

	handler_run(sh->h, &sh->cfg, &sh->served);
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
		.cfg = { .spin_ns = 1000,
			 .sleep_min_us = 2 * TFX_DEADLINE_MS * 1000U,
			 .sleep_max_us = 2 * TFX_DEADLINE_MS * 1000U },
	};
	struct cbdt_request rq = { .op = CBDT_OP_FLUSH, .req_id = 1 };
	struct cbdt_completion comp;
	struct cbdt_wait w;
	uint64_t t0, lat;
	pthread_t th;

	sh.h = f->h;
	assert_int_equal(pthread_create(&th, NULL, sleepy_handler_main, &sh), 0);
	/* The handler announces its sleep in sq_sleep just before it. */
	while (READ_ONCE(&fx_ctrl(f)->sq_sleep) != 1)
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
