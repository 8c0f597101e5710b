/* SPDX-License-Identifier: MIT */
/*
 * Adaptive waiting for ring pollers: spin, then sleep with exponential
 * back-off, optionally on a futex doorbell in shared memory.  A struct
 * cbdt_wait belongs to one thread; cbdt_doorbell_ring may run anywhere.
 */
#include <errno.h>
#include <pthread.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "cbdt.h"

#define WAIT_SPIN_NS_DEFAULT   20000U
#define WAIT_SLEEP_MIN_DEFAULT 50U
#define WAIT_SLEEP_MAX_DEFAULT 5000U

/* Spin steps between two clock reads: keeps the clock off the hot loop. */
#define WAIT_SPIN_BATCH 16
/* Adaptive spinning (spin_max_ns): while short, every this many expected
 * streaks spins the long way once, to see whether work comes back within
 * it; while long, this many in a row that work outlasted end it. */
#define WAIT_PROBE_EVERY 16U
#define WAIT_MISS_LIMIT	 3U

static uint64_t wait_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void cbdt_wait_init(struct cbdt_wait *w, const struct cbdt_wait_cfg *cfg)
{
	w->cfg.spin_ns = cfg && cfg->spin_ns ? cfg->spin_ns :
					       WAIT_SPIN_NS_DEFAULT;
	w->cfg.sleep_min_us = cfg && cfg->sleep_min_us ? cfg->sleep_min_us :
							 WAIT_SLEEP_MIN_DEFAULT;
	w->cfg.sleep_max_us = cfg && cfg->sleep_max_us ? cfg->sleep_max_us :
							 WAIT_SLEEP_MAX_DEFAULT;
	if (w->cfg.sleep_max_us < w->cfg.sleep_min_us)
		w->cfg.sleep_max_us = w->cfg.sleep_min_us;
	w->cfg.doorbell_max_us = cfg ? cfg->doorbell_max_us : 0;
	if (w->cfg.doorbell_max_us < w->cfg.sleep_max_us)
		w->cfg.doorbell_max_us = w->cfg.sleep_max_us;
	w->cfg.spin_max_ns = cfg ? cfg->spin_max_ns : 0;
	if (w->cfg.spin_max_ns < w->cfg.spin_ns)
		w->cfg.spin_max_ns = w->cfg.spin_ns;
	w->hot = false;
	w->expect = false;
	w->streak_adapts = false;
	w->streak_spin_ns = w->cfg.spin_ns;
	w->streaks = 0;
	w->misses = 0;
	w->spins = 0;
	w->sleeps = 0;
	w->idle_since_ns = 0;
	w->sleep_us = w->cfg.sleep_min_us;
}

void cbdt_wait_expect(struct cbdt_wait *w, bool soon)
{
	w->expect = soon;
}

/*
 * Adaptive spinning: an expected streak that work ended within
 * spin_max_ns (however it was spent: a sleep only makes it look longer)
 * makes expected streaks spin that long; WAIT_MISS_LIMIT long ones in a
 * row that work outlasted make them short again.  While short, one in
 * WAIT_PROBE_EVERY spins long anyway: a sleeper's streak includes its
 * wake-up, which alone may be longer than the gap it would have caught.
 */
static void wait_adapt(struct cbdt_wait *w)
{
	if (!w->streak_adapts || !w->idle_since_ns)
		return;
	if (wait_now_ns() - w->idle_since_ns <= w->cfg.spin_max_ns) {
		w->hot = true;
		w->misses = 0;
	} else if (w->hot && ++w->misses >= WAIT_MISS_LIMIT) {
		w->hot = false;
		w->misses = 0;
	}
}

void cbdt_wait_reset(struct cbdt_wait *w)
{
	wait_adapt(w);
	w->idle_since_ns = 0;
	w->sleep_us = w->cfg.sleep_min_us;
}

/* An idle streak starts now: how long it spins. */
static void wait_streak_start(struct cbdt_wait *w, uint64_t now)
{
	w->idle_since_ns = now;
	w->streak_spin_ns = w->cfg.spin_ns;
	w->streak_adapts = w->expect && w->cfg.spin_max_ns > w->cfg.spin_ns;
	if (w->streak_adapts &&
	    (w->hot || ++w->streaks % WAIT_PROBE_EVERY == 0))
		w->streak_spin_ns = w->cfg.spin_max_ns;
}

