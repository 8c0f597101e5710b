/* Description: channel rings on one thread: init geometry and segment
 * record, open refusing bad control areas, ring wrap-around (also across
 * 2^32), full rings without overwrite, req_id mapping with out-of-order
 * frees, stale entries, entry and data crc mismatches, result sanitising
 * and handler crash recovery on reopen. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channel-fixture.h"

#define SEG	 CBDT_SEG_SIZE
#define DEV_SIZE (1ULL << 30)

static int setup_plain(void **state)
{
	*state = fx_new(0, 0, 0);
	return *state ? 0 : -1;
}

static int setup_small(void **state)
{
	*state = fx_new(0, 8, 8);
	return *state ? 0 : -1;
}

static int setup_crc(void **state)
{
	*state = fx_new(CBDT_F_ENTRY_CRC | CBDT_F_DATA_CRC, 8, 8);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

/* Submit a request of @op; data requests get an extent of @len bytes. */
static int submit(struct fx *f, uint16_t op, uint64_t req_id, uint32_t len,
		  struct cbdt_request *rq)
{
	int ret;

	memset(rq, 0, sizeof(*rq));
	rq->op = op;
	rq->req_id = req_id;
	rq->offset = req_id * 4096 % DEV_SIZE;
	if (op != CBDT_OP_FLUSH)
		rq->len = len;
	if (op == CBDT_OP_READ || op == CBDT_OP_WRITE) {
		rq->data_len = len;
		ret = cbdt_channel_data_alloc(f->c, len, &rq->data_off);
		if (ret)
			return ret;
		if (op == CBDT_OP_WRITE)
			fx_fill(cbdt_channel_data(f->c, rq->data_off), len,
				req_id);
	}
	ret = cbdt_channel_submit(f->c, rq);
	if (ret && rq->data_len)
		cbdt_channel_data_free(f->c, rq->data_off, rq->data_len);
	return ret;
}

/* Handler: take the next request, check it, complete it with @result. */
static void serve_one(struct fx *f, int result, struct cbdt_request *rq)
{
	assert_int_equal(cbdt_channel_peek(f->h, rq), 1);
	assert_int_equal(cbdt_channel_validate(f->h, rq, DEV_SIZE), 0);
	assert_int_equal(cbdt_channel_complete(f->h, rq, result), 0);
}

/* ---- init and geometry ---- */

static void test_init_writes_default_geometry(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *c = fx_ctrl(f);
	const struct cbdt_channel_geom *g = cbdt_channel_geom(f->h);
	struct cbdt_segment_rec rec;

	assert_int_equal(c->magic, CBDT_CHANNEL_MAGIC);
	assert_int_equal(c->version, CBDT_CHANNEL_VERSION);
	assert_int_equal(c->se_count, 256);
	assert_int_equal(c->ce_count, 256);
	assert_int_equal(c->se_off, CBDT_CTRL_SIZE);
	assert_int_equal(c->ce_off, CBDT_CTRL_SIZE + 256 * 64);
	assert_int_equal(c->data_off, 64 << 10);
	assert_int_equal(c->data_size, SEG - (64 << 10));
	assert_int_equal(c->sq_head, 0);
	assert_int_equal(c->cq_tail, 0);
	assert_int_equal(c->sq_tail, 0);
	assert_int_equal(c->cq_head, 0);
	assert_int_equal(c->client_state, CBDT_CLIENT_OPEN);
	assert_int_equal(c->handler_state, CBDT_HANDLER_ATTACHED);
	assert_int_equal(c->handler_owner, FX_BACKEND_OWNER);
	assert_int_equal(c->backend_id, 3);
	assert_int_equal(c->blkdev_id, 5);
	assert_int_equal(c->queue, 1);
	assert_int_equal(c->blkdev_owner, 0xabcdef);
	assert_int_equal(c->flags, 0);
	assert_int_equal(g->se_count, 256);
	assert_int_equal(g->data_size, c->data_size);
	assert_int_equal(cbdt_channel_seg_id(f->c), f->seg);

	assert_int_equal(cbdt_segment_read(f->t, f->seg, &rec), 0);
	assert_int_equal(rec.type, CBDT_SEG_CHANNEL);
	assert_int_equal(rec.queue, 1);
	assert_int_equal(rec.backend_id, 3);
	assert_int_equal(rec.blkdev_id, 5);
	assert_int_equal(rec.blkdev_owner, 0xabcdef);
	assert_int_equal(rec.backend_ident, 0x1122334455667788ULL);
}

