/* Description: adaptive waiting: defaults, spin then sleep, exponential
 * back-off to the cap and reset, a spin step that never sleeps, a local
 * peer's doorbell slept on without back-off steps (woken by the ring,
 * plain back-off when the futex fails), futex doorbell wake-up across threads,
 * immediate return when the doorbell was already cleared, nanosleep
 * fallback when the futex call fails, and the CPU an idle waiter uses. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <unistd.h>

#include <cmocka.h>

#include "barrier.h"
#include "cbdt.h"
#include "fixture.h"

/* Sleeps that only a missing wake-up would wait out: the doorbell tests
 * can tell "woken" from "timed out" however slow the machine is. */
#define LONG_SLEEP_US (2 * TFX_DEADLINE_MS * 1000U)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_defaults(void **state)
{
	struct cbdt_wait_cfg cfg = {
		.spin_ns = 7, .sleep_min_us = 300, .sleep_max_us = 100};
	struct cbdt_wait w;

	cbdt_wait_init(&w, NULL);
	assert_int_equal(w.cfg.spin_ns, 20000);
	assert_int_equal(w.cfg.sleep_min_us, 50);
	assert_int_equal(w.cfg.sleep_max_us, 5000);
	assert_int_equal(w.sleep_us, 50);
	assert_int_equal(w.idle_since_ns, 0);

	/* A cap below the floor is raised to it. */
	cbdt_wait_init(&w, &cfg);
	assert_int_equal(w.cfg.spin_ns, 7);
	assert_int_equal(w.cfg.sleep_min_us, 300);
	assert_int_equal(w.cfg.sleep_max_us, 300);
}

/*
 * Every call of an idle streak spins while less than spin_ns passed since
 * the streak began and sleeps after.  How many calls fall into either
 * phase depends on how often this thread gets the CPU, so each call is
 * judged by clock readings around it: a spin must have begun before the
 * end of the spin phase, a sleep must have ended after it.
 */
static void test_spin_then_sleep(void **state)
{
	struct cbdt_wait_cfg cfg = {
		.spin_ns = 2000000, .sleep_min_us = 100, .sleep_max_us = 100};
	struct cbdt_wait w;
	uint64_t start, before, after, spins, sleeps, spin_end;
	bool would;

	cbdt_wait_init(&w, &cfg);
	assert_false(cbdt_wait_would_sleep(&w));
	/* The first call of a streak starts it: always a spin. */
	start = now_ns();
	cbdt_wait_idle(&w, NULL);
	assert_int_equal(w.spins, 1);
	assert_int_equal(w.sleeps, 0);
	assert_true(w.idle_since_ns >= start);
	spin_end = w.idle_since_ns + cfg.spin_ns;

	while (w.sleeps == 0) {
		assert_true(now_ns() - start < TFX_DEADLINE_MS * 1000000ULL);
		spins = w.spins;
		sleeps = w.sleeps;
		before = now_ns();
		would = cbdt_wait_would_sleep(&w);
		cbdt_wait_idle(&w, NULL);
		after = now_ns();
		/* one step, spin or sleep */
		assert_int_equal(w.spins - spins + w.sleeps - sleeps, 1);
		if (w.spins > spins)
			assert_true(before < spin_end);
		else
			assert_true(after >= spin_end);
		/* "would sleep" said yes: it did */
		if (would)
			assert_int_equal(w.sleeps, sleeps + 1);
	}
	/* The spin phase lasted at least spin_ns. */
	assert_true(now_ns() - start >= cfg.spin_ns);
	/* Past it, every call sleeps. */
	assert_true(cbdt_wait_would_sleep(&w));
	spins = w.spins;
	cbdt_wait_idle(&w, NULL);
	assert_int_equal(w.sleeps, 2);
	assert_int_equal(w.spins, spins);

	/* Work found: the next idle streak spins again. */
	cbdt_wait_reset(&w);
	assert_false(cbdt_wait_would_sleep(&w));
	cbdt_wait_idle(&w, NULL);
	assert_int_equal(w.sleeps, 2);
	assert_int_equal(w.spins, spins + 1);
}

/* Start an idle streak, end it with work after @gap_us of sleep. */
static void streak(struct cbdt_wait *w, unsigned gap_us)
{
	cbdt_wait_spin(w);
	if (gap_us)
		usleep(gap_us);
	cbdt_wait_reset(w);
}

