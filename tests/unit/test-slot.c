/* Description: slots: claims (lowest free, pinned, exhaustion) racing across
 * threads and fork()ed processes, release/takeover with stale owners,
 * generations, double-buffered records (torn copy fallback, seq wrap,
 * concurrent writer and readers), janitor lease and backend locks. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "barrier.h"
#include "cbdt.h"
#include "fixture.h"

#define MiB (1ULL << 20)

struct fixture {
	char path[64];
	struct cbdt *t;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || tfx_transport_new(f->path, &f->t, 64 * MiB, 0)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	tfx_transport_free(f->path, &f->t);
	free(f);
	return 0;
}

static void test_slot_get_bounds(void **state)
{
	struct fixture *f = *state;
	const struct cbdt_info *in = cbdt_get_info(f->t);
	uint8_t *base = cbdt_base(f->t);

	assert_int_equal(cbdt_slot_count(f->t, CBDT_OBJ_HOST), CBDT_HOSTS_NR);
	assert_int_equal(cbdt_slot_count(f->t, CBDT_OBJ_BACKEND),
			 CBDT_BACKENDS_NR);
	assert_int_equal(cbdt_slot_count(f->t, CBDT_OBJ_BLKDEV),
			 CBDT_BLKDEVS_NR);
	assert_int_equal(cbdt_slot_count(f->t, CBDT_OBJ_SEGMENT), 3);
	assert_int_equal(cbdt_slot_count(f->t, CBDT_OBJ_NR), 0);
	assert_ptr_equal(cbdt_slot_get(f->t, CBDT_OBJ_HOST, 0),
			 base + in->hosts.off);
	assert_ptr_equal(cbdt_slot_get(f->t, CBDT_OBJ_BLKDEV, 7),
			 base + in->blkdevs.off + 7 * CBDT_SLOT_SIZE);
	assert_ptr_equal(cbdt_slot_get(f->t, CBDT_OBJ_SEGMENT, 2),
			 base + in->segments.off + 2 * CBDT_SLOT_SIZE);
	assert_null(cbdt_slot_get(f->t, CBDT_OBJ_SEGMENT, 3));
	assert_null(cbdt_slot_get(f->t, CBDT_OBJ_HOST, CBDT_HOSTS_NR));
	assert_null(cbdt_slot_get(f->t, CBDT_OBJ_NR, 0));
	assert_int_equal(cbdt_slot_owner(f->t, CBDT_OBJ_HOST, 999), 0);
}

static void test_claim_lowest_free(void **state)
{
	struct fixture *f = *state;
	uint64_t o0, o1, o2;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, -1, 4, &o0),
			 0);
	assert_int_equal(CBDT_OWNER_STATE(o0), CBDT_SLOT_ACTIVE);
	assert_int_equal(CBDT_OWNER_HOST(o0), 4);
	assert_int_equal(CBDT_OWNER_GEN(o0), 1);
	assert_int_equal(cbdt_slot_owner(f->t, CBDT_OBJ_BACKEND, 0), o0);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, -1, 4, &o1),
			 1);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BACKEND, 0, o0), 0);
	/* Released keeps the generation; the next claim bumps it. */
	assert_int_equal(
		CBDT_OWNER_STATE(cbdt_slot_owner(f->t, CBDT_OBJ_BACKEND, 0)),
		CBDT_SLOT_FREE);
	assert_int_equal(
		CBDT_OWNER_GEN(cbdt_slot_owner(f->t, CBDT_OBJ_BACKEND, 0)), 1);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, -1, 9, &o2),
			 0);
	assert_int_equal(CBDT_OWNER_GEN(o2), 2);
	assert_int_equal(CBDT_OWNER_HOST(o2), 9);
	/* The old owner word is now stale. */
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BACKEND, 0, o0),
			 -ESTALE);
	assert_int_equal(cbdt_slot_owner(f->t, CBDT_OBJ_BACKEND, 0), o2);
}

static void test_claim_host_slot_names_itself(void **state)
{
	struct fixture *f = *state;
	uint64_t o;

	assert_int_equal(
		cbdt_slot_claim(f->t, CBDT_OBJ_HOST, 6, CBDT_HOST_NONE, &o), 6);
	assert_int_equal(CBDT_OWNER_HOST(o), 6);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_HOST, -1, 30, &o), 0);
	assert_int_equal(CBDT_OWNER_HOST(o), 0);
	/* Other slot types need a real host. */
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BLKDEV, -1,
					 CBDT_HOST_NONE, &o),
			 -EINVAL);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_NR, -1, 1, &o),
			 -EINVAL);
}

