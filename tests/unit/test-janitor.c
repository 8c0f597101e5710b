/* Description: the janitor's decisions on a real transport: objects whose
 * heartbeat moves (or that are newer than the timeout) are never cleared,
 * a slow backend is kept, a dead client's channel segments go before its
 * blkdev and the blkdev before its host, a live handler is asked to detach
 * first, a dead backend is kept while a live blkdev maps it, orphaned
 * segments get a grace period, and the lease keeps a second janitor out. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/janitor.h"
#include "janitor-fixture.h"
#include "log.h"

/*
 * One janitor pass with stderr captured: returns the pass's result and
 * puts what it cleared, in log order, into @out as "type id;" tokens.
 */
static int pass_logged(struct jf *f, struct cbdt_observer *obs, uint32_t host,
		       char *out, size_t len)
{
	char line[512], type[16];
	FILE *tmp = tmpfile();
	int saved, ret;
	unsigned id;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	ret = janitor_pass(f->t, obs, host);
	dup2(saved, STDERR_FILENO);
	close(saved);

	out[0] = '\0';
	rewind(tmp);
	while (fgets(line, sizeof(line), tmp)) {
		/* "test-janitor: janitor: TYPE ID: cleared: ..." */
		const char *p = strstr(line, ": janitor: ");

		fputs(line, stderr); /* keep it visible in the test log */
		if (!p || !strstr(p, ": cleared") ||
		    sscanf(p, ": janitor: %15s %u", type, &id) != 2)
			continue;
		snprintf(out + strlen(out), len - strlen(out), "%s %u;", type,
			 id);
	}
	fclose(tmp);
	return ret;
}

struct world {
	struct jf *f;
	struct cbdt_observer *obs;
	uint32_t jan;	    /* the janitor's host */
	uint32_t bhost, be; /* backend host and its backend */
	uint64_t be_owner;
	uint32_t chost; /* client host */
	struct cbdt_blkdev *b;
	struct jf_handlers h;
};

/* Janitor host, a backend host with one backend of 4 handlers, a client
 * host that maps it with @queues queues; everything alive. */
static int world_setup_queues(void **state, unsigned queues)
{
	struct world *w = calloc(1, sizeof(*w));

	if (!w || !(w->f = jf_new()))
		return -1;
	w->jan = jf_host(w->f, "janitor", CBDT_ROLE_BACKEND, NULL);
	w->bhost = jf_host(w->f, "node-b", CBDT_ROLE_BACKEND, NULL);
	w->be = jf_backend(w->f, w->bhost, "disk0", 4, false, &w->be_owner);
	w->chost = jf_host(w->f, "client", CBDT_ROLE_CLIENT, NULL);
	if (w->be == UINT32_MAX || w->chost == UINT32_MAX)
		return -1;
	if (jf_map(w->f, &w->h, w->chost, w->be, w->be_owner, queues, false,
		   &w->b))
		return -1;
	if (cbdt_observer_new(w->f->t, JF_TIMEOUT_MS, &w->obs))
		return -1;
	*state = w;
	return 0;
}

static int world_setup(void **state)
{
	return world_setup_queues(state, 2);
}

static int world_teardown(void **state)
{
	struct world *w = *state;

	jf_handlers_free(&w->h);
	jf_blkdev_drop(w->b); /* its slots die with the file */
	cbdt_observer_free(w->obs);
	jf_free(w->f);
	free(w);
	return 0;
}

static uint64_t backend_lock_word(struct world *w)
{
	/* Pairs with the CAS of lock/unlock. */
	return smp_load_acquire(
		&cbdt_slot_get(w->f->t, CBDT_OBJ_BACKEND, w->be)->hdr.lock);
}