static void test_init_takes_flags_and_counts(void **state)
{
	struct fx *f = *state; /* setup_crc: 8 entries, both crcs */
	struct cbdt_channel_ctrl *c = fx_ctrl(f);

	assert_int_equal(c->flags, CBDT_F_ENTRY_CRC | CBDT_F_DATA_CRC);
	assert_int_equal(c->se_count, 8);
	assert_int_equal(c->ce_count, 8);
	assert_int_equal(c->ce_off, CBDT_CTRL_SIZE + 8 * 64);
	assert_int_equal(c->data_off, 64 << 10);
}

static void test_init_rejects_bad_params(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_params p = {0};

	p.se_count = 3;
	assert_int_equal(cbdt_channel_init(f->t, f->seg, &p), -EINVAL);
	p.se_count = 8;
	p.ce_count = 12;
	assert_int_equal(cbdt_channel_init(f->t, f->seg, &p), -EINVAL);
	/* rings larger than the segment */
	p.se_count = 1U << 20;
	p.ce_count = 0;
	assert_int_equal(cbdt_channel_init(f->t, f->seg, &p), -EINVAL);
	p.se_count = 0;
	assert_int_equal(cbdt_channel_init(f->t, 1000000, &p), -ERANGE);
	/* big rings push the data area to the next 64 KiB boundary */
	p.se_count = 2048;
	assert_int_equal(cbdt_channel_init(f->t, f->seg, &p), 0);
	assert_int_equal(fx_ctrl(f)->data_off, 256 << 10);
	assert_int_equal(fx_ctrl(f)->data_size, SEG - (256 << 10));
}

static void test_open_refuses_bad_control_area(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *c = fx_ctrl(f);
	struct cbdt_channel *ch;

	c->se_count = 5;
	assert_int_equal(cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_HANDLER,
					   0, &ch),
			 -EINVAL);
	c->se_count = 256;
	c->data_size += CBDT_DATA_UNIT; /* past the segment end */
	assert_int_equal(cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_HANDLER,
					   0, &ch),
			 -ERANGE);
	c->data_size -= CBDT_DATA_UNIT;
	c->magic = 0;
	assert_int_equal(cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_CLIENT, 0,
					   &ch),
			 -EMEDIUMTYPE);
	c->magic = CBDT_CHANNEL_MAGIC;
	assert_int_equal(cbdt_channel_open(f->t, f->seg, 7, 0, &ch), -EINVAL);
	assert_int_equal(cbdt_channel_open(f->t, 99999, CBDT_CHANNEL_CLIENT, 0,
					   &ch),
			 -ERANGE);
	/* a client never starts on a channel with requests in flight */
	c->sq_head = 2;
	assert_int_equal(cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_CLIENT, 0,
					   &ch),
			 -EBUSY);
}

static void test_submit_refuses_bad_request(void **state)
{
	struct fx *f = *state;
	struct cbdt_request rq = {.op = CBDT_OP_WRITE,
				  .len = 4096,
				  .data_len = 4096,
				  .data_off = UINT32_MAX - 4095};
	struct cbdt_request hr;

	assert_int_equal(cbdt_channel_submit(f->c, &rq), -EINVAL);
	rq.op = 0;
	assert_int_equal(cbdt_channel_submit(f->c, &rq), -EINVAL);
	/* nothing reached the ring */
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 0);
	assert_int_equal(cbdt_channel_inflight(f->c), 0);
	/* each side's calls are refused on the other side's handle */
	assert_int_equal(cbdt_channel_peek(f->c, &hr), -EINVAL);
	rq.op = CBDT_OP_FLUSH;
	rq.len = rq.data_len = 0;
	assert_int_equal(cbdt_channel_submit(f->h, &rq), -EINVAL);
}

/* ---- rings ---- */