static void test_claim_pinned(void **state)
{
	struct fixture *f = *state;
	uint64_t o;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, 17, 1, &o),
			 17);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, 17, 2, &o),
			 -EBUSY);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND,
					 CBDT_BACKENDS_NR, 1, &o),
			 -ERANGE);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_SEGMENT, 3, 1, &o),
			 -ERANGE);
	/* Lowest free skips the pinned one. */
	for (int i = 0; i < 17; i++)
		assert_int_equal(
			cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, -1, 1, &o), i);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, -1, 1, &o),
			 18);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, -1, 1, NULL),
			 19);
}

static void test_claim_exhaustion(void **state)
{
	struct fixture *f = *state;
	uint64_t o[3];

	for (int i = 0; i < 3; i++)
		assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_SEGMENT, -1, 1,
						 &o[i]),
				 i);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_SEGMENT, -1, 1, &o[0]),
			 -ENOSPC);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_SEGMENT, 1, o[1]), 0);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_SEGMENT, -1, 1, &o[1]),
			 1);
}

static void test_claim_keeps_records_and_heartbeat(void **state)
{
	struct fixture *f = *state;
	struct cbdt_backend_rec r = {.ident = 0x1234, .size = 99}, got;
	uint64_t o;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, 2, 1, &o), 2);
	assert_int_equal(
		cbdt_record_write(f->t, CBDT_OBJ_BACKEND, 2, &r, sizeof(r)), 0);
	for (int i = 0; i < 5; i++)
		cbdt_slot_heartbeat(f->t, CBDT_OBJ_BACKEND, 2);
	assert_int_equal(cbdt_slot_heartbeat_read(f->t, CBDT_OBJ_BACKEND, 2),
			 5);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BACKEND, 2, o), 0);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, 2, 1, &o), 2);
	assert_int_equal(cbdt_backend_read(f->t, 2, &got), 0);
	assert_int_equal(got.ident, 0x1234);
	assert_int_equal(cbdt_slot_heartbeat_read(f->t, CBDT_OBJ_BACKEND, 2),
			 5);
}

static void test_generation_wraps(void **state)
{
	struct fixture *f = *state;
	struct cbdt_slot *s = cbdt_slot_get(f->t, CBDT_OBJ_BLKDEV, 0);
	uint64_t o, o2;

	s->hdr.owner = CBDT_OWNER_MAKE(CBDT_SLOT_FREE, 0, CBDT_GEN_MASK);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BLKDEV, 0, 3, &o), 0);
	assert_int_equal(CBDT_OWNER_GEN(o), 0);
	assert_int_equal(CBDT_OWNER_HOST(o), 3);
	s->hdr.owner = CBDT_OWNER_MAKE(CBDT_SLOT_ACTIVE, 3, CBDT_GEN_MASK);
	o = s->hdr.owner;
	assert_int_equal(
		cbdt_slot_takeover(f->t, CBDT_OBJ_BLKDEV, 0, o, 3, &o2), 0);
	assert_int_equal(CBDT_OWNER_GEN(o2), 0);
	assert_int_equal(CBDT_OWNER_STATE(o2), CBDT_SLOT_ACTIVE);
}

static void test_takeover_and_stale(void **state)
{
	struct fixture *f = *state;
	uint64_t o, o2, o3;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, 1, 5, &o), 1);
	assert_int_equal(
		cbdt_slot_takeover(f->t, CBDT_OBJ_BACKEND, 1, o, 6, &o2), 0);
	assert_int_equal(CBDT_OWNER_HOST(o2), 6);
	assert_int_equal(CBDT_OWNER_GEN(o2), CBDT_OWNER_GEN(o) + 1);
	/* The old owner can neither release nor take over any more. */
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BACKEND, 1, o),
			 -ESTALE);
	assert_int_equal(cbdt_slot_takeover(f->t, CBDT_OBJ_BACKEND, 1, o, 5,
					    &o3),
			 -ESTALE);
	assert_int_equal(cbdt_slot_owner(f->t, CBDT_OBJ_BACKEND, 1), o2);
	/* A FREE word cannot be taken over; a double release is stale. */
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BACKEND, 1, o2), 0);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BACKEND, 1, o2),
			 -ESTALE);
	assert_int_equal(
		cbdt_slot_takeover(f->t, CBDT_OBJ_BACKEND, 1,
				   cbdt_slot_owner(f->t, CBDT_OBJ_BACKEND, 1),
				   5, &o3),
		-EINVAL);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BACKEND, 200, o2),
			 -ERANGE);
	assert_int_equal(cbdt_slot_takeover(f->t, CBDT_OBJ_BACKEND, 200, o2, 1,
					    &o3),
			 -ERANGE);
}