/* Only streaks the caller expects to be short adapt. */
static void test_adaptive_spin_needs_expect(void **state)
{
	struct cbdt_wait_cfg cfg = {.spin_ns = 1000,
				    .spin_max_ns = 4000000000U};
	struct cbdt_wait w;

	(void)state;
	cbdt_wait_init(&w, &cfg);
	for (int i = 0; i < 40; i++) {
		cbdt_wait_spin(&w);
		assert_int_equal(w.streak_spin_ns, 1000);
		cbdt_wait_reset(&w);
	}
	assert_false(w.hot);
	/* Without spin_max_ns nothing adapts, expected or not. */
	cbdt_wait_init(&w, &(struct cbdt_wait_cfg){.spin_ns = 1000});
	cbdt_wait_expect(&w, true);
	for (int i = 0; i < 40; i++) {
		streak(&w, 0);
		assert_int_equal(w.streak_spin_ns, 1000);
	}
	assert_false(w.hot);
}

/* Work back within spin_max_ns: long spins, until three in a row miss. */
static void test_adaptive_spin_hot_then_cold(void **state)
{
	/* 50 ms: a streak ended at once is a hit on any machine; one
	 * that slept 60 ms a miss */
	struct cbdt_wait_cfg cfg = {.spin_ns = 1000, .spin_max_ns = 50000000};
	struct cbdt_wait w;

	(void)state;
	cbdt_wait_init(&w, &cfg);
	cbdt_wait_expect(&w, true);
	streak(&w, 0);
	assert_true(w.hot);
	cbdt_wait_spin(&w);
	assert_int_equal(w.streak_spin_ns, cfg.spin_max_ns);
	assert_false(cbdt_wait_would_sleep(&w));
	cbdt_wait_reset(&w);
	/* two misses, then a hit: still hot */
	streak(&w, 60000);
	streak(&w, 60000);
	assert_true(w.hot);
	streak(&w, 0);
	streak(&w, 60000);
	streak(&w, 60000);
	assert_true(w.hot);
	streak(&w, 60000);
	assert_false(w.hot);
	/* not expected: no adapting, however short */
	cbdt_wait_expect(&w, false);
	streak(&w, 0);
	assert_false(w.hot);
}

/* While cold, one expected streak in 16 spins long to look. */
static void test_adaptive_spin_probes(void **state)
{
	struct cbdt_wait_cfg cfg = {.spin_ns = 1000, .spin_max_ns = 2000};
	struct cbdt_wait w;
	unsigned longs = 0;

	(void)state;
	cbdt_wait_init(&w, &cfg);
	cbdt_wait_expect(&w, true);
	for (int i = 0; i < 32; i++) {
		cbdt_wait_spin(&w);
		longs += w.streak_spin_ns == cfg.spin_max_ns;
		usleep(1000); /* every one a miss */
		cbdt_wait_reset(&w);
		assert_false(w.hot);
	}
	assert_int_equal(longs, 2);
}

static void test_backoff_doubles_to_cap(void **state)
{
	struct cbdt_wait_cfg cfg = {
		.spin_ns = 1, .sleep_min_us = 10, .sleep_max_us = 100};
	static const uint32_t expect[] = {20, 40, 80, 100, 100, 100};
	struct cbdt_wait w;
	uint64_t start, elapsed;

	cbdt_wait_init(&w, &cfg);
	cbdt_wait_idle(&w, NULL); /* starts the streak */
	while (!cbdt_wait_would_sleep(&w))
		;
	start = now_ns();
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		cbdt_wait_idle(&w, NULL);
		assert_int_equal(w.sleep_us, expect[i]);
	}
	elapsed = now_ns() - start;
	/* 10+20+40+80+100+100 us were slept. */
	assert_true(elapsed >= 350000);
	cbdt_wait_reset(&w);
	assert_int_equal(w.sleep_us, 10);
}

struct sleeper {
	uint32_t *doorbell;
	uint32_t sleep_us;
	uint32_t doorbell_max_us; /* 0: a peer that cannot ring */
	uint64_t elapsed_ns;
	uint64_t end_ns; /* when the sleep returned */
	uint32_t started;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	struct cbdt_wait_cfg cfg = {.spin_ns = 1,
				    .sleep_min_us = s->sleep_us,
				    .sleep_max_us = s->sleep_us,
				    .doorbell_max_us = s->doorbell_max_us};
	struct cbdt_wait w;
	uint64_t start;

	cbdt_wait_init(&w, &cfg);
	cbdt_wait_idle(&w, NULL);
	while (!cbdt_wait_would_sleep(&w))
		;
	smp_store_release(&s->started, 1);
	start = now_ns();
	cbdt_wait_idle(&w, s->doorbell);
	s->end_ns = now_ns();
	s->elapsed_ns = s->end_ns - start;
	return NULL;
}

/*
 * Doorbell sleeps last beyond sleep_max_us only when the caller said the
 * peer shares this kernel; otherwise the plain cap bounds the latency.
 */