static void test_ring_wraps_around(void **state)
{
	struct fx *f = *state; /* 8 entries */
	struct cbdt_request rq, hr;
	struct cbdt_completion c;
	uint64_t next_sub = 0, next_reap = 0;
	unsigned seed = 1;

	while (next_reap < 10000) {
		unsigned batch = 1 + (unsigned)rand_r(&seed) % 8;

		for (unsigned i = 0; i < batch && next_sub < 10000; i++) {
			if (submit(f, CBDT_OP_WRITE, next_sub * 7 + 1,
				   1 + (uint32_t)rand_r(&seed) % 20000, &rq))
				break;
			assert_int_equal(rq.seq, next_sub);
			next_sub++;
		}
		while (cbdt_channel_peek(f->h, &hr) == 1) {
			assert_int_equal(
				cbdt_channel_validate(f->h, &hr, DEV_SIZE), 0);
			assert_true(
				fx_check(cbdt_channel_data(f->h, hr.data_off),
					 hr.len, hr.req_id));
			assert_int_equal(cbdt_channel_complete(f->h, &hr, 0),
					 0);
		}
		while (cbdt_channel_reap(f->c, &c) == 1) {
			assert_int_equal(c.seq, next_reap);
			assert_int_equal(c.req_id, next_reap * 7 + 1);
			assert_int_equal(c.result, 0);
			next_reap++;
		}
		/* FIFO here, so free in order; other tests shuffle */
		cbdt_channel_data_free(f->c, 0, fx_ctrl(f)->data_size);
	}
	assert_int_equal(fx_ctrl(f)->sq_head, 10000);
	assert_int_equal(fx_ctrl(f)->cq_tail, 10000);
	assert_int_equal(fx_ctrl(f)->sq_tail, 10000);
}

static void test_ring_indexes_wrap_at_2_32(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	const uint32_t start = UINT32_MAX - 20;
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	cbdt_channel_close(f->c);
	cbdt_channel_close(f->h);
	ctrl->sq_head = ctrl->cq_tail = ctrl->sq_tail = ctrl->cq_head = start;
	assert_int_equal(cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_CLIENT, 0,
					   &f->c),
			 0);
	assert_int_equal(cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_HANDLER,
					   0, &f->h),
			 0);
	for (uint32_t i = 0; i < 100; i++) {
		assert_int_equal(submit(f, CBDT_OP_READ, i, 512, &rq), 0);
		assert_int_equal(rq.seq, (uint64_t)start + i);
		assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
		assert_int_equal(hr.req_id, i);
		fx_fill(cbdt_channel_data(f->h, hr.data_off), 512, i + 1000);
		assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), 0);
		assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
		assert_int_equal(c.req_id, i);
		assert_int_equal(c.seq, (uint64_t)start + i);
		assert_true(fx_check(cbdt_channel_data(f->c, rq.data_off), 512,
				     i + 1000));
		cbdt_channel_data_free(f->c, rq.data_off, 512);
	}
	assert_int_equal(ctrl->sq_head, start + 100); /* wrapped */
	assert_true(ctrl->sq_head < start);
}

static void test_full_ring_eagain_without_overwrite(void **state)
{
	struct fx *f = *state; /* 8 entries */
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(submit(f, CBDT_OP_FLUSH, 100 + i, 0, &rq), 0);
	assert_int_equal(cbdt_channel_inflight(f->c), 8);
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 999, 0, &rq), -EAGAIN);
	assert_int_equal(submit(f, CBDT_OP_WRITE, 999, 4096, &rq), -EAGAIN);
	assert_int_equal(fx_ctrl(f)->sq_head, 8);
	/* every entry is still the one submitted there */
	for (uint32_t i = 0; i < 8; i++) {
		assert_int_equal(fx_se(f, i)->seq, i);
		assert_int_equal(fx_se(f, i)->req_id, 100 + i);
	}
	/* the failed WRITE gave its data extent back */
	uint32_t off;
	assert_int_equal(
		cbdt_channel_data_alloc(f->c, fx_ctrl(f)->data_size, &off), 0);
	cbdt_channel_data_free(f->c, off, fx_ctrl(f)->data_size);

	/* completed but not reaped still counts as in flight */
	serve_one(f, 0, &hr);
	assert_int_equal(hr.req_id, 100);
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 999, 0, &rq), -EAGAIN);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.req_id, 100);
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 108, 0, &rq), 0);
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 999, 0, &rq), -EAGAIN);
	for (uint64_t i = 1; i <= 8; i++) {
		serve_one(f, 0, &hr);
		assert_int_equal(hr.req_id, 100 + i);
		assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
		assert_int_equal(c.req_id, 100 + i);
	}
	assert_int_equal(cbdt_channel_reap(f->c, &c), 0);
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 0);
}