/* ---- claim races ---- */

#define RACE_THREADS 8
#define RACE_ROUNDS  4000
#define RACE_SLOTS   3 /* fewer slots than threads: real contention */

struct race {
	struct cbdt *t;
	int held[RACE_SLOTS]; /* private: how many think they own it */
	int violations;
	int claims;
	pthread_barrier_t start;
};

struct race_arg {
	struct race *r;
	struct cbdt *t;
	uint16_t host;
};

static void *race_thread(void *p)
{
	struct race_arg *a = p;
	struct race *r = a->r;

	pthread_barrier_wait(&r->start);
	for (int i = 0; i < RACE_ROUNDS; i++) {
		uint64_t o;
		int want = i % 2 ? -1 : (i / 2) % RACE_SLOTS;
		int id = cbdt_slot_claim(a->t, CBDT_OBJ_SEGMENT, want, a->host,
					 &o);

		if (id < 0) {
			if (id != -EBUSY && id != -ENOSPC)
				__atomic_add_fetch(&r->violations, 1000,
						   __ATOMIC_RELAXED);
			continue;
		}
		__atomic_add_fetch(&r->claims, 1, __ATOMIC_RELAXED);
		if (__atomic_fetch_add(&r->held[id], 1, __ATOMIC_ACQ_REL) != 0)
			__atomic_add_fetch(&r->violations, 1, __ATOMIC_RELAXED);
		if (CBDT_OWNER_HOST(o) != a->host ||
		    cbdt_slot_owner(a->t, CBDT_OBJ_SEGMENT, (uint32_t)id) != o)
			__atomic_add_fetch(&r->violations, 1, __ATOMIC_RELAXED);
		for (int k = 0; k < i % 7; k++)
			cpu_relax();
		__atomic_fetch_sub(&r->held[id], 1, __ATOMIC_ACQ_REL);
		if (cbdt_slot_release(a->t, CBDT_OBJ_SEGMENT, (uint32_t)id, o))
			__atomic_add_fetch(&r->violations, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_claim_race_threads(void **state)
{
	struct fixture *f = *state;
	struct race r = {.t = f->t};
	struct race_arg args[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	uint64_t gens = 0;

	assert_int_equal(cbdt_slot_count(f->t, CBDT_OBJ_SEGMENT), RACE_SLOTS);
	pthread_barrier_init(&r.start, NULL, RACE_THREADS);
	for (int i = 0; i < RACE_THREADS; i++) {
		args[i] = (struct race_arg){&r, f->t, (uint16_t)(i + 1)};
		assert_int_equal(
			pthread_create(&th[i], NULL, race_thread, &args[i]), 0);
	}
	for (int i = 0; i < RACE_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&r.start);
	assert_int_equal(r.violations, 0);
	assert_true(r.claims > RACE_ROUNDS);
	/* Every successful claim bumped one generation, and all are free. */
	for (uint32_t id = 0; id < RACE_SLOTS; id++) {
		uint64_t o = cbdt_slot_owner(f->t, CBDT_OBJ_SEGMENT, id);

		assert_int_equal(CBDT_OWNER_STATE(o), CBDT_SLOT_FREE);
		gens += CBDT_OWNER_GEN(o);
	}
	assert_int_equal(gens, (uint64_t)r.claims);
	print_message("%d claims by %d threads\n", r.claims, RACE_THREADS);
}

/* The same churn across processes, each with its own mapping. */
static void test_claim_race_processes_churn(void **state)
{
	struct fixture *f = *state;
	pthread_barrierattr_t ba;
	pid_t pid[RACE_THREADS];
	uint64_t gens = 0;
	struct race *r;

	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(r != MAP_FAILED);
	memset(r, 0, sizeof(*r));
	pthread_barrierattr_init(&ba);
	pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&r->start, &ba, RACE_THREADS);
	for (int i = 0; i < RACE_THREADS; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			struct race_arg a = {r, NULL, (uint16_t)(i + 1)};

			if (cbdt_open(f->path, 0, &a.t))
				_exit(1);
			race_thread(&a);
			cbdt_close(a.t);
			_exit(0);
		}
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		int status;

		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(r->violations, 0);
	for (uint32_t id = 0; id < RACE_SLOTS; id++)
		gens += CBDT_OWNER_GEN(
			cbdt_slot_owner(f->t, CBDT_OBJ_SEGMENT, id));
	assert_int_equal(gens, (uint64_t)r->claims);
	print_message("%d claims by %d processes\n", r->claims, RACE_THREADS);
	pthread_barrier_destroy(&r->start);
	munmap(r, sizeof(*r));
}

#define FORK_PROCS 8
#define FORK_TRIES 20 /* 160 attempts on 128 backend slots */

/*
 * Children start together (all block on one pipe until the parent closes
 * it), claim, and report the ids they won.  Winners keep their slots.
 */
static void fork_claim_race(struct cbdt *t, int want,
			    int ids[FORK_PROCS][FORK_TRIES])
{
	int go[2], res[FORK_PROCS][2];
	pid_t pid[FORK_PROCS];

	assert_int_equal(pipe(go), 0);
	for (int p = 0; p < FORK_PROCS; p++) {
		assert_int_equal(pipe(res[p]), 0);
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0) {
			int won[FORK_TRIES];
			char c;

			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(2);
			for (int i = 0; i < FORK_TRIES; i++) {
				uint64_t o;

				won[i] = cbdt_slot_claim(t, CBDT_OBJ_BACKEND,
							 want,
							 (uint16_t)(p + 1), &o);
				if (won[i] >= 0 &&
				    CBDT_OWNER_HOST(o) != (unsigned)p + 1)
					_exit(3);
			}
			_exit(write(res[p][1], won, sizeof(won)) ==
					      sizeof(won) ?
				      0 :
				      4);
		}
		close(res[p][1]);
	}
	close(go[0]);
	close(go[1]); /* start */
	for (int p = 0; p < FORK_PROCS; p++) {
		int status;

		assert_int_equal(read(res[p][0], ids[p], sizeof(ids[p])),
				 sizeof(ids[p]));
		close(res[p][0]);
		assert_int_equal(waitpid(pid[p], &status, 0), pid[p]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static void test_claim_race_processes(void **state)
{
	struct fixture *f = *state;
	int ids[FORK_PROCS][FORK_TRIES];
	int owner_of[CBDT_BACKENDS_NR];
	int won = 0, nospc = 0;

	for (int i = 0; i < (int)CBDT_BACKENDS_NR; i++)
		owner_of[i] = -1;
	fork_claim_race(f->t, -1, ids);
	for (int p = 0; p < FORK_PROCS; p++)
		for (int i = 0; i < FORK_TRIES; i++) {
			int id = ids[p][i];

			if (id == -ENOSPC) {
				nospc++;
				continue;
			}
			assert_true(id >= 0 && id < (int)CBDT_BACKENDS_NR);
			assert_int_equal(owner_of[id], -1); /* never twice */
			owner_of[id] = p;
			assert_int_equal(
				CBDT_OWNER_HOST(cbdt_slot_owner(
					f->t, CBDT_OBJ_BACKEND, (uint32_t)id)),
				p + 1);
			won++;
		}
	assert_int_equal(won, CBDT_BACKENDS_NR);
	assert_int_equal(nospc, FORK_PROCS * FORK_TRIES - CBDT_BACKENDS_NR);
}

static void test_claim_race_processes_pinned(void **state)
{
	struct fixture *f = *state;
	int ids[FORK_PROCS][FORK_TRIES];
	int winners = 0, winner = -1;

	fork_claim_race(f->t, 77, ids);
	for (int p = 0; p < FORK_PROCS; p++)
		for (int i = 0; i < FORK_TRIES; i++) {
			if (ids[p][i] == 77) {
				winners++;
				winner = p;
			} else {
				assert_int_equal(ids[p][i], -EBUSY);
			}
		}
	assert_int_equal(winners, 1);
	assert_int_equal(
		CBDT_OWNER_HOST(cbdt_slot_owner(f->t, CBDT_OBJ_BACKEND, 77)),
		winner + 1);
	assert_int_equal(
		CBDT_OWNER_GEN(cbdt_slot_owner(f->t, CBDT_OBJ_BACKEND, 77)), 1);
}

/* ---- records ---- */

static void test_record_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct cbdt_slot *s = cbdt_slot_get(f->t, CBDT_OBJ_BLKDEV, 4);
	uint8_t buf[CBDT_REC_PAYLOAD], got[CBDT_REC_PAYLOAD + 8];
	uint64_t seq;

	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_BLKDEV, 4, got, 8,
					  &seq),
			 -ENODATA);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_BLKDEV, 4, buf,
					   sizeof(buf)),
			 0);
	assert_int_equal(s->rec[0].hdr.seq, 1);
	assert_int_equal(s->rec[1].hdr.seq, 0);
	memset(got, 0xee, sizeof(got));
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_BLKDEV, 4, got,
					  sizeof(got), &seq),
			 0);
	assert_int_equal(seq, 1);
	assert_memory_equal(got, buf, sizeof(buf));
	/* Asking for more than stored: zero padded. */
	for (size_t i = sizeof(buf); i < sizeof(got); i++)
		assert_int_equal(got[i], 0);

	/* Shorter record: the copy alternates, the tail reads as zero. */
	assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_BLKDEV, 4, "abc", 3),
			 0);
	assert_int_equal(s->rec[1].hdr.seq, 2);
	assert_int_equal(s->rec[1].hdr.len, 3);
	memset(got, 0xee, sizeof(got));
	assert_int_equal(
		cbdt_record_read(f->t, CBDT_OBJ_BLKDEV, 4, got, 16, &seq), 0);
	assert_int_equal(seq, 2);
	assert_memory_equal(got, "abc\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
	/* Asking for less than stored. */
	assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_BLKDEV, 4, buf, 100),
			 0);
	assert_int_equal(s->rec[0].hdr.seq, 3);
	memset(got, 0xee, sizeof(got));
	assert_int_equal(
		cbdt_record_read(f->t, CBDT_OBJ_BLKDEV, 4, got, 10, NULL), 0);
	assert_memory_equal(got, buf, 10);
	assert_int_equal(got[10], 0xee);

	assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_BLKDEV, 4, buf,
					   CBDT_REC_PAYLOAD + 1),
			 -EINVAL);
	assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_BLKDEV, 999, buf, 1),
			 -ERANGE);
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_BLKDEV, 999, got, 1,
					  NULL),
			 -ERANGE);
	assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_BLKDEV, 5, NULL, 0),
			 0);
	assert_int_equal(
		cbdt_record_read(f->t, CBDT_OBJ_BLKDEV, 5, got, 4, &seq), 0);
	assert_memory_equal(got, "\0\0\0\0", 4);
}

