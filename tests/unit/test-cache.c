/* SPDX-License-Identifier: MIT */
/*
 * The pcache engine (backend/cache*.c) on a real transport file and a
 * real backing image, against a plain model of the backend's bytes:
 * random overlapping writes, reads, discards and zeroing, with the
 * writeback paused and running, across stops that leave the cache dirty
 * and replays; a full cache under sustained writes; handlers writing at
 * once; a corrupt cache refused untouched; a change of size; and the
 * rules that keep a dirty cache (janitor, format).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/cache.h"
#include "backend/cache-internal.h"
#include "cbdt-cache.h"
#include "fixture.h"
#include "log.h"
#include "backend/store.h"

#define NSEGS	     6U
#define DEV_SIZE     (32U << 20)
#define TRANSPORT_SZ ((uint64_t)(NSEGS + 6) * CBDT_SEG_SIZE)
#define IDENT	     0x1234abcdULL
#define MAX_IO	     (1U << 20)

struct fx {
	char tpath[TFX_PATH_LEN];
	struct cbdt *t;
	char ipath[64];
	struct store s;
	uint8_t *model;
	uint8_t *buf;
	struct cache_conf conf;
	struct cache *c;
	struct cache_head *h;
	unsigned seed;
};

static struct cache_owner fx_owner(struct fx *f)
{
	return (struct cache_owner){.t = f->t,
				    .host_id = 0,
				    .backend_id = 0,
				    .ident = IDENT,
				    .store = &f->s,
				    .name = "test"};
}

static int fx_open(struct fx *f)
{
	struct cache_owner o = fx_owner(f);
	int ret = cache_open(&o, &f->conf, &f->c);

	if (!ret && f->c)
		f->h = cache_head_new(f->c);
	return ret;
}

/* Stop without waiting for the writeback: what is dirty stays. */
static void fx_stop(struct fx *f, unsigned timeout_ms)
{
	cache_head_free(f->c, f->h);
	f->h = NULL;
	cache_close(f->c, timeout_ms);
	f->c = NULL;
}

static struct cbdt_cache_hdr *fx_hdr(struct fx *f)
{
	struct cbdt_cache_seg segs[NSEGS + 2];
	int n = cbdt_cache_find(f->t, IDENT, segs, NSEGS + 2);

	assert_true(n > 0);
	return cbdt_cache_hdr(f->t, segs[0].id);
}

static void fx_pause(struct fx *f, bool on)
{
	__atomic_store_n(&fx_hdr(f)->wb_pause, on ? 1U : 0U, __ATOMIC_RELEASE);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int fd;

	if (!f || tfx_transport_new(f->tpath, &f->t, TRANSPORT_SZ, 0))
		return -1;
	strcpy(f->ipath, "/dev/shm/cbd-unit-img-XXXXXX");
	fd = mkstemp(f->ipath);
	if (fd < 0 || ftruncate(fd, DEV_SIZE) < 0)
		return -1;
	close(fd);
	f->model = calloc(1, DEV_SIZE);
	f->buf = malloc(MAX_IO);
	if (!f->model || !f->buf || store_open(&f->s, f->ipath, 0))
		return -1;
	f->conf = (struct cache_conf){.size = NSEGS * (uint64_t)CBDT_SEG_SIZE,
				      .gc_percent = 70,
				      .data_crc = true,
				      .handlers = 1};
	f->seed = 12345;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->c)
		fx_stop(f, 0);
	store_close(&f->s);
	unlink(f->ipath);
	tfx_transport_free(f->tpath, &f->t);
	free(f->model);
	free(f->buf);
	free(f);
	return 0;
}

static uint32_t rnd(struct fx *f, uint32_t n)
{
	return (uint32_t)rand_r(&f->seed) % n;
}

/* A random sector-aligned range, mostly small, sometimes up to 1 MiB. */
static void rnd_range(struct fx *f, uint64_t *off, uint32_t *len)
{
	uint32_t max = rnd(f, 8) ? 64 : MAX_IO / 512;

	*len = (1 + rnd(f, max)) * 512;
	*off = (uint64_t)rnd(f, (DEV_SIZE - *len) / 512 + 1) * 512;
}