static void test_small_completion_ring_bounds_inflight(void **state)
{
	struct fx *f = *state;
	struct cbdt_request rq;

	cbdt_channel_close(f->c);
	cbdt_channel_close(f->h);
	f->c = f->h = NULL;
	assert_int_equal(fx_channel(f, 16, 4), 0);
	for (uint64_t i = 0; i < 4; i++)
		assert_int_equal(submit(f, CBDT_OP_FLUSH, i, 0, &rq), 0);
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 4, 0, &rq), -EAGAIN);
}

static void test_slot_reused_only_after_sq_tail(void **state)
{
	struct fx *f = *state; /* 8 entries */
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(submit(f, CBDT_OP_FLUSH, i, 0, &rq), 0);
	serve_one(f, 0, &hr);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	/* A handler that has published cq_head but not yet sq_tail may be
	 * recovering from the se at sq_tail: its slot must stay. */
	ctrl->sq_tail = 0;
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 8, 0, &rq), -EAGAIN);
	assert_int_equal(fx_se(f, 0)->req_id, 0);
	ctrl->sq_tail = 1;
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 8, 0, &rq), 0);
	assert_int_equal(fx_se(f, 0)->req_id, 8);
}

/* ---- out-of-order frees and the allocator ---- */

static void test_req_id_map_and_out_of_order_frees(void **state)
{
	struct fx *f = *state; /* 256 entries */
	enum {
		N = 10000,
		QD = 32
	};
	struct {
		bool used;
		uint32_t off, len;
		uint16_t op;
	} map[QD];
	struct cbdt_request rq, hr;
	struct cbdt_completion c;
	uint32_t done[QD], ndone = 0, submitted = 0, reaped = 0;
	unsigned seed = 7;

	memset(map, 0, sizeof(map));
	while (reaped < N) {
		/* submit into free req_id slots, in random order */
		for (int k = 0; k < QD && submitted < N; k++) {
			uint32_t id = (uint32_t)rand_r(&seed) % QD;
			uint32_t len =
				1 + (uint32_t)rand_r(&seed) % (128 << 10);
			uint16_t op = rand_r(&seed) & 1 ? CBDT_OP_READ :
							  CBDT_OP_WRITE;
			int ret;

			if (map[id].used)
				continue;
			ret = submit(f, op, id, len, &rq);
			if (ret == -ENOSPC)
				break;
			assert_int_equal(ret, 0);
			map[id] = (typeof(map[0])){true, rq.data_off, len, op};
			submitted++;
		}
		/* the handler serves some of them */
		for (int k = rand_r(&seed) % 8; k >= 0; k--) {
			if (cbdt_channel_peek(f->h, &hr) != 1)
				break;
			assert_int_equal(
				cbdt_channel_validate(f->h, &hr, DEV_SIZE), 0);
			if (hr.op == CBDT_OP_WRITE)
				assert_true(fx_check(
					cbdt_channel_data(f->h, hr.data_off),
					hr.len, hr.req_id));
			else
				fx_fill(cbdt_channel_data(f->h, hr.data_off),
					hr.len, hr.req_id + 50);
			assert_int_equal(cbdt_channel_complete(f->h, &hr, 0),
					 0);
		}
		while (cbdt_channel_reap(f->c, &c) == 1) {
			assert_true(c.req_id < QD);
			assert_true(map[c.req_id].used);
			assert_int_equal(c.result, 0);
			if (map[c.req_id].op == CBDT_OP_READ)
				assert_true(fx_check(
					cbdt_channel_data(f->c,
							  map[c.req_id].off),
					map[c.req_id].len, c.req_id + 50));
			done[ndone++] = (uint32_t)c.req_id;
			reaped++;
		}
		/* the upper layer finishes reaped requests in any order */
		while (ndone && (rand_r(&seed) % 3 || ndone == QD)) {
			uint32_t k = (uint32_t)rand_r(&seed) % ndone;
			uint32_t id = done[k];

			done[k] = done[--ndone];
			cbdt_channel_data_free(f->c, map[id].off, map[id].len);
			map[id].used = false;
		}
		if (submitted == reaped && ndone) { /* drain */
			while (ndone) {
				uint32_t id = done[--ndone];

				cbdt_channel_data_free(f->c, map[id].off,
						       map[id].len);
				map[id].used = false;
			}
		}
	}
	while (ndone) {
		uint32_t id = done[--ndone];

		cbdt_channel_data_free(f->c, map[id].off, map[id].len);
	}
	/* everything was given back: the whole area is one free extent */
	uint32_t off;
	assert_int_equal(
		cbdt_channel_data_alloc(f->c, fx_ctrl(f)->data_size, &off), 0);
	assert_int_equal(off, 0);
}