static void test_alive_objects_never_cleared(void **state)
{
	struct world *w = *state;
	char log[512];

	/* Many timeouts long, everything beating: nothing goes, not even
	 * the segments, which have no heartbeat of their own. */
	for (int i = 0; i < 4; i++) {
		jf_run(w->f, w->obs, JF_TIMEOUT_MS);
		assert_int_equal(
			pass_logged(w->f, w->obs, w->jan, log, sizeof(log)), 0);
		assert_string_equal(log, "");
	}
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_HOST), 3);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BACKEND), 1);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 1);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 2);
	for (unsigned q = 0; q < w->b->queues; q++)
		assert_int_equal(jf_ctrl(w->f, w->b->segs[q])->client_state,
				 CBDT_CLIENT_OPEN);
}

static void test_new_objects_get_a_full_window(void **state)
{
	struct world *w = *state;
	char log[512], want[512];
	uint64_t t0;
	int ret;

	/* Nobody but the janitor beats; the observer has just been made. */
	jf_kill(w->f, CBDT_OBJ_HOST, w->bhost);
	jf_kill(w->f, CBDT_OBJ_BACKEND, w->be);
	jf_kill(w->f, CBDT_OBJ_HOST, w->chost);
	jf_kill(w->f, CBDT_OBJ_BLKDEV, w->b->id);
	t0 = cbdt_now_ns(); /* before the first sight */
	ret = pass_logged(w->f, w->obs, w->jan, log, sizeof(log));
	if (jf_stalled(t0))
		skip();
	assert_int_equal(ret, 0);
	assert_string_equal(log, "");
	jf_run(w->f, w->obs, JF_TIMEOUT_MS / 4);
	ret = pass_logged(w->f, w->obs, w->jan, log, sizeof(log));
	if (jf_stalled(t0))
		skip();
	assert_int_equal(ret, 0);
	assert_string_equal(log, "");
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 1);

	/* Past the window: all of it is dead and goes, dependents first.
	 * The backend's handlers are dead too, so nobody has to detach. */
	jf_run(w->f, w->obs, JF_TIMEOUT_MS);
	assert_int_equal(pass_logged(w->f, w->obs, w->jan, log, sizeof(log)),
			 6);
	snprintf(want, sizeof(want),
		 "segment %u;segment %u;blkdev %u;backend %u;host %u;host %u;",
		 w->b->segs[0], w->b->segs[1], w->b->id, w->be, w->bhost,
		 w->chost);
	assert_string_equal(log, want);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_HOST), 1);
	assert_true(jf_active(w->f, CBDT_OBJ_HOST, w->jan));
	assert_int_equal(backend_lock_word(w), 0);
}

static void test_dead_client_segments_then_blkdev_then_host(void **state)
{
	struct world *w = *state;
	struct cbdt_blkdev *b2;
	struct jf_handlers h2;
	char log[512], want[512];

	jf_run(w->f, w->obs, JF_TIMEOUT_MS);
	assert_int_not_equal(backend_lock_word(w), 0);
	jf_kill(w->f, CBDT_OBJ_HOST, w->chost);
	jf_kill(w->f, CBDT_OBJ_BLKDEV, w->b->id);
	jf_run(w->f, w->obs, JF_TIMEOUT_MS + 2 * JF_TICK_MS);

	/* The backend is alive and its handlers are attached: they are
	 * asked to detach, and nothing is freed under them. */
	assert_int_equal(pass_logged(w->f, w->obs, w->jan, log, sizeof(log)),
			 0);
	assert_string_equal(log, "");
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 2);
	assert_true(jf_active(w->f, CBDT_OBJ_BLKDEV, w->b->id));
	assert_true(jf_active(w->f, CBDT_OBJ_HOST, w->chost));
	for (unsigned q = 0; q < w->b->queues; q++)
		assert_int_equal(jf_ctrl(w->f, w->b->segs[q])->client_state,
				 CBDT_CLIENT_CLOSING);

	/* They see CLOSING and detach; the next pass finishes the job. */
	assert_int_equal(jf_handlers_detach_closing(&w->h), 2);
	jf_run(w->f, w->obs, JF_TICK_MS);
	assert_int_equal(pass_logged(w->f, w->obs, w->jan, log, sizeof(log)),
			 4);
	snprintf(want, sizeof(want), "segment %u;segment %u;blkdev %u;host %u;",
		 w->b->segs[0], w->b->segs[1], w->b->id, w->chost);
	assert_string_equal(log, want);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 0);
	assert_int_equal(backend_lock_word(w), 0);
	assert_true(jf_active(w->f, CBDT_OBJ_BACKEND, w->be));
	assert_true(jf_active(w->f, CBDT_OBJ_HOST, w->bhost));

	/* The writable lock went with it: another writer may map now. */
	uint32_t c2 = jf_host(w->f, "client2", CBDT_ROLE_CLIENT, NULL);

	assert_int_equal(
		jf_map(w->f, &h2, c2, w->be, w->be_owner, 1, false, &b2), 0);
	jf_handlers_free(&h2);
	jf_blkdev_drop(b2);
}