static unsigned doorbell_cap_after_timeouts(uint32_t doorbell_max_us)
{
	struct cbdt_wait_cfg cfg = {.spin_ns = 1,
				    .sleep_min_us = 50,
				    .sleep_max_us = 200,
				    .doorbell_max_us = doorbell_max_us};
	struct cbdt_wait w;
	uint32_t doorbell;

	cbdt_wait_init(&w, &cfg);
	for (int i = 0; i < 8; i++) {
		doorbell = 1; /* asleep, nobody rings: the futex times out */
		cbdt_wait_idle(&w, &doorbell);
	}
	return w.sleep_us;
}

static void test_doorbell_cap_only_for_local_peer(void **state)
{
	assert_int_equal(doorbell_cap_after_timeouts(0), 200);
	assert_int_equal(doorbell_cap_after_timeouts(800), 800);
	/* Below the plain cap it changes nothing. */
	assert_int_equal(doorbell_cap_after_timeouts(100), 200);
}

/* Run @s in a thread, ring its doorbell once it sleeps in the futex
 * (however long that takes), and wait for it: when it was rung. */
static uint64_t ring_sleeper(struct sleeper *s)
{
	uint64_t rung;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, sleeper_main, s), 0);
	while (!smp_load_acquire(&s->started))
		usleep(1000);
	assert_true(tfx_wait_other_thread_sleeping());
	smp_mb();
	rung = now_ns();
	cbdt_doorbell_ring(s->doorbell);
	pthread_join(th, NULL);
	return rung;
}

/*
 * Deciding "spin" and then spinning must be one decision: the spin phase
 * may end between cbdt_wait_would_sleep() and the step, and a step that
 * then slept would sleep where no doorbell is published to wake it.
 */
static void test_spin_step_never_sleeps(void **state)
{
	struct cbdt_wait_cfg cfg = {.spin_ns = 1000000,
				    .sleep_min_us = LONG_SLEEP_US,
				    .sleep_max_us = LONG_SLEEP_US};
	struct cbdt_wait w;

	cbdt_wait_init(&w, &cfg);
	cbdt_wait_spin(&w); /* starts the streak */
	assert_true(w.idle_since_ns != 0);
	usleep(3000); /* the spin phase is over */
	assert_true(cbdt_wait_would_sleep(&w));
	cbdt_wait_spin(&w);
	assert_int_equal(w.spins, 2);
	assert_int_equal(w.sleeps, 0);
}

/*
 * A peer on this kernel rings for every piece of work: the first futex
 * sleep already lasts doorbell_max_us, not sleep_min_us (timer wake-ups
 * for nothing).  Nobody rings here, so it lasts at least that long.
 */
static void test_local_doorbell_sleeps_without_steps(void **state)
{
	uint32_t doorbell = 1;
	struct sleeper s = {.doorbell = &doorbell,
			    .sleep_us = 50,
			    .doorbell_max_us = 200000};

	sleeper_main(&s);
	assert_true(s.elapsed_ns >= 199000000ULL);
}

/* ... and a ring still ends it at once; the doorbell-less back-off is
 * unchanged when the futex cannot be used. */
static void test_local_doorbell_ring_and_fallback(void **state)
{
	static uint32_t words[2] __attribute__((aligned(8)));
	uint32_t doorbell = 1;
	struct sleeper s = {.doorbell = &doorbell,
			    .sleep_us = 50,
			    .doorbell_max_us = LONG_SLEEP_US};
	struct sleeper bad = {
		.doorbell = (uint32_t *)((char *)words + 1),
		.sleep_us = 30000,
		.doorbell_max_us = LONG_SLEEP_US,
	};

	ring_sleeper(&s);
	assert_true(s.elapsed_ns < LONG_SLEEP_US * 1000ULL / 2);
	/* EINVAL from the futex: a plain sleep of sleep_min_us, not of
	 * doorbell_max_us and not none at all */
	sleeper_main(&bad);
	assert_true(bad.elapsed_ns >= 29000000ULL);
	assert_true(bad.elapsed_ns < LONG_SLEEP_US * 1000ULL / 2);
}

static void test_futex_doorbell_wakes(void **state)
{
	uint32_t doorbell = 1;
	struct sleeper s = {.doorbell = &doorbell, .sleep_us = LONG_SLEEP_US};
	uint64_t rung = ring_sleeper(&s);

	assert_int_equal(READ_ONCE(doorbell), 0);
	printf("futex wake %.3f ms after the ring (sleep of %u s)\n",
	       (double)(s.end_ns - rung) / 1e6, LONG_SLEEP_US / 1000000U);
	/* It slept until the ring, and the ring, not the timeout, woke it. */
	assert_true(s.end_ns >= rung);
	assert_true(s.elapsed_ns < LONG_SLEEP_US * 1000ULL / 2);
}

static void test_ring_only_when_asleep(void **state)
{
	uint32_t doorbell = 0;

	cbdt_doorbell_ring(&doorbell);
	assert_int_equal(doorbell, 0);
	doorbell = 2; /* not a sleeper's mark: left alone */
	cbdt_doorbell_ring(&doorbell);
	assert_int_equal(doorbell, 2);
	doorbell = 1;
	cbdt_doorbell_ring(&doorbell);
	assert_int_equal(doorbell, 0);
}