static void test_record_torn_copy_falls_back(void **state)
{
	struct fixture *f = *state;
	struct cbdt_slot *s = cbdt_slot_get(f->t, CBDT_OBJ_HOST, 3);
	uint32_t v = 0;
	uint64_t seq;

	for (uint32_t i = 1; i <= 2; i++)
		assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_HOST, 3, &i,
						   sizeof(i)),
				 0);
	/* Copy 1 (seq 2, value 2) torn: its payload no longer matches. */
	s->rec[1].payload[0] ^= 0xff;
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v),
					  &seq),
			 0);
	assert_int_equal(v, 1);
	assert_int_equal(seq, 1);
	/* A torn header (seq) is caught by the crc too. */
	s->rec[1].payload[0] ^= 0xff;
	s->rec[1].hdr.seq = 50;
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v),
					  &seq),
			 0);
	assert_int_equal(seq, 1);
	/* An absurd len with a matching crc is still refused. */
	s->rec[1].hdr.seq = 2;
	s->rec[1].hdr.len = CBDT_REC_PAYLOAD + 1;
	s->rec[1].hdr.crc = cbdt_crc32c(0, (uint8_t *)&s->rec[1] + 4,
					sizeof(s->rec[1]) - 4);
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v),
					  &seq),
			 0);
	assert_int_equal(seq, 1);

	/* The next write must keep the only good copy and fix the torn one. */
	v = 3;
	assert_int_equal(
		cbdt_record_write(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v)), 0);
	assert_int_equal(s->rec[0].hdr.seq, 1);
	assert_int_equal(s->rec[1].hdr.seq, 2);
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v),
					  &seq),
			 0);
	assert_int_equal(v, 3);

	/* Both torn. */
	s->rec[0].payload[1] ^= 1;
	s->rec[1].payload[1] ^= 1;
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v),
					  &seq),
			 -EBADMSG);
	/* A write recovers. */
	assert_int_equal(
		cbdt_record_write(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v)), 0);
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v),
					  &seq),
			 0);
	assert_int_equal(v, 3);

	/* One copy garbage, the other never written: not "never written". */
	memset(&s->rec[0], 0x5a, sizeof(s->rec[0]));
	memset(&s->rec[1], 0, sizeof(s->rec[1]));
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_HOST, 3, &v, sizeof(v),
					  &seq),
			 -EBADMSG);
}

