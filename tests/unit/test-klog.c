/* Description: the pcache key log (transport/klog.c): appends that move
 * on to the next segment through a link kset, -ENOSPC when no segment is
 * given, replay of what was written (keys in order, the position where
 * the writer goes on), a log cut at every sector of its writes (replay
 * finds exactly the ksets durable before the cut, over an older log's
 * leftovers), and a link to a segment reused since (replay stops). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cbdt-cache.h"
#include "layout.h"

#define NSEGS	 6U /* the log uses 0-3; data keys name 5 */
#define SEG_SIZE 8192U
#define IDENT	 0x5eedULL
#define WRITES	 256

static uint8_t mem[NSEGS][SEG_SIZE] __attribute__((aligned(4096)));
static uint8_t *segs[NSEGS] = {mem[0], mem[1], mem[2], mem[3], mem[4], mem[5]};
static uint32_t gens[NSEGS];

/* Every persist, in order: what a crash may cut. */
static struct {
	unsigned n;
	const uint8_t *p[WRITES];
	size_t len[WRITES];
} wr;

static void rec_persist(const void *p, size_t len)
{
	assert_true(wr.n < WRITES);
	wr.p[wr.n] = p;
	wr.len[wr.n++] = len;
}

static struct cbdt_klog_area area = {
	.seg = segs,
	.gens = gens,
	.nsegs = NSEGS,
	.seg_size = SEG_SIZE,
	.backend_ident = IDENT,
	.persist = rec_persist,
};

static struct cbdt_kset_ctx ctx = {
	.backend_ident = IDENT,
	.backend_size = 1ULL << 30,
	.nsegs = NSEGS,
	.seg_data_size = 16U << 20,
	.gens = gens,
};

static int setup(void **state)
{
	memset(mem, 0xa5, sizeof(mem)); /* not a log */
	for (unsigned i = 0; i < NSEGS; i++)
		gens[i] = 10 + i;
	wr.n = 0;
	return 0;
}

/* Keys seen by a replay: their offsets, in order. */
static struct {
	unsigned n;
	uint64_t off[4096];
} seen;

static int rec_key(void *arg, const struct cbdt_cache_key *k)
{
	assert_true(seen.n < 4096);
	seen.off[seen.n++] = k->off;
	return 0;
}

static struct cbdt_cache_key data_key(uint64_t i)
{
	return (struct cbdt_cache_key){.off = i * 4096,
				       .len = 4096,
				       .seg = NSEGS - 1,
				       .seg_off = (uint32_t)(i * 4096),
				       .seg_gen = gens[NSEGS - 1]};
}

/* Append ksets of 1..20 keys (numbered from 0) through segments 0, 1,
 * 2, 3: returns how many keys, *@per[k] the keys of kset k. */
static unsigned write_log(struct cbdt_klog_pos *pos, unsigned nksets,
			  unsigned *per)
{
	unsigned next = 0, seg = 0;

	for (unsigned k = 0; k < nksets; k++) {
		struct cbdt_cache_key keys[20];
		unsigned n = 1 + (k * 7) % 20;
		int ret;

		for (unsigned i = 0; i < n; i++)
			keys[i] = data_key(next + i);
		ret = cbdt_klog_append(&area, pos, keys, n, UINT32_MAX);
		if (ret == -ENOSPC)
			ret = cbdt_klog_append(&area, pos, keys, n, ++seg);
		assert_int_equal(ret, 0);
		per[k] = n;
		next += n;
	}
	return next;
}

