/* Description: mapping a backend from the client side: unknown backends,
 * read-only backends (EROFS), one writer per backend (EBUSY) while readers
 * coexist, queues clamped to the handler count, the records a map writes,
 * handlers that never attach (ETIMEDOUT, everything undone), running out of
 * segments (ENOSPC, undone), and unmap asking the handlers to detach. */
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

#include "janitor-fixture.h"

struct world {
	struct jf *f;
	uint32_t bhost, be, ro_be;
	uint64_t be_owner, ro_owner;
	uint32_t chost;
};

static int world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (!w || !(w->f = jf_new()))
		return -1;
	w->bhost = jf_host(w->f, "node-b", CBDT_ROLE_BACKEND, NULL);
	w->be = jf_backend(w->f, w->bhost, "disk0", 3, false, &w->be_owner);
	w->ro_be = jf_backend(w->f, w->bhost, "ro0", 2, true, &w->ro_owner);
	w->chost = jf_host(w->f, "client", CBDT_ROLE_CLIENT, NULL);
	if (w->ro_be == UINT32_MAX || w->chost == UINT32_MAX)
		return -1;
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	struct world *w = *state;

	jf_free(w->f);
	free(w);
	return 0;
}

static void unmap(struct world *w, struct cbdt_blkdev *b, struct jf_handlers *h)
{
	cbdt_blkdev_unmap(w->f->t, b, 50);
	jf_handlers_free(h);
}

static uint64_t lock_word(struct world *w, uint32_t backend)
{
	/* Pairs with the CAS of lock/unlock. */
	return smp_load_acquire(
		&cbdt_slot_get(w->f->t, CBDT_OBJ_BACKEND, backend)->hdr.lock);
}

static void test_unknown_backend_is_enoent(void **state)
{
	struct world *w = *state;
	struct cbdt_blkdev *b = NULL;
	struct jf_handlers h;

	assert_int_equal(jf_map(w->f, &h, w->chost, 50, 0, 1, false, &b),
			 -ENOENT);
	assert_int_equal(jf_map(w->f, &h, w->chost, 100000, 0, 1, true, &b),
			 -ENOENT);
	assert_null(b);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 0);
}

static void test_readonly_backend(void **state)
{
	struct world *w = *state;
	struct cbdt_blkdev *b = NULL;
	struct jf_handlers h;

	assert_int_equal(jf_map(w->f, &h, w->chost, w->ro_be, w->ro_owner, 1,
				false, &b),
			 -EROFS);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 0);
	assert_int_equal(jf_map(w->f, &h, w->chost, w->ro_be, w->ro_owner, 1,
				true, &b),
			 0);
	assert_true(b->ro);
	/* A read-only mapping takes no lock. */
	assert_int_equal(lock_word(w, w->ro_be), 0);
	unmap(w, b, &h);
}

static void test_one_writer_readers_coexist(void **state)
{
	struct world *w = *state;
	struct cbdt_blkdev *wr, *wr2 = NULL, *rd1, *rd2;
	struct jf_handlers h1, h2, h3, h4;

	assert_int_equal(jf_map(w->f, &h1, w->chost, w->be, w->be_owner, 1,
				false, &wr),
			 0);
	assert_int_equal(lock_word(w, w->be),
			 cbdt_lease_make(wr->id, CBDT_OWNER_GEN(wr->owner)));
	assert_int_equal(jf_map(w->f, &h2, w->chost, w->be, w->be_owner, 1,
				false, &wr2),
			 -EBUSY);
	assert_null(wr2);
	assert_int_equal(jf_map(w->f, &h3, w->chost, w->be, w->be_owner, 1,
				true, &rd1),
			 0);
	assert_int_equal(jf_map(w->f, &h4, w->chost, w->be, w->be_owner, 1,
				true, &rd2),
			 0);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 3);

	/* Once the writer is gone another one may come. */
	unmap(w, wr, &h1);
	assert_int_equal(lock_word(w, w->be), 0);
	assert_int_equal(jf_map(w->f, &h2, w->chost, w->be, w->be_owner, 1,
				false, &wr2),
			 0);
	unmap(w, wr2, &h2);
	unmap(w, rd1, &h3);
	unmap(w, rd2, &h4);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 0);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 0);
}

static void test_queues_clamped_to_handlers(void **state)
{
	struct world *w = *state;
	struct cbdt_blkdev *b;
	struct jf_handlers h;

	assert_int_equal(jf_map(w->f, &h, w->chost, w->be, w->be_owner, 8,
				false, &b),
			 0);
	assert_int_equal(b->queues, 3); /* the backend has 3 handlers */
	assert_int_equal(h.n, 3);
	unmap(w, b, &h);
	assert_int_equal(jf_map(w->f, &h, w->chost, w->be, w->be_owner, 0,
				false, &b),
			 0);
	assert_int_equal(b->queues, 1);
	unmap(w, b, &h);
}