static void do_write(struct fx *f, uint64_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i += 4)
		*(uint32_t *)(f->buf + i) = (uint32_t)rand_r(&f->seed);
	assert_int_equal(cache_write(f->c, f->h, off, len, f->buf), 0);
	memcpy(f->model + off, f->buf, len);
}

static void write_random(struct fx *f, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t off;
		uint32_t len;

		rnd_range(f, &off, &len);
		do_write(f, off, len);
	}
}

static void check_range(struct fx *f, uint64_t off, uint32_t len)
{
	assert_int_equal(cache_read(f->c, off, len, f->buf), 0);
	if (memcmp(f->buf, f->model + off, len)) {
		for (uint32_t i = 0; i < len; i++)
			if (f->buf[i] != f->model[off + i])
				fail_msg("byte %lu differs",
					 (unsigned long)(off + i));
	}
}

static void check_all(struct fx *f)
{
	for (uint64_t off = 0; off < DEV_SIZE; off += MAX_IO)
		check_range(f, off, MAX_IO);
}

/* What is on the image itself (after a clean stop). */
static void check_image(struct fx *f)
{
	for (uint64_t off = 0; off < DEV_SIZE; off += MAX_IO) {
		assert_int_equal(store_read(&f->s, f->buf, off, MAX_IO), 0);
		assert_memory_equal(f->buf, f->model + off, MAX_IO);
	}
}

static void test_random_ops_and_replays(void **state)
{
	struct fx *f = *state;

	assert_int_equal(fx_open(f), 0);
	assert_non_null(f->c);
	for (int round = 0; round < 4; round++) {
		fx_pause(f, round % 2 == 0);
		for (int i = 0; i < 1500; i++) {
			uint32_t r = rnd(f, 20), len;
			uint64_t off;

			rnd_range(f, &off, &len);
			if (r < 12) {
				do_write(f, off, len);
			} else if (r < 18) {
				check_range(f, off, len);
			} else {
				assert_int_equal(cache_discard(f->c, off, len,
							       r == 18),
						 0);
				memset(f->model + off, 0, len);
			}
			if (rnd(f, 500) == 0)
				fx_pause(f, rnd(f, 2));
		}
		check_all(f);
		/* a stop that writes nothing back: the next start replays */
		fx_pause(f, true);
		write_random(f, 300);
		fx_stop(f, 0);
		assert_int_equal(fx_open(f), 0);
		assert_non_null(f->c);
		check_all(f);
	}
	fx_pause(f, false);
	fx_stop(f, 60000);
	/* a clean stop wrote everything back and gave the segments up */
	assert_int_equal(cbdt_cache_find(f->t, IDENT, NULL, 0), 0);
	check_image(f);
}

/* Writes far beyond the cache's size, writeback paused: back-pressure
 * makes room, nothing fails, and only what frees a segment goes to the
 * disk: the cache stays mostly dirty. */
static void full_cache(struct fx *f)
{
	uint64_t dirty;

	assert_int_equal(fx_open(f), 0);
	fx_pause(f, true);
	for (uint64_t done = 0; done < 4 * f->conf.size; done += MAX_IO) {
		uint64_t off = (uint64_t)rnd(f, DEV_SIZE / MAX_IO) * MAX_IO;

		do_write(f, off, MAX_IO);
	}
	check_all(f);
	fx_stop(f, 0);
	/* Kept dirty (a clean cache is released at the stop). */
	dirty = fx_hdr(f)->dirty;
	assert_true(dirty >= 2 * (uint64_t)CBDT_CACHE_AREA_SIZE);
	assert_int_equal(fx_open(f), 0);
	check_all(f);
	fx_pause(f, false);
	fx_stop(f, 60000);
	check_image(f);
}

static void test_full_cache(void **state)
{
	full_cache(*state);
}

/* GC's limit at all but one segment (90 % of 6): a writer that waits
 * still gets one freed, although the log's last one is free. */