/* ---- stale and corrupted entries ---- */

static void test_stale_se_detected_and_failed(void **state)
{
	struct fx *f = *state; /* 8 entries, no crc */
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	assert_int_equal(submit(f, CBDT_OP_WRITE, 77, 4096, &rq), 0);
	/* what the slot held one lap earlier */
	fx_se(f, 0)->seq += 8;
	assert_int_equal(cbdt_channel_peek(f->h, &hr), -EBADMSG);
	assert_int_equal(hr.seq, 0); /* completed under the expected seq */
	assert_int_equal(cbdt_channel_complete(f->h, &hr, -EINVAL), 0);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.req_id, 77);
	assert_int_equal(c.result, -EINVAL);
	cbdt_channel_data_free(f->c, rq.data_off, 4096);
	/* the channel goes on */
	assert_int_equal(submit(f, CBDT_OP_WRITE, 78, 4096, &rq), 0);
	serve_one(f, 0, &hr);
	assert_int_equal(hr.seq, 1);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.req_id, 78);
	assert_int_equal(c.result, 0);
}

static void test_stale_or_foreign_ce_detected(void **state)
{
	struct fx *f = *state; /* 8 entries, no crc */
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	assert_int_equal(submit(f, CBDT_OP_FLUSH, 5, 0, &rq), 0);
	serve_one(f, 0, &hr);
	fx_ce(f, 0)->seq += 8;
	assert_int_equal(cbdt_channel_reap(f->c, &c), -EBADMSG);
	assert_int_equal(ctrl->cq_tail, 0); /* not consumed */
	fx_ce(f, 0)->seq -= 8;
	/* a genuine ce naming another req_id: that request fails */
	fx_ce(f, 0)->req_id = 6;
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.req_id, 5);
	assert_int_equal(c.result, -EIO);
	/* a cq_head running ahead of what we submitted */
	ctrl->cq_head = 2;
	assert_int_equal(cbdt_channel_reap(f->c, &c), -EBADMSG);
}

static void test_entry_crc_mismatch_detected(void **state)
{
	struct fx *f = *state; /* both crcs */
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	assert_int_equal(submit(f, CBDT_OP_WRITE, 1, 4096, &rq), 0);
	assert_int_not_equal(fx_se(f, 0)->crc, 0);
	fx_se(f, 0)->offset ^= 1ULL << 20; /* one bit flipped in flight */
	assert_int_equal(cbdt_channel_peek(f->h, &hr), -EBADMSG);
	fx_se(f, 0)->offset ^= 1ULL << 20;
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	assert_int_equal(cbdt_channel_validate(f->h, &hr, DEV_SIZE), 0);
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), 0);
	assert_int_not_equal(fx_ce(f, 0)->crc, 0);
	fx_ce(f, 0)->result = -EIO;
	assert_int_equal(cbdt_channel_reap(f->c, &c), -EBADMSG);
	fx_ce(f, 0)->result = 0;
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.result, 0);
}

static void test_without_crc_corruption_passes(void **state)
{
	/* The control experiment of the test above: without the flag, the
	 * same flip is not noticed, so the crc is what catches it. */
	struct fx *f = *state; /* no crc */
	struct cbdt_request rq, hr;

	assert_int_equal(submit(f, CBDT_OP_WRITE, 1, 4096, &rq), 0);
	assert_int_equal(fx_se(f, 0)->crc, 0);
	fx_se(f, 0)->offset ^= 1ULL << 20;
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	assert_int_equal(hr.offset, rq.offset ^ (1ULL << 20));
}