static void rec_forge(struct cbdt_rec *r, uint64_t seq, uint32_t val)
{
	memset(r, 0, sizeof(*r));
	r->hdr.seq = seq;
	r->hdr.len = sizeof(val);
	memcpy(r->payload, &val, sizeof(val));
	r->hdr.crc = cbdt_crc32c(0, (uint8_t *)r + 4, sizeof(*r) - 4);
}

static void test_record_seq_wraps(void **state)
{
	struct fixture *f = *state;
	struct cbdt_slot *s = cbdt_slot_get(f->t, CBDT_OBJ_SEGMENT, 0);
	uint32_t v;
	uint64_t seq;

	rec_forge(&s->rec[0], UINT64_MAX - 1, 10);
	rec_forge(&s->rec[1], UINT64_MAX, 11);
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_SEGMENT, 0, &v,
					  sizeof(v), &seq),
			 0);
	assert_int_equal(v, 11);
	v = 12;
	assert_int_equal(
		cbdt_record_write(f->t, CBDT_OBJ_SEGMENT, 0, &v, sizeof(v)), 0);
	/* 0 means never written: skipped. */
	assert_int_equal(s->rec[0].hdr.seq, 1);
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_SEGMENT, 0, &v,
					  sizeof(v), &seq),
			 0);
	assert_int_equal(v, 12);
	assert_int_equal(seq, 1);
	v = 13;
	assert_int_equal(
		cbdt_record_write(f->t, CBDT_OBJ_SEGMENT, 0, &v, sizeof(v)), 0);
	assert_int_equal(s->rec[1].hdr.seq, 2);
	assert_int_equal(cbdt_record_read(f->t, CBDT_OBJ_SEGMENT, 0, &v,
					  sizeof(v), &seq),
			 0);
	assert_int_equal(v, 13);
}