static void test_append_and_replay(void **state)
{
	struct cbdt_klog_pos pos = {.seg = 0, .off = 0, .seq = 1}, end, r;
	unsigned per[24], n = write_log(&pos, 24, per);

	end = pos;
	assert_true(pos.seg >= 2); /* it went through links */
	r = (struct cbdt_klog_pos){.seg = 0, .off = 0, .seq = 1};
	seen.n = 0;
	assert_int_equal(cbdt_klog_replay(&area, &r, &ctx, rec_key, NULL), 0);
	assert_int_equal(seen.n, n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(seen.off[i], i * 4096ULL);
	assert_memory_equal(&r, &end, sizeof(r));
	/* the writer goes on where replay stopped, and replay finds that too */
	struct cbdt_cache_key k = data_key(n);
	assert_int_equal(cbdt_klog_append(&area, &r, &k, 1, 3), 0);
	r = (struct cbdt_klog_pos){.seg = 0, .off = 0, .seq = 1};
	seen.n = 0;
	assert_int_equal(cbdt_klog_replay(&area, &r, &ctx, rec_key, NULL), 0);
	assert_int_equal(seen.n, n + 1);
}

static void test_needs_a_segment_and_bad_calls(void **state)
{
	struct cbdt_klog_pos pos = {.seg = 1, .off = SEG_SIZE - 1024, .seq = 7};
	struct cbdt_cache_key keys[20];

	for (unsigned i = 0; i < 20; i++)
		keys[i] = data_key(i);
	/* 20 keys are 704 bytes, 1024 with the link's room: no fit */
	assert_int_equal(cbdt_klog_append(&area, &pos, keys, 20, UINT32_MAX),
			 -ENOSPC);
	assert_int_equal(cbdt_klog_append(&area, &pos, keys, 20, 1), -EINVAL);
	assert_int_equal(cbdt_klog_append(&area, &pos, keys, 20, NSEGS),
			 -EINVAL);
	assert_int_equal(pos.seq, 7); /* nothing written */
	assert_int_equal(wr.n, 0);
	assert_int_equal(cbdt_klog_append(&area, &pos, keys, 20, 2), 0);
	assert_int_equal(pos.seg, 2);
	assert_int_equal(pos.seq, 9); /* the link, then the kset */
	pos.off = 100;
	assert_int_equal(cbdt_klog_append(&area, &pos, keys, 1, UINT32_MAX),
			 -EINVAL);
	/* an empty log: nothing, and the position stays */
	struct cbdt_klog_pos r = {.seg = 3, .off = 0, .seq = 1};
	seen.n = 0;
	assert_int_equal(cbdt_klog_replay(&area, &r, &ctx, rec_key, NULL), 0);
	assert_int_equal(seen.n, 0);
	assert_int_equal(r.off, 0);
}

/* A crash after @cut bytes of the persisted writes (sector granularity):
 * the whole writes before, the first sectors of the one it cuts. */
static void crash_image(uint8_t (*img)[SEG_SIZE],
			const uint8_t (*old)[SEG_SIZE],
			const uint8_t (*full)[SEG_SIZE], size_t cut)
{
	memcpy(img, old, sizeof(mem));
	for (unsigned w = 0; w < wr.n && cut; w++) {
		size_t off = (size_t)(wr.p[w] - &mem[0][0]);
		size_t n = wr.len[w] < cut ? wr.len[w] : cut;

		memcpy(&img[0][0] + off, &full[0][0] + off, n);
		cut -= n;
	}
}

static void test_every_cut(void **state)
{
	static uint8_t old[NSEGS][SEG_SIZE], full[NSEGS][SEG_SIZE];
	struct cbdt_klog_pos pos = {.seg = 0, .off = 0, .seq = 1};
	unsigned per[24];
	size_t total = 0;

	/* the log's segments held an older log of this backend, in their
	 * former generations, naming data still valid (segment 5) */
	for (unsigned i = 0; i < 4; i++)
		gens[i] = 3 + i;
	write_log(&pos, 24, per);
	memcpy(old, mem, sizeof(mem));
	for (unsigned i = 0; i < NSEGS; i++)
		gens[i] = 10 + i;
	memcpy(mem, old, sizeof(mem));
	wr.n = 0;
	pos = (struct cbdt_klog_pos){.seg = 0, .off = 0, .seq = 1};
	write_log(&pos, 24, per);
	memcpy(full, mem, sizeof(mem));
	for (unsigned w = 0; w < wr.n; w++)
		total += wr.len[w];

	for (size_t cut = 0; cut <= total; cut += CBDT_SECTOR_SIZE) {
		struct cbdt_klog_pos r = {.seg = 0, .off = 0, .seq = 1};
		unsigned keys = 0, maybe = 0, k = 0;
		size_t done = 0;

		crash_image(mem, old, full, cut);
		/*
		 * The keys of the ksets whose write ended by the cut; the one
		 * it cuts may pass too, when the old bytes behind the cut are
		 * what it was writing (the old log held the same keys there):
		 * complete, then, if never acknowledged.
		 */
		for (unsigned w = 0; w < wr.n; w++) {
			const struct cbdt_cache_kset *ks =
				(const void *)(&full[0][0] +
					       (wr.p[w] - &mem[0][0]));
			bool link = ks->flags & CBDT_KSET_NEXT_SEG;

			if (done + wr.len[w] > cut) {
				if (done < cut && !link)
					maybe = per[k];
				break;
			}
			done += wr.len[w];
			if (!link)
				keys += per[k++];
		}
		seen.n = 0;
		assert_int_equal(
			cbdt_klog_replay(&area, &r, &ctx, rec_key, NULL), 0);
		if (seen.n != keys && seen.n != keys + maybe)
			fail_msg(
				"cut at %zu of %zu: %u keys replayed, %u durable (+%u)",
				cut, total, seen.n, keys, maybe);
		for (unsigned i = 0; i < seen.n; i++)
			assert_int_equal(seen.off[i], i * 4096ULL);
	}
}

/* GC reused segment 2 after the log linked to it: replay stops there. */
static void test_link_to_a_reused_segment(void **state)
{
	struct cbdt_klog_pos pos = {.seg = 0, .off = 0, .seq = 1}, r;
	unsigned per[24], before = 0;

	write_log(&pos, 24, per);
	for (unsigned w = 0, k = 0; w < wr.n; w++) {
		const struct cbdt_cache_kset *ks = (const void *)wr.p[w];

		if (ks->flags & CBDT_KSET_NEXT_SEG) {
			if (ks->next_seg == 2)
				break;
		} else {
			before += per[k++];
		}
	}
	gens[2]++;
	r = (struct cbdt_klog_pos){.seg = 0, .off = 0, .seq = 1};
	seen.n = 0;
	assert_int_equal(cbdt_klog_replay(&area, &r, &ctx, rec_key, NULL), 0);
	assert_int_equal(seen.n, before);
	assert_int_equal(r.seg, 1); /* at the link: the writer goes on there */
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup(fn, setup)
	const struct CMUnitTest tests[] = {
		T(test_append_and_replay),
		T(test_needs_a_segment_and_bad_calls),
		T(test_every_cut),
		T(test_link_to_a_reused_segment),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