static void test_data_crc_mismatch_detected(void **state)
{
	struct fx *f = *state; /* both crcs */
	struct cbdt_request rq, hr;
	struct cbdt_completion c;
	uint8_t *d;

	/* WRITE: payload changed after submit */
	assert_int_equal(submit(f, CBDT_OP_WRITE, 1, 10000, &rq), 0);
	assert_int_equal(rq.data_crc,
			 cbdt_crc32c(0, cbdt_channel_data(f->c, rq.data_off),
				     10000));
	d = cbdt_channel_data(f->c, rq.data_off);
	d[9999] ^= 0x40;
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	assert_int_equal(cbdt_channel_validate(f->h, &hr, DEV_SIZE), -EBADMSG);
	d[9999] ^= 0x40;
	assert_int_equal(cbdt_channel_validate(f->h, &hr, DEV_SIZE), 0);
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), 0);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.result, 0);

	/* READ: payload changed after completion */
	assert_int_equal(submit(f, CBDT_OP_READ, 2, 8192, &rq), 0);
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	fx_fill(cbdt_channel_data(f->h, hr.data_off), 8192, 2);
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), 0);
	d = cbdt_channel_data(f->c, rq.data_off);
	d[0] ^= 1;
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.req_id, 2);
	assert_int_equal(c.result,
			 -EBADMSG); /* this request, not the channel */

	/* and an intact READ passes */
	assert_int_equal(submit(f, CBDT_OP_READ, 3, 8192, &rq), 0);
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	fx_fill(cbdt_channel_data(f->h, hr.data_off), 8192, 3);
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), 0);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.result, 0);
	assert_int_equal(c.data_crc,
			 cbdt_crc32c(0, cbdt_channel_data(f->c, rq.data_off),
				     8192));
}

static void test_results_are_sanitised(void **state)
{
	struct fx *f = *state;
	struct cbdt_request rq, hr;
	struct cbdt_completion c;
	const int in[] = {0, -EIO, -ENOSPC, 5, -4096, INT32_MIN};
	const int out[] = {0, -EIO, -ENOSPC, -EIO, -EIO, -EIO};

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_int_equal(submit(f, CBDT_OP_FLUSH, i, 0, &rq), 0);
		assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
		assert_int_equal(cbdt_channel_complete(f->h, &hr, in[i]), 0);
		/* a handler writing garbage directly is caught as well */
		if (i == 5)
			fx_ce(f, (uint32_t)i)->result = 77;
		assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
		assert_int_equal(c.result, out[i]);
	}
}

static void test_complete_requires_peek_and_room(void **state)
{
	struct fx *f = *state; /* 8 entries */
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	struct cbdt_request rq, hr;

	memset(&hr, 0, sizeof(hr));
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), -EINVAL);
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 1, 0, &rq), 0);
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	hr.seq += 1;
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), -EINVAL);
	hr.seq -= 1;
	/* a client that stopped reaping: no room to post */
	ctrl->cq_tail = (uint32_t)-8;
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), -EAGAIN);
	assert_int_equal(ctrl->cq_head, 0);
	ctrl->cq_tail = 0;
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), 0);
	/* once completed it cannot be completed again */
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), -EINVAL);
}

/* ---- handler restart ---- */

static void reopen_handler(struct fx *f)
{
	cbdt_channel_close(f->h);
	f->h = NULL;
	assert_int_equal(cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_HANDLER,
					   FX_BACKEND_OWNER + 1, &f->h),
			 0);
	assert_int_equal(fx_ctrl(f)->handler_owner, FX_BACKEND_OWNER + 1);
}

static void test_crash_after_cq_head_not_reexecuted(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(submit(f, CBDT_OP_FLUSH, 10 + i, 0, &rq), 0);
	serve_one(f, 0, &hr);
	serve_one(f, 0, &hr);
	/* died between the store of cq_head and the store of sq_tail */
	ctrl->sq_tail = 1;
	reopen_handler(f);
	assert_int_equal(ctrl->sq_tail, 2);
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	assert_int_equal(hr.req_id, 12);
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), 0);
	for (uint64_t i = 0; i < 3; i++) {
		assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
		assert_int_equal(c.req_id, 10 + i);
	}
	assert_int_equal(cbdt_channel_reap(f->c, &c), 0);
}