static void test_records_describe_the_mapping(void **state)
{
	struct world *w = *state;
	struct cbdt_backend_rec brec;
	struct cbdt_blkdev_rec rec;
	struct cbdt_segment_rec srec;
	struct cbdt_blkdev *b;
	struct jf_handlers h;

	assert_int_equal(cbdt_backend_read(w->f->t, w->be, &brec), 0);
	assert_int_equal(jf_map(w->f, &h, w->chost, w->be, w->be_owner, 2,
				false, &b),
			 0);
	assert_int_equal(b->size, brec.size);
	assert_int_equal(b->backend_ident, brec.ident);
	assert_int_equal(CBDT_OWNER_HOST(b->owner), w->chost);

	assert_int_equal(cbdt_blkdev_read(w->f->t, b->id, &rec), 0);
	assert_int_equal(rec.host_id, w->chost);
	assert_int_equal(rec.backend_id, w->be);
	assert_int_equal(rec.queues, 2);
	assert_int_equal(rec.flags, 0);
	assert_int_equal(rec.backend_owner, w->be_owner);
	assert_int_equal(rec.backend_ident, brec.ident);
	for (unsigned q = 0; q < 2; q++) {
		struct cbdt_channel_ctrl *ctrl = jf_ctrl(w->f, b->segs[q]);

		assert_int_equal(rec.segs[q], b->segs[q]);
		assert_int_equal(cbdt_slot_owner(w->f->t, CBDT_OBJ_SEGMENT,
						 b->segs[q]),
				 b->seg_owners[q]);
		assert_int_equal(cbdt_segment_read(w->f->t, b->segs[q], &srec),
				 0);
		assert_int_equal(srec.type, CBDT_SEG_CHANNEL);
		assert_int_equal(srec.queue, q);
		assert_int_equal(srec.backend_id, w->be);
		assert_int_equal(srec.blkdev_id, b->id);
		assert_int_equal(srec.blkdev_owner, b->owner);
		assert_int_equal(srec.backend_ident, brec.ident);
		assert_int_equal(ctrl->client_state, CBDT_CLIENT_OPEN);
		assert_int_equal(ctrl->handler_state, CBDT_HANDLER_ATTACHED);
		assert_int_equal(ctrl->handler_owner, w->be_owner);
	}
	unmap(w, b, &h);
}

static void test_attach_timeout_undoes_everything(void **state)
{
	struct world *w = *state;
	struct cbdt_blkdev *b = NULL;
	uint64_t start = cbdt_now_ms(), took;

	/* Nobody serves the backend. */
	assert_int_equal(cbdt_blkdev_map(w->f->t, w->chost, w->be, 2, false,
					 150, &b),
			 -ETIMEDOUT);
	took = cbdt_now_ms() - start;
	printf("gave up after %llu ms\n", (unsigned long long)took);
	/* It waited for the attach timeout (and no wildly longer: a bound
	 * that only a timeout taken for seconds, not ms, exceeds). */
	assert_true(took >= 150 && took < TFX_DEADLINE_MS);
	assert_null(b);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 0);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 0);
	assert_int_equal(lock_word(w, w->be), 0);
}

static void test_out_of_segments_is_enospc(void **state)
{
	struct world *w = *state;
	struct cbdt_blkdev *b1, *b2 = NULL;
	struct jf_handlers h1, h2;
	uint32_t be2;
	uint64_t be2_owner = 0;

	be2 = jf_backend(w->f, w->bhost, "disk2", 8, false, &be2_owner);
	assert_int_equal(jf_map(w->f, &h1, w->chost, w->be, w->be_owner, 3,
				false, &b1),
			 0);
	/* 6 segments in all, 3 taken: 4 more do not fit. */
	assert_int_equal(jf_map(w->f, &h2, w->chost, be2, be2_owner, 4, false,
				&b2),
			 -ENOSPC);
	jf_handlers_free(&h2);
	assert_null(b2);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_SEGMENT), 3);
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 1);
	assert_int_equal(lock_word(w, be2), 0);
	unmap(w, b1, &h1);
}

struct detacher {
	struct jf_handlers *h;
	pthread_t thr;
	bool done;
};

/* A live backend: detaches each channel as soon as it sees CLOSING. */
static void *detacher_main(void *arg)
{
	struct detacher *d = arg;
	uint64_t start = cbdt_now_ms();

	while (jf_handlers_detach_closing(d->h) < d->h->n &&
	       cbdt_now_ms() - start < TFX_DEADLINE_MS)
		cbdt_sleep_ms(1);
	return NULL;
}