static void test_full_cache_gc_limit(void **state)
{
	struct fx *f = *state;

	f->conf.gc_percent = 90;
	full_cache(f);
}

struct writer {
	struct fx *f;
	struct cache_head *h;
	uint64_t base, size;
	unsigned seed;
	uint8_t *buf;
	int bad;
};

/* One handler: its own head, its own quarter of the device. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;

	for (int i = 0; i < 1500 && !w->bad; i++) {
		uint32_t len = (1 + (uint32_t)rand_r(&w->seed) % 64) * 512;
		uint64_t off = w->base + (uint64_t)((uint32_t)rand_r(&w->seed) %
						    ((w->size - len) / 512)) *
						 512;

		if (rand_r(&w->seed) % 3) {
			for (uint32_t j = 0; j < len; j++)
				w->buf[j] = (uint8_t)rand_r(&w->seed);
			if (cache_write(w->f->c, w->h, off, len, w->buf))
				w->bad = 1;
			else
				memcpy(w->f->model + off, w->buf, len);
		} else if (cache_read(w->f->c, off, len, w->buf) ||
			   memcmp(w->buf, w->f->model + off, len)) {
			w->bad = 2;
		}
	}
	return NULL;
}

static void test_concurrent_handlers(void **state)
{
	struct fx *f = *state;
	struct writer w[4];
	pthread_t th[4];

	f->conf.handlers = 4;
	f->conf.size = 8 * (uint64_t)CBDT_SEG_SIZE;
	assert_int_equal(fx_open(f), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct writer){.f = f,
				       .h = cache_head_new(f->c),
				       .base = (uint64_t)i * (DEV_SIZE / 4),
				       .size = DEV_SIZE / 4,
				       .seed = 77u + (unsigned)i,
				       .buf = malloc(32768)};
		assert_non_null(w[i].h);
		assert_int_equal(
			pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].bad, 0);
		cache_head_free(f->c, w[i].h);
		free(w[i].buf);
	}
	check_all(f);
	fx_stop(f, 0);
	assert_int_equal(fx_open(f), 0);
	check_all(f);
	fx_stop(f, 60000);
	check_image(f);
}

/* A key whose data fails its crc: the start is refused, the cache left
 * as it was; once the byte is back, it replays. */
static void test_corrupt_data_refused(void **state)
{
	struct fx *f = *state;
	struct cbdt_cache_seg segs[NSEGS];
	uint8_t *p;

	assert_int_equal(fx_open(f), 0);
	fx_pause(f, true);
	do_write(f, 4096, 65536);
	fx_stop(f, 0);
	assert_int_equal(cbdt_cache_find(f->t, IDENT, segs, NSEGS), NSEGS);
	/* index 0 holds the log; the first data head is index 1 */
	p = cbdt_cache_area(f->t, segs[1].id) + 100;
	*p ^= 0xff;
	assert_int_equal(fx_open(f), -EBADMSG);
	assert_null(f->c);
	assert_int_equal(cbdt_cache_find(f->t, IDENT, segs, NSEGS), NSEGS);
	*p ^= 0xff;
	assert_int_equal(fx_open(f), 0);
	check_range(f, 0, 1 << 20);
}

/* Another size: the old cache is written back and given up first. */
static void test_resize(void **state)
{
	struct fx *f = *state;

	assert_int_equal(fx_open(f), 0);
	fx_pause(f, true);
	write_random(f, 40);
	fx_stop(f, 0);
	f->conf.size += CBDT_SEG_SIZE;
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(cache_size(f->c),
			 (NSEGS + 1) * (uint64_t)CBDT_CACHE_AREA_SIZE);
	check_image(f); /* all of it went to the disk on the way */
	check_all(f);
	/* no cache any more: the last one is written back and released */
	fx_stop(f, 0);
	f->conf.size = 0;
	assert_int_equal(fx_open(f), 0);
	assert_null(f->c);
	assert_int_equal(cbdt_cache_find(f->t, IDENT, NULL, 0), 0);
}