static void test_crash_before_cq_head_reexecuted(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	for (uint64_t i = 0; i < 2; i++)
		assert_int_equal(submit(f, CBDT_OP_FLUSH, 20 + i, 0, &rq), 0);
	serve_one(f, 0, &hr);
	serve_one(f, -EIO, &hr);
	/* died after writing the ce, before publishing cq_head */
	ctrl->sq_tail = 1;
	ctrl->cq_head = 1;
	reopen_handler(f);
	assert_int_equal(ctrl->sq_tail, 1);
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	assert_int_equal(hr.req_id, 21);
	assert_int_equal(cbdt_channel_complete(f->h, &hr, 0), 0);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.req_id, 20);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_int_equal(c.req_id, 21);
	assert_int_equal(c.result, 0); /* the re-executed one */
	assert_int_equal(cbdt_channel_reap(f->c, &c), 0);
}

static void test_clean_reopen_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	struct cbdt_request rq, hr;

	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(submit(f, CBDT_OP_FLUSH, i, 0, &rq), 0);
	serve_one(f, 0, &hr);
	reopen_handler(f);
	assert_int_equal(ctrl->sq_tail, 1);
	assert_int_equal(cbdt_channel_peek(f->h, &hr), 1);
	assert_int_equal(hr.req_id, 1);
	/* indexes that cannot come from any handler are refused */
	cbdt_channel_close(f->h);
	f->h = NULL;
	ctrl->cq_head = 5;
	assert_int_equal(cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_HANDLER,
					   0, &f->h),
			 -EBADMSG);
}

/*
 * Writeback loss detection: unflushed writes left by a handler of another
 * boot make the channel LOST for good; the same boot (a process restart,
 * page cache intact), a flush, or an unknown boot (zero) do not.
 */
static void test_unflushed_writes_of_another_boot_lose_the_channel(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	static const uint8_t boot_a[16] = {0xa}, boot_b[16] = {0xb},
			     boot_c[16] = {0xc};

	/* Fresh channel: nothing known about earlier handlers. */
	assert_false(cbdt_channel_handler_adopt(f->h, boot_a));
	assert_memory_equal(ctrl->handler_boot, boot_a, 16);
	cbdt_channel_handler_unflushed(f->h, true);
	assert_int_equal(ctrl->handler_flags, CBDT_HF_UNFLUSHED);
	/* kill -9 and restart on the same boot: the page cache survived. */
	reopen_handler(f);
	assert_false(cbdt_channel_handler_adopt(f->h, boot_a));
	assert_false(cbdt_channel_lost(f->h));
	/* A flush made everything durable: a reboot loses nothing. */
	cbdt_channel_handler_unflushed(f->h, true);
	cbdt_channel_handler_unflushed(f->h, false);
	assert_int_equal(ctrl->handler_flags, 0);
	reopen_handler(f);
	assert_false(cbdt_channel_handler_adopt(f->h, boot_b));
	/* Unflushed, then the host crashed: the next boot finds it lost,
	 * and so does every later one. */
	cbdt_channel_handler_unflushed(f->h, true);
	reopen_handler(f);
	assert_true(cbdt_channel_handler_adopt(f->h, boot_c));
	assert_true(cbdt_channel_lost(f->h));
	assert_int_equal(ctrl->handler_flags, CBDT_HF_LOST);
	cbdt_channel_handler_unflushed(f->h, false); /* keeps LOST */
	assert_true(cbdt_channel_lost(f->h));
	reopen_handler(f);
	assert_true(cbdt_channel_handler_adopt(f->h, boot_c));
	reopen_handler(f);
	assert_true(cbdt_channel_handler_adopt(f->h, boot_a));
}

/*
 * The PACK hint: said by the handler at attach, kept by the UNFLUSHED
 * updates, dropped by the next handler until it says so itself; the
 * client learns it with the completions it reaps.
 */