static void test_dead_backend_kept_while_a_live_blkdev_maps_it(void **state)
{
	struct world *w = *state;
	char log[512], want[512];

	jf_kill(w->f, CBDT_OBJ_HOST, w->bhost);
	jf_kill(w->f, CBDT_OBJ_BACKEND, w->be);
	for (int i = 0; i < 3; i++) {
		jf_run(w->f, w->obs, JF_TIMEOUT_MS);
		assert_int_equal(
			pass_logged(w->f, w->obs, w->jan, log, sizeof(log)), 0);
		assert_string_equal(log, "");
	}
	/* The client waits for the backend to come back: all is kept. */
	assert_true(jf_active(w->f, CBDT_OBJ_BACKEND, w->be));
	assert_true(jf_active(w->f, CBDT_OBJ_HOST, w->bhost));
	assert_true(jf_active(w->f, CBDT_OBJ_BLKDEV, w->b->id));
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 2);

	/* The client gives up and unmaps (its handlers never detach: they
	 * are dead); then the backend, and only then its host, go. */
	jf_kill(w->f, CBDT_OBJ_BLKDEV, w->b->id);
	cbdt_blkdev_unmap(w->f->t, w->b, 50);
	w->b = NULL;
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 0);
	jf_run(w->f, w->obs, JF_TICK_MS);
	assert_int_equal(pass_logged(w->f, w->obs, w->jan, log, sizeof(log)),
			 2);
	snprintf(want, sizeof(want), "backend %u;host %u;", w->be, w->bhost);
	assert_string_equal(log, want);
	assert_true(jf_active(w->f, CBDT_OBJ_HOST, w->chost));
}

static void test_slow_backend_is_kept(void **state)
{
	struct world *w = *state;
	char log[512];
	uint64_t last = cbdt_now_ms();

	/* Beats at a third of the timeout: slow, but its heartbeat moves. */
	jf_kill(w->f, CBDT_OBJ_HOST, w->bhost);
	jf_kill(w->f, CBDT_OBJ_BACKEND, w->be);
	for (int i = 0; i < 50; i++) {
		if (cbdt_now_ms() - last >= JF_TIMEOUT_MS / 3) {
			cbdt_slot_heartbeat(w->f->t, CBDT_OBJ_HOST, w->bhost);
			cbdt_slot_heartbeat(w->f->t, CBDT_OBJ_BACKEND, w->be);
			last = cbdt_now_ms();
		}
		jf_run(w->f, NULL, 0);
		assert_int_equal(
			pass_logged(w->f, w->obs, w->jan, log, sizeof(log)), 0);
		assert_string_equal(log, "");
	}
	assert_true(jf_active(w->f, CBDT_OBJ_BACKEND, w->be));
	for (unsigned q = 0; q < w->b->queues; q++)
		assert_int_equal(jf_ctrl(w->f, w->b->segs[q])->client_state,
				 CBDT_CLIENT_OPEN);
}