/* A dirty cache of a dead host survives the janitor and format; a clean
 * one goes, whole. */
static void test_dirty_cache_kept(void **state)
{
	struct fx *f = *state;
	struct cbdt_cache_seg segs[NSEGS];
	struct cbdt_observer *obs;
	struct cbdt_blocker by;
	struct cbdt_inuse busy;

	assert_int_equal(fx_open(f), 0);
	fx_pause(f, true);
	do_write(f, 0, 8192);
	fx_stop(f, 0);
	assert_int_equal(cbdt_cache_find(f->t, IDENT, segs, NSEGS), NSEGS);
	assert_int_equal(cbdt_cache_dirty(f->t, segs, NSEGS), 1);
	assert_int_equal(cbdt_observer_new(f->t, 1, &obs), 0);
	cbdt_observer_sample(obs);
	usleep(5000);
	cbdt_observer_sample(obs);
	for (uint32_t i = 0; i < NSEGS; i++) {
		assert_int_equal(cbdt_segment_clear(f->t, segs[i].id, obs, &by),
				 -EBUSY);
		assert_int_equal(by.why, CBDT_BLOCK_DIRTY);
	}
	assert_int_equal(cbdt_format(f->t, 0, CBDT_FORMAT_FORCE, &busy),
			 -EBUSY);
	assert_int_equal(busy.type, CBDT_OBJ_SEGMENT);
	assert_int_equal(busy.id, segs[0].id);

	/* written back (its backend came back), then left without a clean
	 * stop: clean, so one clear takes the whole cache */
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(cache_writeback(f->c, 60000), 0);
	cache_head_free(f->c, f->h);
	f->h = NULL;
	fx_pause(f, true);
	assert_int_equal(cbdt_cache_find(f->t, IDENT, segs, NSEGS), NSEGS);
	assert_int_equal(cbdt_cache_dirty(f->t, segs, NSEGS), 0);
	assert_int_equal(cbdt_segment_clear(f->t, segs[2].id, obs, &by), 0);
	assert_int_equal(cbdt_cache_find(f->t, IDENT, NULL, 0), 0);
	cbdt_observer_free(obs);
	/* the engine still holds the memory: let it go without a writeback
	 * of segments it no longer owns */
	f->h = cache_head_new(f->c);
}

/* A request as a handler hands it over. */
static int do_request(struct fx *f, uint16_t op, uint64_t off, uint32_t len,
		      void *data)
{
	struct cbdt_request rq = {.op = op, .offset = off, .len = len};

	return cache_request(f->c, f->h, &rq, data);
}

/* Writes, discards and zeroing that start and end inside sectors are
 * done on whole sectors, read around them; reads of any range. */
static void test_unaligned_requests(void **state)
{
	struct fx *f = *state;

	assert_int_equal(fx_open(f), 0);
	for (int i = 0; i < 2000; i++) {
		uint32_t len = 1 + rnd(f, 20000), r = rnd(f, 10);
		uint64_t off = rnd(f, DEV_SIZE - len);

		if (r < 5) {
			for (uint32_t j = 0; j < len; j++)
				f->buf[j] = (uint8_t)rand_r(&f->seed);
			assert_int_equal(do_request(f, CBDT_OP_WRITE, off, len,
						    f->buf),
					 0);
			memcpy(f->model + off, f->buf, len);
		} else if (r < 8) {
			assert_int_equal(do_request(f, CBDT_OP_READ, off, len,
						    f->buf),
					 0);
			assert_memory_equal(f->buf, f->model + off, len);
		} else {
			assert_int_equal(
				do_request(f,
					   r == 8 ? CBDT_OP_DISCARD :
						    CBDT_OP_WRITE_ZEROES,
					   off, len, NULL),
				0);
			memset(f->model + off, 0, len);
		}
	}
	/* the engine itself never logs what replay would refuse */
	assert_int_equal(cache_write(f->c, f->h, 100, 512, f->buf), -EINVAL);
	assert_int_equal(cache_discard(f->c, 512, 100, false), -EINVAL);
	fx_pause(f, true);
	fx_stop(f, 0);
	assert_int_equal(fx_open(f), 0);
	check_all(f);
	fx_stop(f, 60000);
	check_image(f);
}