/* One writer rewrites a record as fast as it can; readers must only ever
 * see whole records, in order. */
struct rw_race {
	struct cbdt *t;
	int stop;
	int bad;  /* errors */
	int torn; /* payload not one whole record */
	int back; /* older than one seen before */
	uint64_t reads;
};

static void rw_fill(uint8_t *p, uint32_t n)
{
	memcpy(p, &n, 4);
	for (uint32_t i = 4; i < CBDT_REC_PAYLOAD; i++)
		p[i] = (uint8_t)(n * 31 + i);
}

static void *rw_reader(void *p)
{
	struct rw_race *r = p;
	uint8_t got[CBDT_REC_PAYLOAD], want[CBDT_REC_PAYLOAD];
	uint32_t last = 0, n;

	while (!smp_load_acquire(&r->stop)) {
		int ret = cbdt_record_read(r->t, CBDT_OBJ_BLKDEV, 9, got,
					   sizeof(got), NULL);

		if (ret == -ENODATA)
			continue;
		if (ret) {
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
			continue;
		}
		memcpy(&n, got, 4);
		rw_fill(want, n);
		if (memcmp(got, want, sizeof(got)))
			__atomic_add_fetch(&r->torn, 1, __ATOMIC_RELAXED);
		if (n < last)
			__atomic_add_fetch(&r->back, 1, __ATOMIC_RELAXED);
		last = n;
		__atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_record_concurrent_readers(void **state)
{
	struct fixture *f = *state;
	struct rw_race r = {.t = f->t};
	uint8_t buf[CBDT_REC_PAYLOAD];
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, rw_reader, &r),
				 0);
	for (uint32_t n = 1; n <= 200000; n++) {
		rw_fill(buf, n);
		assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_BLKDEV, 9,
						   buf, sizeof(buf)),
				 0);
	}
	smp_store_release(&r.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	print_message("%llu concurrent reads, %d errors, %d torn, %d older\n",
		      (unsigned long long)r.reads, r.bad, r.torn, r.back);
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.torn, 0);
	assert_int_equal(r.back, 0);
	assert_true(r.reads > 0);
}