static void test_cleared_doorbell_returns_at_once(void **state)
{
	/* The waker cleared it between our re-check and the futex call:
	 * FUTEX_WAIT sees 0 != 1 and returns instead of sleeping. */
	uint32_t doorbell = 0;
	struct sleeper s = {.doorbell = &doorbell, .sleep_us = LONG_SLEEP_US};

	sleeper_main(&s);
	/* Far below the sleep it would otherwise have taken. */
	assert_true(s.elapsed_ns < LONG_SLEEP_US * 1000ULL / 2);
}

static void test_futex_failure_falls_back_to_sleep(void **state)
{
	/* A misaligned word makes FUTEX_WAIT fail with EINVAL, standing in
	 * for a mapping the kernel cannot key: the waiter still sleeps. */
	static uint32_t words[2] __attribute__((aligned(8)));
	struct sleeper s = {
		.doorbell = (uint32_t *)((char *)words + 1),
		.sleep_us = 30000,
	};

	sleeper_main(&s);
	/* However late it woke up: it did not return at once. */
	assert_true(s.elapsed_ns >= 29000000ULL);
}

struct idler {
	uint32_t doorbell;
	uint32_t stop;
	uint64_t cpu_ns;
	uint64_t sleeps;     /* of the one idle streak */
	uint64_t late_spins; /* spins after its first sleep */
	uint32_t cap_us;     /* its longest sleep */
};

static void *idler_main(void *arg)
{
	struct idler *id = arg;
	struct cbdt_wait w;
	struct timespec ts;
	uint64_t spins_at_first_sleep = 0;

	cbdt_wait_init(&w, NULL);
	while (!smp_load_acquire(&id->stop)) {
		if (cbdt_wait_would_sleep(&w))
			WRITE_ONCE(id->doorbell, 1U);
		cbdt_wait_idle(&w, &id->doorbell);
		if (w.sleeps == 1 && !spins_at_first_sleep)
			spins_at_first_sleep = w.spins;
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	id->cpu_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	id->sleeps = w.sleeps;
	id->late_spins = w.sleeps ? w.spins - spins_at_first_sleep : w.spins;
	id->cap_us = w.cfg.doorbell_max_us;
	return NULL;
}

/*
 * What an idle waiter costs is how often it wakes up: it must stop
 * spinning and back off to its longest sleep.  Nobody rings its doorbell,
 * so every sleep lasts at least its length, and the number of wake-ups in
 * the time it ran is bounded whatever the machine does meanwhile.  (The
 * CPU share is printed; cbd-bench measures it, speed is not judged here.)
 */
static void test_idle_waiter_cpu(void **state)
{
	struct idler id = {0};
	uint64_t start, wall, max_sleeps;
	pthread_t th;
	double pct;

	start = now_ns();
	assert_int_equal(pthread_create(&th, NULL, idler_main, &id), 0);
	sleep(2);
	smp_store_release(&id.stop, 1);
	pthread_join(th, NULL);
	wall = now_ns() - start;
	pct = 100.0 * (double)id.cpu_ns / (double)wall;
	printf("idle waiter: %.3f%% of one core over %.1f s, %llu sleeps\n",
	       pct, (double)wall / 1e9, (unsigned long long)id.sleeps);
	/* It slept, and never spun again once it had. */
	assert_true(id.sleeps > 0);
	assert_int_equal(id.late_spins, 0);
	/* Doubling from 50 us reaches the cap within 8 sleeps; all later
	 * ones last the cap: a waiter that did not back off fails this. */
	max_sleeps = 8 + wall / 1000 / id.cap_us;
	assert_true(id.sleeps <= max_sleeps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_spin_then_sleep),
		cmocka_unit_test(test_backoff_doubles_to_cap),
		cmocka_unit_test(test_adaptive_spin_needs_expect),
		cmocka_unit_test(test_adaptive_spin_hot_then_cold),
		cmocka_unit_test(test_adaptive_spin_probes),
		cmocka_unit_test(test_doorbell_cap_only_for_local_peer),
		cmocka_unit_test(test_spin_step_never_sleeps),
		cmocka_unit_test(test_local_doorbell_sleeps_without_steps),
		cmocka_unit_test(test_local_doorbell_ring_and_fallback),
		cmocka_unit_test(test_futex_doorbell_wakes),
		cmocka_unit_test(test_ring_only_when_asleep),
		cmocka_unit_test(test_cleared_doorbell_returns_at_once),
		cmocka_unit_test(test_futex_failure_falls_back_to_sleep),
		cmocka_unit_test(test_idle_waiter_cpu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