static void test_dead_blkdev_of_live_host(void **state)
{
	struct world *w = *state;
	char log[512], want[512];

	jf_kill(w->f, CBDT_OBJ_BLKDEV, w->b->id);
	jf_run(w->f, w->obs, JF_TIMEOUT_MS + 2 * JF_TICK_MS);
	assert_int_equal(pass_logged(w->f, w->obs, w->jan, log, sizeof(log)),
			 0);
	assert_int_equal(jf_handlers_detach_closing(&w->h), 2);
	assert_int_equal(pass_logged(w->f, w->obs, w->jan, log, sizeof(log)),
			 3);
	snprintf(want, sizeof(want), "segment %u;segment %u;blkdev %u;",
		 w->b->segs[0], w->b->segs[1], w->b->id);
	assert_string_equal(log, want);
	assert_true(jf_active(w->f, CBDT_OBJ_HOST, w->chost));
}

static void test_lease_keeps_a_second_janitor_out(void **state)
{
	struct world *w = *state;
	uint32_t jan2 = jf_host(w->f, "janitor2", CBDT_ROLE_BACKEND, NULL);
	uint32_t jan3 = jf_host(w->f, "janitor3", CBDT_ROLE_BACKEND, NULL);
	char log[512], want[64];
	uint64_t t0;
	int ret;

	jf_kill(w->f, CBDT_OBJ_HOST, w->chost);
	jf_kill(w->f, CBDT_OBJ_BLKDEV, w->b->id);
	jf_run(w->f, w->obs, JF_TIMEOUT_MS + 2 * JF_TICK_MS);
	assert_int_equal(jf_handlers_detach_closing(&w->h), 0);

	/* janitor3 is in the middle of a pass: janitor2 does nothing. */
	t0 = cbdt_now_ns(); /* before janitor3's last beat is seen */
	assert_int_equal(cbdt_janitor_lease_acquire(w->f->t, jan3, w->obs), 0);
	assert_int_equal(pass_logged(w->f, w->obs, jan2, log, sizeof(log)), 0);
	assert_string_equal(log, "");
	for (unsigned q = 0; q < w->b->queues; q++)
		assert_int_equal(jf_ctrl(w->f, w->b->segs[q])->client_state,
				 CBDT_CLIENT_OPEN);

	/* janitor3 dies holding it: after the timeout it is stolen. */
	jf_kill(w->f, CBDT_OBJ_HOST, jan3);
	jf_run(w->f, w->obs, JF_TIMEOUT_MS / 4);
	ret = pass_logged(w->f, w->obs, jan2, log, sizeof(log));
	if (jf_stalled(t0))
		skip();
	assert_int_equal(ret, 0);
	assert_true(jf_active(w->f, CBDT_OBJ_BLKDEV, w->b->id));
	jf_run(w->f, w->obs, JF_TIMEOUT_MS);
	assert_int_equal(pass_logged(w->f, w->obs, jan2, log, sizeof(log)), 1);
	snprintf(want, sizeof(want), "host %u;", jan3);
	assert_string_equal(log, want);
	assert_int_equal(jf_handlers_detach_closing(&w->h), 2);
	assert_true(pass_logged(w->f, w->obs, jan2, log, sizeof(log)) >= 4);
	assert_false(jf_active(w->f, CBDT_OBJ_BLKDEV, w->b->id));
	assert_false(jf_active(w->f, CBDT_OBJ_HOST, w->chost));
	assert_false(jf_active(w->f, CBDT_OBJ_HOST, jan3));
	/* A pass gives the lease back. */
	assert_int_equal(cbdt_janitor_lease_acquire(w->f->t, w->jan, w->obs),
			 0);
	cbdt_janitor_lease_release(w->f->t, w->jan);
}