/*
 * The writeback stops exactly at the end of the first key segment (its
 * tail then sits where the link to the next one goes), the log moves on
 * into the next segment, and the cache stops dirty: the replay starts at
 * that link and must keep the tail's segment for the log, or the first
 * new head takes it and the log is lost.
 */
static void test_tail_at_a_link(void **state)
{
	struct fx *f = *state;
	const uint32_t per_seg =
		(CBDT_CACHE_AREA_SIZE - CBDT_KSET_ALIGN) / CBDT_KSET_ALIGN;

	f->conf.data_crc = false;
	assert_int_equal(fx_open(f), 0);
	/* one 512-byte write is one 512-byte kset */
	for (uint32_t i = 0; i < per_seg; i++)
		do_write(f, (uint64_t)(i % (DEV_SIZE / 512)) * 512, 512);
	assert_int_equal(cache_writeback(f->c, 60000), 0);
	fx_pause(f, true);
	do_write(f, 0, 4096);
	fx_stop(f, 0);
	assert_int_equal(fx_open(f), 0);
	write_random(f, 50); /* new heads */
	assert_int_equal(cache_writeback(f->c, 60000), 0);
	check_all(f);
	fx_pause(f, false);
	fx_stop(f, 60000);
	check_image(f);
}

/*
 * A crash between the link that ends a key segment and the first kset of
 * the next one leaves a log that ends just past the link.  Its writeback
 * must still go all the way (the link is no error), the cache stop
 * clean, and the next kset go where the link points.
 */
static void test_head_just_past_a_link(void **state)
{
	struct fx *f = *state;
	const uint32_t per_seg =
		(CBDT_CACHE_AREA_SIZE - CBDT_KSET_ALIGN) / CBDT_KSET_ALIGN;
	struct cbdt_klog_pos head;
	uint8_t *lost;

	f->conf.data_crc = false;
	assert_int_equal(fx_open(f), 0);
	/* one 512-byte write is one 512-byte kset; the last 8 stay dirty */
	for (uint32_t i = 0; i < per_seg; i++) {
		if (i == per_seg - 8) {
			assert_int_equal(cache_writeback(f->c, 60000), 0);
			fx_pause(f, true);
		}
		do_write(f, (uint64_t)(i % (DEV_SIZE / 512)) * 512, 512);
	}
	/* The link and the first kset of the next segment.  It writes what
	 * the image holds already, so that losing it loses nothing. */
	assert_int_equal(do_request(f, CBDT_OP_WRITE, 1 << 20, 4096,
				    f->model + (1 << 20)),
			 0);
	head = f->c->head;
	assert_int_not_equal(head.seg, f->c->tail.seg);
	assert_int_equal(head.off, CBDT_KSET_ALIGN);
	lost = f->c->klog.seg[head.seg];
	fx_stop(f, 0);
	/* as if the host died before that kset was durable */
	memset(lost, 0, CBDT_KSET_ALIGN);

	assert_int_equal(fx_open(f), 0);
	assert_int_equal(f->c->head.seg, head.seg);
	assert_int_equal(f->c->head.off, 0);
	check_all(f);
	assert_int_equal(cache_writeback(f->c, 60000), 0);
	assert_int_equal(f->c->tail.seq, f->c->head.seq);
	/* the next kset goes where the link points */
	write_random(f, 20);
	assert_int_equal(cache_writeback(f->c, 60000), 0);
	check_all(f);
	fx_pause(f, false);
	fx_stop(f, 60000);
	check_image(f);
	/* stopped clean: released (it stayed dirty for ever before) */
	assert_int_equal(cbdt_cache_find(f->t, IDENT, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_ops_and_replays,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_cache_gc_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_cache, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_handlers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_data_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirty_cache_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unaligned_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tail_at_a_link, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_head_just_past_a_link,
						setup, teardown),
	};

	log_init("test-cache", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
