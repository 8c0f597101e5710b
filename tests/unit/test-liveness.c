/* Description: heartbeat observers: alive while the counter moves, dead
 * after the timeout on the observer's clock once it stops, fresh window on
 * first sight and on an owner change, FREE slots dead, heartbeats from
 * another process. */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cbdt.h"
#include "fixture.h"

#define MiB	   (1ULL << 20)
#define TIMEOUT_MS 100

struct fixture {
	char path[64];
	struct cbdt *t;
	struct cbdt_observer *obs;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (tfx_transport_new(f->path, &f->t, 64 * MiB, 0) ||
	    cbdt_observer_new(f->t, TIMEOUT_MS, &f->obs)) {
		tfx_transport_free(f->path, &f->t);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	cbdt_observer_free(f->obs);
	tfx_transport_free(f->path, &f->t);
	free(f);
	return 0;
}

static void test_observer_new_checks(void **state)
{
	struct fixture *f = *state;
	struct cbdt_observer *o;

	assert_int_equal(cbdt_observer_new(f->t, 0, &o), -EINVAL);
	assert_int_equal(cbdt_observer_new(NULL, 10, &o), -EINVAL);
	cbdt_observer_free(NULL);
}

static void test_free_slot_is_dead(void **state)
{
	struct fixture *f = *state;

	for (uint32_t id = 0; id < CBDT_HOSTS_NR; id++)
		assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_HOST, id));
	/* Even a free slot whose counter moves. */
	cbdt_slot_heartbeat(f->t, CBDT_OBJ_BACKEND, 3);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 3));
	cbdt_slot_heartbeat(f->t, CBDT_OBJ_BACKEND, 3);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 3));
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 9999));
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_NR, 0));
	assert_int_equal(cbdt_observer_age_ms(f->obs, CBDT_OBJ_NR, 0), 0);
}

static void test_stopped_counter_dies(void **state)
{
	struct fixture *f = *state;
	uint64_t o, t0;
	bool alive;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, 2, 1, &o), 2);
	/* First sight: alive for a full window without any heartbeat. */
	t0 = cbdt_now_ms();
	assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 2));
	/* Beating every 20 ms for 3 timeouts: never dead. */
	while (cbdt_now_ms() - t0 < 3 * TIMEOUT_MS) {
		cbdt_sleep_ms(20);
		cbdt_slot_heartbeat(f->t, CBDT_OBJ_BACKEND, 2);
		assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 2));
		assert_true(cbdt_observer_age_ms(f->obs, CBDT_OBJ_BACKEND, 2) <
			    10);
	}
	/* A last beat, seen after t0; then stop.  Still alive at half the
	 * timeout, dead after it. */
	t0 = cbdt_now_ns();
	cbdt_slot_heartbeat(f->t, CBDT_OBJ_BACKEND, 2);
	assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 2));
	cbdt_sleep_ms(TIMEOUT_MS / 2);
	alive = cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 2);
	/* (unless this machine stalled us past the timeout) */
	if (cbdt_now_ns() - t0 < TIMEOUT_MS * 1000000ULL)
		assert_true(alive);
	assert_true(cbdt_observer_age_ms(f->obs, CBDT_OBJ_BACKEND, 2) >=
		    TIMEOUT_MS / 2);
	cbdt_sleep_ms(TIMEOUT_MS / 2 + 20);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 2));
	assert_true(cbdt_observer_age_ms(f->obs, CBDT_OBJ_BACKEND, 2) >=
		    TIMEOUT_MS);
	/* the age counts from the sighting of the last beat, not before */
	assert_true(cbdt_observer_age_ms(f->obs, CBDT_OBJ_BACKEND, 2) <=
		    (cbdt_now_ns() - t0) / 1000000ULL);
	/* One beat revives it. */
	cbdt_slot_heartbeat(f->t, CBDT_OBJ_BACKEND, 2);
	assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 2));
	assert_int_equal(cbdt_observer_age_ms(f->obs, CBDT_OBJ_BACKEND, 2), 0);
}

static void test_never_beating_slot_dies_after_window(void **state)
{
	struct fixture *f = *state;
	uint64_t o, t0;
	bool alive;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BLKDEV, -1, 1, &o), 0);
	t0 = cbdt_now_ns();
	cbdt_observer_sample(f->obs);
	alive = cbdt_observer_alive(f->obs, CBDT_OBJ_BLKDEV, 0);
	/* alive for the window that began at the sample, unless this
	 * machine stalled us for all of it */
	if (cbdt_now_ns() - t0 < TIMEOUT_MS * 1000000ULL)
		assert_true(alive);
	cbdt_sleep_ms(TIMEOUT_MS + 20);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_BLKDEV, 0));
}

static void test_owner_change_resets_window(void **state)
{
	struct fixture *f = *state;
	uint64_t o, o2;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_HOST, 5, 0, &o), 5);
	assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_HOST, 5));
	cbdt_sleep_ms(TIMEOUT_MS + 20);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_HOST, 5));
	/* A restarted daemon takes the slot over: a new object, fresh
	 * window, although the counter did not move. */
	assert_int_equal(cbdt_slot_takeover(f->t, CBDT_OBJ_HOST, 5, o, 0, &o2),
			 0);
	assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_HOST, 5));
	assert_int_equal(cbdt_observer_age_ms(f->obs, CBDT_OBJ_HOST, 5), 0);
	cbdt_sleep_ms(TIMEOUT_MS + 20);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_HOST, 5));

	/* Released: dead at once; claimed again: alive at once. */
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_HOST, 5, o2), 0);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_HOST, 5));
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_HOST, 5, 0, &o), 5);
	assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_HOST, 5));
}