static void test_pack_hint_reaches_the_client_with_completions(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);
	static const uint8_t boot[16] = {0xa};
	struct cbdt_request rq, hr;
	struct cbdt_completion c;

	assert_false(cbdt_channel_handler_adopt(f->h, boot));
	cbdt_channel_handler_pack(f->h, true);
	assert_int_equal(ctrl->handler_flags, CBDT_HF_PACK);
	cbdt_channel_handler_unflushed(f->h, true);
	assert_int_equal(ctrl->handler_flags, CBDT_HF_PACK | CBDT_HF_UNFLUSHED);
	cbdt_channel_handler_unflushed(f->h, false);
	assert_int_equal(ctrl->handler_flags, CBDT_HF_PACK);
	/* nothing reaped yet: the client does not know */
	assert_false(cbdt_channel_packs(f->c));
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 1, 0, &rq), 0);
	serve_one(f, 0, &hr);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_true(cbdt_channel_packs(f->c));
	/* a new handler says nothing until it does */
	reopen_handler(f);
	assert_false(cbdt_channel_handler_adopt(f->h, boot));
	assert_int_equal(ctrl->handler_flags, 0);
	assert_int_equal(submit(f, CBDT_OP_FLUSH, 2, 0, &rq), 0);
	serve_one(f, 0, &hr);
	assert_int_equal(cbdt_channel_reap(f->c, &c), 1);
	assert_false(cbdt_channel_packs(f->c));
	cbdt_channel_handler_pack(f->h, true);
	cbdt_channel_handler_pack(f->h, false);
	assert_int_equal(ctrl->handler_flags, 0);
}

/* The client's QD1 hint: in its line of the control area, for the handler. */
static void test_lone_hint_reaches_the_handler(void **state)
{
	struct fx *f = *state;
	struct cbdt_channel_ctrl *ctrl = fx_ctrl(f);

	assert_false(cbdt_channel_lone(f->h));
	cbdt_channel_client_lone(f->c, true);
	assert_int_equal(ctrl->client_hints, CBDT_CH_LONE);
	assert_true(cbdt_channel_lone(f->h));
	cbdt_channel_client_lone(f->c, true);
	assert_true(cbdt_channel_lone(f->h));
	cbdt_channel_client_lone(f->c, false);
	assert_int_equal(ctrl->client_hints, 0);
	assert_false(cbdt_channel_lone(f->h));
}

static void test_close_and_detach_publish_states(void **state)
{
	struct fx *f = *state;

	assert_int_equal(cbdt_channel_client_state(f->h), CBDT_CLIENT_OPEN);
	cbdt_channel_client_close(f->c);
	assert_int_equal(cbdt_channel_client_state(f->h), CBDT_CLIENT_CLOSING);
	cbdt_channel_handler_detach(f->h);
	assert_int_equal(fx_ctrl(f)->handler_state, CBDT_HANDLER_DETACHED);
}

#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_init_writes_default_geometry, setup_plain),
		T(test_init_takes_flags_and_counts, setup_crc),
		T(test_init_rejects_bad_params, setup_plain),
		T(test_open_refuses_bad_control_area, setup_plain),
		T(test_submit_refuses_bad_request, setup_plain),
		T(test_ring_wraps_around, setup_small),
		T(test_ring_indexes_wrap_at_2_32, setup_crc),
		T(test_full_ring_eagain_without_overwrite, setup_small),
		T(test_small_completion_ring_bounds_inflight, setup_plain),
		T(test_slot_reused_only_after_sq_tail, setup_small),
		T(test_req_id_map_and_out_of_order_frees, setup_plain),
		T(test_stale_se_detected_and_failed, setup_small),
		T(test_stale_or_foreign_ce_detected, setup_small),
		T(test_entry_crc_mismatch_detected, setup_crc),
		T(test_without_crc_corruption_passes, setup_small),
		T(test_data_crc_mismatch_detected, setup_crc),
		T(test_results_are_sanitised, setup_small),
		T(test_complete_requires_peek_and_room, setup_small),
		T(test_crash_after_cq_head_not_reexecuted, setup_small),
		T(test_crash_before_cq_head_reexecuted, setup_small),
		T(test_clean_reopen_changes_nothing, setup_small),
		T(test_unflushed_writes_of_another_boot_lose_the_channel,
		  setup_small),
		T(test_pack_hint_reaches_the_client_with_completions,
		  setup_plain),
		T(test_lone_hint_reaches_the_handler, setup_plain),
		T(test_close_and_detach_publish_states, setup_small),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