static void test_typed_readers_terminate_strings(void **state)
{
	struct fixture *f = *state;
	struct cbdt_host_rec h;
	struct cbdt_backend_rec b;
	struct cbdt_blkdev_rec d = {.backend_id = 7, .queues = 2}, d2;
	struct cbdt_segment_rec sg = {.type = CBDT_SEG_CHANNEL, .queue = 1},
				sg2;

	memset(&h, 'h', sizeof(h));
	memset(&b, 'b', sizeof(b));
	assert_int_equal(
		cbdt_record_write(f->t, CBDT_OBJ_HOST, 0, &h, sizeof(h)), 0);
	assert_int_equal(
		cbdt_record_write(f->t, CBDT_OBJ_BACKEND, 0, &b, sizeof(b)), 0);
	assert_int_equal(cbdt_host_read(f->t, 0, &h), 0);
	assert_int_equal(strlen(h.hostname), CBDT_HOSTNAME_LEN - 1);
	assert_int_equal(cbdt_backend_read(f->t, 0, &b), 0);
	assert_int_equal(strlen(b.name), CBDT_NAME_LEN - 1);
	assert_int_equal(strnlen(b.path, sizeof(b.path)), CBDT_PATH_LEN - 1);
	assert_int_equal(
		cbdt_record_write(f->t, CBDT_OBJ_BLKDEV, 0, &d, sizeof(d)), 0);
	assert_int_equal(cbdt_blkdev_read(f->t, 0, &d2), 0);
	assert_memory_equal(&d, &d2, sizeof(d));
	assert_int_equal(cbdt_record_write(f->t, CBDT_OBJ_SEGMENT, 1, &sg,
					   sizeof(sg)),
			 0);
	assert_int_equal(cbdt_segment_read(f->t, 1, &sg2), 0);
	assert_memory_equal(&sg, &sg2, sizeof(sg));
	assert_int_equal(cbdt_segment_read(f->t, 2, &sg2), -ENODATA);
}

/* ---- janitor lease, backend lock ---- */

static uint64_t lease_word(struct fixture *f)
{
	return ((struct cbdt_global *)((uint8_t *)cbdt_base(f->t) +
				       CBDT_GLOBAL_OFF))
		->janitor_lease;
}

static void test_janitor_lease(void **state)
{
	struct fixture *f = *state;
	struct cbdt_observer *obs;
	uint64_t oa, ob, oa2;
	uint32_t a, b;

	a = (uint32_t)cbdt_slot_claim(f->t, CBDT_OBJ_HOST, -1, 0, &oa);
	b = (uint32_t)cbdt_slot_claim(f->t, CBDT_OBJ_HOST, -1, 0, &ob);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, 5, NULL), -EINVAL);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, a, NULL), 0);
	assert_int_equal(lease_word(f), cbdt_lease_make(a, CBDT_OWNER_GEN(oa)));
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, a, NULL),
			 0); /* again */
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, b, NULL), -EBUSY);
	/* B's release does not drop A's lease. */
	cbdt_janitor_lease_release(f->t, b);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, b, NULL), -EBUSY);
	cbdt_janitor_lease_release(f->t, a);
	assert_int_equal(lease_word(f), 0);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, b, NULL), 0);
	cbdt_janitor_lease_release(f->t, b);

	/* A holds it and stops beating: B steals it after the timeout. */
	assert_int_equal(cbdt_observer_new(f->t, 60, &obs), 0);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, a, obs), 0);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, b, obs), -EBUSY);
	for (int i = 0; i < 10; i++) {
		usleep(10000);
		cbdt_slot_heartbeat(f->t, CBDT_OBJ_HOST, a);
		assert_int_equal(cbdt_janitor_lease_acquire(f->t, b, obs),
				 -EBUSY);
	}
	usleep(90000);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, b, obs), 0);
	assert_int_equal(cbdt_lease_id(lease_word(f)), b);
	/* A, back from the dead, cannot release B's lease. */
	cbdt_janitor_lease_release(f->t, a);
	assert_int_equal(cbdt_lease_id(lease_word(f)), b);
	cbdt_observer_free(obs);

	/* B restarts (takeover bumps its generation): the old lease is
	 * stale even without an observer. */
	assert_int_equal(cbdt_slot_takeover(f->t, CBDT_OBJ_HOST, b, ob, 0, &ob),
			 0);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, a, NULL), 0);
	cbdt_janitor_lease_release(f->t, a);
	/* A holder whose slot was released is stale too. */
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, a, NULL), 0);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_HOST, a, oa), 0);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, b, NULL), 0);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_HOST, (int)a, 0, &oa2),
			 (int)a);
	assert_int_equal(cbdt_janitor_lease_acquire(f->t, a, NULL), -EBUSY);
}