static void test_unmap_asks_handlers_to_detach(void **state)
{
	struct world *w = *state;
	struct cbdt_blkdev *b;
	struct jf_handlers h;
	struct detacher d = {.h = &h};
	uint32_t segs[2];
	uint64_t start, took;

	assert_int_equal(jf_map(w->f, &h, w->chost, w->be, w->be_owner, 2,
				false, &b),
			 0);
	segs[0] = b->segs[0];
	segs[1] = b->segs[1];
	pthread_create(&d.thr, NULL, detacher_main, &d);
	start = cbdt_now_ms();
	cbdt_blkdev_unmap(w->f->t, b, 2 * TFX_DEADLINE_MS);
	took = cbdt_now_ms() - start;
	pthread_join(d.thr, NULL);
	printf("unmap took %llu ms\n", (unsigned long long)took);
	/* It waited for the detach, not for the timeout. */
	assert_true(took < TFX_DEADLINE_MS);
	for (unsigned q = 0; q < 2; q++) {
		assert_int_equal(jf_ctrl(w->f, segs[q])->handler_state,
				 CBDT_HANDLER_DETACHED);
		assert_false(jf_active(w->f, CBDT_OBJ_SEGMENT, segs[q]));
	}
	assert_int_equal(jf_count_active(w->f, CBDT_OBJ_BLKDEV), 0);
	assert_int_equal(lock_word(w, w->be), 0);
}

/*
 * A janitor cleared a stalled client's mapping and another host re-claimed
 * the segment and the blkdev slot: the late unmap must leave them alone
 * (no CLOSING request, no heartbeat, no release).
 */
static void test_unmap_leaves_reclaimed_slots_alone(void **state)
{
	struct world *w = *state;
	struct cbdt *t = w->f->t;
	struct cbdt_blkdev *b;
	struct jf_handlers h;
	uint64_t seg_owner, bd_owner, hb;
	uint32_t seg, bd;

	assert_int_equal(jf_map(w->f, &h, w->chost, w->be, w->be_owner, 1,
				false, &b),
			 0);
	seg = b->segs[0];
	bd = b->id;
	/* What a janitor does, then another host's claims. */
	assert_int_equal(cbdt_slot_release(t, CBDT_OBJ_SEGMENT, seg,
					   b->seg_owners[0]),
			 0);
	assert_int_equal(cbdt_slot_release(t, CBDT_OBJ_BLKDEV, bd, b->owner),
			 0);
	cbdt_backend_unlock(t, w->be, bd, b->owner);
	assert_int_equal(cbdt_slot_claim(t, CBDT_OBJ_SEGMENT, (int)seg,
					 (uint16_t)w->bhost, &seg_owner),
			 (int)seg);
	assert_int_equal(cbdt_slot_claim(t, CBDT_OBJ_BLKDEV, (int)bd,
					 (uint16_t)w->bhost, &bd_owner),
			 (int)bd);
	jf_ctrl(w->f, seg)->client_state = CBDT_CLIENT_OPEN;
	jf_ctrl(w->f, seg)->handler_state = CBDT_HANDLER_ATTACHED;
	hb = cbdt_slot_heartbeat_read(t, CBDT_OBJ_BLKDEV, bd);

	cbdt_blkdev_unmap(t, b, 200);
	jf_handlers_free(&h);

	assert_int_equal(jf_ctrl(w->f, seg)->client_state, CBDT_CLIENT_OPEN);
	assert_int_equal(cbdt_slot_owner(t, CBDT_OBJ_SEGMENT, seg), seg_owner);
	assert_int_equal(cbdt_slot_owner(t, CBDT_OBJ_BLKDEV, bd), bd_owner);
	assert_int_equal(cbdt_slot_heartbeat_read(t, CBDT_OBJ_BLKDEV, bd), hb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unknown_backend_is_enoent,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_readonly_backend,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_one_writer_readers_coexist,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_queues_clamped_to_handlers,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(
			test_records_describe_the_mapping, world_setup,
			world_teardown),
		cmocka_unit_test_setup_teardown(
			test_attach_timeout_undoes_everything, world_setup,
			world_teardown),
		cmocka_unit_test_setup_teardown(test_out_of_segments_is_enospc,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(
			test_unmap_asks_handlers_to_detach, world_setup,
			world_teardown),
		cmocka_unit_test_setup_teardown(
			test_unmap_leaves_reclaimed_slots_alone, world_setup,
			world_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