static void test_sample_all(void **state)
{
	struct fixture *f = *state;
	uint64_t o;

	for (int i = 0; i < 3; i++)
		assert_int_equal(
			cbdt_slot_claim(f->t, CBDT_OBJ_SEGMENT, i, 1, &o), i);
	cbdt_observer_sample(f->obs);
	cbdt_sleep_ms(TIMEOUT_MS / 2);
	cbdt_slot_heartbeat(f->t, CBDT_OBJ_SEGMENT, 1);
	cbdt_observer_sample(f->obs);
	/* Ages as of the last sample, without sampling again. */
	assert_true(cbdt_observer_age_ms(f->obs, CBDT_OBJ_SEGMENT, 0) >=
		    TIMEOUT_MS / 2 - 1);
	assert_int_equal(cbdt_observer_age_ms(f->obs, CBDT_OBJ_SEGMENT, 1), 0);
	cbdt_sleep_ms(TIMEOUT_MS / 2 + 20);
	cbdt_slot_heartbeat(f->t, CBDT_OBJ_SEGMENT, 1);
	cbdt_observer_sample(f->obs);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_SEGMENT, 0));
	assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_SEGMENT, 1));
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_SEGMENT, 2));
}

/* Two observers keep separate memories: a late one starts a new window. */
static void test_observers_are_independent(void **state)
{
	struct fixture *f = *state;
	struct cbdt_observer *late;
	uint64_t o;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, 0, 1, &o), 0);
	assert_true(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 0));
	cbdt_sleep_ms(TIMEOUT_MS + 20);
	assert_int_equal(cbdt_observer_new(f->t, TIMEOUT_MS, &late), 0);
	assert_false(cbdt_observer_alive(f->obs, CBDT_OBJ_BACKEND, 0));
	assert_true(cbdt_observer_alive(late, CBDT_OBJ_BACKEND, 0));
	cbdt_observer_free(late);
}

/*
 * Heartbeats from another process through its own mapping.  Whether a
 * child gets the CPU every XPROC_TIMEOUT_MS is up to the machine, so
 * "alive while it beats" is judged by an observer whose timeout only a
 * hang exceeds; the short one must see it die once the child is gone.
 */
#define XPROC_TIMEOUT_MS 250
#define XPROC_BEATS	 60

static void test_heartbeat_from_other_process(void **state)
{
	struct fixture *f = *state;
	struct cbdt_observer *obs, *patient;
	uint64_t o, t0, hb;
	int status;
	pid_t pid;

	assert_int_equal(cbdt_observer_new(f->t, XPROC_TIMEOUT_MS, &obs), 0);
	assert_int_equal(cbdt_observer_new(f->t, TFX_DEADLINE_MS, &patient), 0);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_HOST, 1, 0, &o), 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cbdt *t;

		/* A separate mapping, as another host would have. */
		if (cbdt_open(f->path, 0, &t))
			_exit(1);
		for (int i = 0; i < XPROC_BEATS; i++) {
			cbdt_slot_heartbeat(t, CBDT_OBJ_HOST, 1);
			usleep(10000);
		}
		cbdt_close(t);
		_exit(0);
	}
	/* Watch every beat of the child arrive, however slowly it runs. */
	t0 = cbdt_now_ms();
	do {
		assert_true(cbdt_now_ms() - t0 < TFX_DEADLINE_MS);
		hb = cbdt_slot_heartbeat_read(f->t, CBDT_OBJ_HOST, 1);
		assert_true(cbdt_observer_alive(patient, CBDT_OBJ_HOST, 1));
		(void)cbdt_observer_alive(obs, CBDT_OBJ_HOST, 1);
		cbdt_sleep_ms(5);
	} while (hb < XPROC_BEATS);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(cbdt_slot_heartbeat_read(f->t, CBDT_OBJ_HOST, 1),
			 XPROC_BEATS);
	/* The process is gone; its slot is still ACTIVE but dies one
	 * timeout after the observer last saw the counter move. */
	t0 = cbdt_now_ms();
	while (cbdt_observer_alive(obs, CBDT_OBJ_HOST, 1)) {
		assert_true(cbdt_now_ms() - t0 < TFX_DEADLINE_MS); /* it dies */
		cbdt_sleep_ms(5);
	}
	assert_true(cbdt_observer_age_ms(obs, CBDT_OBJ_HOST, 1) >=
		    XPROC_TIMEOUT_MS);
	cbdt_observer_free(patient);
	cbdt_observer_free(obs);
}

static void test_clock_is_monotonic(void **state)
{
	struct timespec ts;
	uint64_t before, a, b, after;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	before = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	a = cbdt_now_ns();
	cbdt_sleep_ms(5);
	b = cbdt_now_ns();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	after = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	assert_true(b - a >= 5000000ULL);
	/* CLOCK_MONOTONIC in ns itself, however long the sleep took */
	assert_true(before <= a && a <= b && b <= after);
	assert_true(cbdt_now_ms() >= b / 1000000ULL);
}

#define T(fn) \
	cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_observer_new_checks),
		T(test_free_slot_is_dead),
		T(test_stopped_counter_dies),
		T(test_never_beating_slot_dies_after_window),
		T(test_owner_change_resets_window),
		T(test_sample_all),
		T(test_observers_are_independent),
		T(test_heartbeat_from_other_process),
		T(test_clock_is_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