bool cbdt_wait_would_sleep(const struct cbdt_wait *w)
{
	if (!w->idle_since_ns)
		return w->cfg.spin_ns == 0;
	return wait_now_ns() - w->idle_since_ns >= w->streak_spin_ns;
}

static void wait_nanosleep(uint32_t us)
{
	struct timespec ts = {
		.tv_sec = us / 1000000U,
		.tv_nsec = (long)(us % 1000000U) * 1000L,
	};

	/* An early return on a signal only shortens one back-off step. */
	nanosleep(&ts, NULL);
}

/*
 * Not FUTEX_PRIVATE: the doorbell lives in a MAP_SHARED mapping and the
 * waker is another process.  True if the futex worked (woken, value
 * changed or timed out); false, without having slept, on any other
 * failure (EFAULT/ENOSYS/EINVAL on a mapping the kernel cannot key, e.g.
 * some dax setups): the caller sleeps plainly instead.
 */
static bool wait_futex(uint32_t *doorbell, uint32_t us)
{
	struct timespec ts = {
		.tv_sec = us / 1000000U,
		.tv_nsec = (long)(us % 1000000U) * 1000L,
	};

	if (syscall(SYS_futex, doorbell, FUTEX_WAIT, 1U, &ts, NULL, 0) == 0)
		return true;
	return errno == EAGAIN /* rung before we slept: work is there */ ||
	       errno == EINTR || errno == ETIMEDOUT;
}

void cbdt_wait_spin(struct cbdt_wait *w)
{
	if (!w->idle_since_ns)
		wait_streak_start(w, wait_now_ns());
	for (int i = 0; i < WAIT_SPIN_BATCH; i++)
		cpu_relax();
	w->spins++;
}

void cbdt_wait_idle(struct cbdt_wait *w, uint32_t *doorbell)
{
	uint64_t now = wait_now_ns();
	uint32_t cap = w->cfg.sleep_max_us;

	if (!w->idle_since_ns)
		wait_streak_start(w, now);
	if (now - w->idle_since_ns < w->streak_spin_ns) {
		cbdt_wait_spin(w);
		return;
	}
	w->sleeps++;
	/*
	 * A peer on this kernel rings the doorbell: sleep until it does (or
	 * doorbell_max_us passed), not in back-off steps, each of which would
	 * be a timer wake-up for nothing.
	 */
	if (doorbell && w->cfg.doorbell_max_us > w->cfg.sleep_max_us &&
	    wait_futex(doorbell, w->cfg.doorbell_max_us)) {
		w->sleep_us = w->cfg.doorbell_max_us;
		return;
	}
	/* A peer elsewhere cannot ring: step up to sleep_max_us. */
	if (!doorbell || !wait_futex(doorbell, w->sleep_us))
		wait_nanosleep(w->sleep_us);
	w->sleep_us = w->sleep_us >= cap / 2 ? cap : w->sleep_us * 2;
}

void cbdt_doorbell_ring(uint32_t *doorbell)
{
	uint32_t expected = 1;

	/*
	 * The caller published its work and issued smp_mb(); this load pairs
	 * with the sleeper's store of 1 + smp_mb() + re-check, so either we
	 * see the 1 here or the sleeper sees our work.  The CAS makes one
	 * waker pay the syscall per sleep.
	 */
	if (READ_ONCE(*doorbell) != 1)
		return;
	if (cmpxchg(doorbell, &expected, 0U))
		syscall(SYS_futex, doorbell, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void cbdt_cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int cbdt_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m,
			 uint64_t deadline_ns)
{
	uint64_t now = wait_now_ns(), until = now + CBDT_COND_SLICE_NS;
	struct timespec ts;

	if (deadline_ns && now >= deadline_ns)
		return -ETIMEDOUT;
	if (deadline_ns && deadline_ns < until)
		until = deadline_ns;
	ts.tv_sec = (time_t)(until / 1000000000ULL);
	ts.tv_nsec = (long)(until % 1000000000ULL);
	pthread_cond_timedwait(c, m, &ts);
	return 0;
}