static uint64_t backend_lock_word(struct fixture *f, uint32_t id)
{
	return cbdt_slot_get(f->t, CBDT_OBJ_BACKEND, id)->hdr.lock;
}

static void test_backend_lock(void **state)
{
	struct fixture *f = *state;
	uint64_t d1, d2, d1b;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BLKDEV, 1, 3, &d1), 1);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BLKDEV, 2, 4, &d2), 2);
	assert_int_equal(cbdt_backend_lock(f->t, 0, 1, d1), 0);
	assert_int_equal(backend_lock_word(f, 0),
			 cbdt_lease_make(1, CBDT_OWNER_GEN(d1)));
	assert_int_equal(cbdt_backend_lock(f->t, 0, 1, d1), 0); /* ours */
	assert_int_equal(cbdt_backend_lock(f->t, 0, 2, d2), -EBUSY);
	/* Another backend is independent. */
	assert_int_equal(cbdt_backend_lock(f->t, 1, 2, d2), 0);
	cbdt_backend_unlock(f->t, 1, 2, d2);
	assert_int_equal(backend_lock_word(f, 1), 0);
	/* Unlock by a non-holder changes nothing. */
	cbdt_backend_unlock(f->t, 0, 2, d2);
	assert_int_equal(cbdt_backend_lock(f->t, 0, 2, d2), -EBUSY);
	cbdt_backend_unlock(f->t, 0, 1, d1);
	assert_int_equal(backend_lock_word(f, 0), 0);

	/* A holder whose blkdev slot moved on (released, re-claimed) is
	 * stale and gets replaced. */
	assert_int_equal(cbdt_backend_lock(f->t, 0, 1, d1), 0);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BLKDEV, 1, d1), 0);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BLKDEV, 1, 3, &d1b), 1);
	assert_int_equal(cbdt_backend_lock(f->t, 0, 2, d2), 0);
	/* ... and the old holder's unlock does not drop the new lock. */
	cbdt_backend_unlock(f->t, 0, 1, d1);
	assert_int_equal(backend_lock_word(f, 0),
			 cbdt_lease_make(2, CBDT_OWNER_GEN(d2)));
	assert_int_equal(cbdt_backend_lock(f->t, 0, 1, d1b), -EBUSY);

	assert_int_equal(cbdt_backend_lock(f->t, CBDT_BACKENDS_NR, 1, d1b),
			 -ERANGE);
	assert_int_equal(cbdt_backend_lock(f->t, 0, CBDT_BLKDEVS_NR, d1b),
			 -ERANGE);
}

#define T(fn) \
	cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_slot_get_bounds),
		T(test_claim_lowest_free),
		T(test_claim_host_slot_names_itself),
		T(test_claim_pinned),
		T(test_claim_exhaustion),
		T(test_claim_keeps_records_and_heartbeat),
		T(test_generation_wraps),
		T(test_takeover_and_stale),
		T(test_claim_race_threads),
		T(test_claim_race_processes_churn),
		T(test_claim_race_processes),
		T(test_claim_race_processes_pinned),
		T(test_record_roundtrip),
		T(test_record_torn_copy_falls_back),
		T(test_record_seq_wraps),
		T(test_record_concurrent_readers),
		T(test_typed_readers_terminate_strings),
		T(test_janitor_lease),
		T(test_backend_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