static void test_orphaned_segment_after_grace(void **state)
{
	struct world *w = *state;
	struct cbdt_segment_rec stale = {
		.type = CBDT_SEG_CHANNEL,
		.blkdev_id = 7,
		.blkdev_owner = 0x12345601ULL,
		.backend_id = 0,
	};
	uint64_t o1, o2;
	char log[512], want[512];
	uint64_t t0;
	int s1, s2, ret;

	/* A mapper claimed a segment and died before writing anything, and
	 * another left a record behind that names a blkdev long gone. */
	s1 = cbdt_slot_claim(w->f->t, CBDT_OBJ_SEGMENT, -1, (uint16_t)w->chost,
			     &o1);
	s2 = cbdt_slot_claim(w->f->t, CBDT_OBJ_SEGMENT, -1, (uint16_t)w->chost,
			     &o2);
	assert_true(s1 >= 0 && s2 >= 0);
	assert_int_equal(cbdt_record_write(w->f->t, CBDT_OBJ_SEGMENT,
					   (uint32_t)s2, &stale, sizeof(stale)),
			 0);
	t0 = cbdt_now_ns(); /* before the segments' first sight */
	jf_run(w->f, w->obs, JF_TIMEOUT_MS / 4);
	ret = pass_logged(w->f, w->obs, w->jan, log, sizeof(log));
	if (jf_stalled(t0))
		skip();
	assert_int_equal(ret, 0);
	assert_true(jf_active(w->f, CBDT_OBJ_SEGMENT, (uint32_t)s1));
	assert_true(jf_active(w->f, CBDT_OBJ_SEGMENT, (uint32_t)s2));

	jf_run(w->f, w->obs, JF_TIMEOUT_MS);
	assert_int_equal(pass_logged(w->f, w->obs, w->jan, log, sizeof(log)),
			 2);
	snprintf(want, sizeof(want), "segment %d;segment %d;", s1, s2);
	assert_string_equal(log, want);
	/* The live mapping's segments stay. */
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 2);
	assert_true(jf_active(w->f, CBDT_OBJ_SEGMENT, w->b->segs[0]));
}

static void test_clear_refuses_alive_and_ignores_free(void **state)
{
	struct world *w = *state;
	struct cbdt *t = w->f->t;
	struct cbdt_blocker by;

	jf_run(w->f, w->obs, JF_TICK_MS);

	assert_int_equal(cbdt_host_clear(t, w->chost, w->obs, &by), -EBUSY);
	assert_int_equal(by.why, CBDT_BLOCK_ALIVE);
	assert_int_equal(by.type, CBDT_OBJ_HOST);
	assert_int_equal(by.id, w->chost);
	assert_int_equal(cbdt_backend_clear(t, w->be, w->obs, &by), -EBUSY);
	assert_int_equal(by.type, CBDT_OBJ_BACKEND);
	assert_int_equal(cbdt_blkdev_clear(t, w->b->id, w->obs, NULL), -EBUSY);
	assert_int_equal(cbdt_segment_clear(t, w->b->segs[0], w->obs, &by),
			 -EBUSY);
	assert_int_equal(by.why, CBDT_BLOCK_BELONGS);
	assert_int_equal(by.type, CBDT_OBJ_BLKDEV);
	assert_int_equal(by.id, w->b->id);
	assert_int_equal(cbdt_host_clear(t, 30, w->obs, NULL), 0);
	assert_int_equal(cbdt_blkdev_clear(t, 100, w->obs, NULL), 0);
	assert_int_equal(cbdt_host_clear(t, 4000, w->obs, NULL), -ERANGE);
	/* Refusals had no side effect on the channels. */
	for (unsigned q = 0; q < w->b->queues; q++)
		assert_int_equal(jf_ctrl(w->f, w->b->segs[q])->client_state,
				 CBDT_CLIENT_OPEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_alive_objects_never_cleared,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(
			test_new_objects_get_a_full_window, world_setup,
			world_teardown),
		cmocka_unit_test_setup_teardown(
			test_dead_client_segments_then_blkdev_then_host,
			world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(
			test_dead_backend_kept_while_a_live_blkdev_maps_it,
			world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_slow_backend_is_kept,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_dead_blkdev_of_live_host,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(
			test_lease_keeps_a_second_janitor_out, world_setup,
			world_teardown),
		cmocka_unit_test_setup_teardown(
			test_orphaned_segment_after_grace, world_setup,
			world_teardown),
		cmocka_unit_test_setup_teardown(
			test_clear_refuses_alive_and_ignores_free, world_setup,
			world_teardown),
	};

	log_init("test-janitor", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
