/* Description: the pcache index (backend/cache-index.c): overlapping
 * writes resolved by log order (a newer extent trims, splits or swallows
 * older ones), removal of ranges, lookups clipped to their range, and
 * dropping a segment; then 20k random inserts, removals and segment
 * drops checked after each step against a plain per-sector model. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/cache-index.h"

#define SECT	   512U
#define NSECT	   2048U /* a 1 MiB backend */
#define PIECES_MAX 4096

struct pieces {
	unsigned n;
	struct cache_ext p[PIECES_MAX];
};

static int collect(void *arg, const struct cache_ext *e)
{
	struct pieces *ps = arg;

	assert_true(ps->n < PIECES_MAX);
	ps->p[ps->n++] = *e;
	return 0;
}

static void lookup(struct cache_index *ix, uint64_t off, uint64_t len,
		   struct pieces *ps)
{
	ps->n = 0;
	assert_int_equal(cache_index_lookup(ix, off, len, collect, ps), 0);
}

static struct cache_ext ext(uint64_t off, uint32_t len, uint32_t seg,
			    uint32_t seg_off)
{
	return (struct cache_ext){.off = off,
				  .len = len,
				  .seg = seg,
				  .seg_off = seg_off,
				  .seg_gen = 1};
}

static void expect(const struct cache_ext *p, uint64_t off, uint32_t len,
		   uint32_t seg, uint32_t seg_off)
{
	assert_int_equal(p->off, off);
	assert_int_equal(p->len, len);
	assert_int_equal(p->seg, seg);
	assert_int_equal(p->seg_off, seg_off);
}

static void test_overlaps_resolve_by_order(void **state)
{
	struct cache_index *ix = cache_index_new();
	struct pieces ps;
	struct cache_ext e;

	assert_non_null(ix);
	e = ext(4096, 8192, 1, 0); /* [4k, 12k) in segment 1 */
	assert_int_equal(cache_index_insert(ix, &e), 0);
	e = ext(8192, 8192, 2, 100); /* [8k, 16k): trims the first's end */
	assert_int_equal(cache_index_insert(ix, &e), 0);
	e = ext(0, 6144, 3, 0); /* [0, 6k): trims the first's start */
	assert_int_equal(cache_index_insert(ix, &e), 0);
	lookup(ix, 0, 1 << 20, &ps);
	assert_int_equal(ps.n, 3);
	expect(&ps.p[0], 0, 6144, 3, 0);
	expect(&ps.p[1], 6144, 2048, 1, 2048); /* what is left of the first */
	expect(&ps.p[2], 8192, 8192, 2, 100);
	assert_int_equal(cache_index_bytes(ix), 16384);

	/* inside one extent: it is split in two around the new one */
	e = ext(9216, 1024, 4, 0);
	assert_int_equal(cache_index_insert(ix, &e), 0);
	lookup(ix, 8192, 8192, &ps);
	assert_int_equal(ps.n, 3);
	expect(&ps.p[0], 8192, 1024, 2, 100);
	expect(&ps.p[1], 9216, 1024, 4, 0);
	expect(&ps.p[2], 10240, 6144, 2, 100 + 2048);
	assert_int_equal(cache_index_count(ix), 5);

	/* covering everything: one extent left */
	e = ext(0, 32768, 5, 0);
	assert_int_equal(cache_index_insert(ix, &e), 0);
	assert_int_equal(cache_index_count(ix), 1);
	assert_int_equal(cache_index_bytes(ix), 32768);
	cache_index_free(ix);
}

static void test_remove_and_clipped_lookup(void **state)
{
	struct cache_index *ix = cache_index_new();
	struct pieces ps;
	struct cache_ext e = ext(0, 65536, 1, 4096);

	assert_int_equal(cache_index_insert(ix, &e), 0);
	assert_int_equal(cache_index_remove(ix, 4096, 8192), 0); /* a hole */
	assert_int_equal(cache_index_count(ix), 2);
	assert_int_equal(cache_index_bytes(ix), 65536 - 8192);
	lookup(ix, 2048, 16384, &ps); /* clipped at both ends */
	assert_int_equal(ps.n, 2);
	expect(&ps.p[0], 2048, 2048, 1, 4096 + 2048);
	expect(&ps.p[1], 12288, 6144, 1, 4096 + 12288);
	lookup(ix, 4096, 8192, &ps); /* only the hole: nothing cached */
	assert_int_equal(ps.n, 0);
	lookup(ix, 1 << 20, 4096, &ps); /* past the end */
	assert_int_equal(ps.n, 0);
	lookup(ix, 0, 0, &ps);
	assert_int_equal(ps.n, 0);
	/* removing what is not there changes nothing */
	assert_int_equal(cache_index_remove(ix, 1 << 20, 4096), 0);
	assert_int_equal(cache_index_bytes(ix), 65536 - 8192);
	/* touching extents stay apart: no merge of unrelated data */
	e = ext(65536, 512, 1, 4096 + 65536);
	assert_int_equal(cache_index_insert(ix, &e), 0);
	assert_int_equal(cache_index_count(ix), 3);
	cache_index_free(ix);
}

static int stop_at_second(void *arg, const struct cache_ext *e)
{
	return ++*(int *)arg == 2 ? 42 : 0;
}

static void test_lookup_stops_when_asked_and_drop_seg(void **state)
{
	struct cache_index *ix = cache_index_new();
	struct cache_ext e;
	struct pieces ps;
	int calls = 0;

	for (uint32_t i = 0; i < 8; i++) {
		e = ext(i * 4096ULL, 4096, i % 2, i * 4096);
		assert_int_equal(cache_index_insert(ix, &e), 0);
	}
	assert_int_equal(
		cache_index_lookup(ix, 0, 1 << 20, stop_at_second, &calls), 42);
	assert_int_equal(calls, 2);
	assert_int_equal(cache_index_drop_seg(ix, 1), 4);
	assert_int_equal(cache_index_drop_seg(ix, 1), 0);
	lookup(ix, 0, 1 << 20, &ps);
	assert_int_equal(ps.n, 4);
	for (unsigned i = 0; i < ps.n; i++)
		assert_int_equal(ps.p[i].seg, 0);
	assert_int_equal(cache_index_bytes(ix), 4 * 4096);
	cache_index_free(ix);
}

/* ---- against a model -------------------------------------------------- */

/* Per sector: 0 (on the disk) or 1 + seg, and where in it. */
struct model {
	uint32_t seg[NSECT];
	uint32_t seg_off[NSECT];
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void model_check(struct cache_index *ix, const struct model *m,
			uint64_t off, uint64_t len)
{
	static struct pieces ps;
	uint64_t at = off, bytes = 0;

	lookup(ix, off, len, &ps);
	for (unsigned i = 0; i < ps.n; i++) {
		const struct cache_ext *p = &ps.p[i];

		assert_true(p->len > 0 && p->off >= at &&
			    p->off + p->len <= off + len);
		for (; at < p->off; at += SECT) /* a hole: on the disk */
			assert_int_equal(m->seg[at / SECT], 0);
		for (uint32_t b = 0; b < p->len; b += SECT, at += SECT) {
			assert_int_equal(m->seg[at / SECT], p->seg + 1);
			assert_int_equal(m->seg_off[at / SECT], p->seg_off + b);
		}
	}
	for (; at < off + len; at += SECT)
		assert_int_equal(m->seg[at / SECT], 0);
	for (unsigned i = 0; i < NSECT; i++)
		bytes += m->seg[i] ? SECT : 0;
	assert_int_equal(cache_index_bytes(ix), bytes);
}

static void test_random_against_a_model(void **state)
{
	struct cache_index *ix = cache_index_new();
	struct model *m = calloc(1, sizeof(*m));
	uint64_t s = 0x1234567887654321ULL;
	uint32_t next_off = 0;

	assert_non_null(ix);
	assert_non_null(m);
	for (unsigned step = 0; step < 20000; step++) {
		uint32_t a = (uint32_t)(rnd(&s) % NSECT);
		uint32_t n = 1 + (uint32_t)(rnd(&s) % (rnd(&s) % 8 ? 16 : 512));
		unsigned what = (unsigned)(rnd(&s) % 100);

		if (a + n > NSECT)
			n = NSECT - a;
		if (what < 80) {
			struct cache_ext e = ext((uint64_t)a * SECT, n * SECT,
						 (uint32_t)(rnd(&s) % 6),
						 next_off);
			assert_int_equal(cache_index_insert(ix, &e), 0);
			for (uint32_t i = 0; i < n; i++) {
				m->seg[a + i] = e.seg + 1;
				m->seg_off[a + i] = next_off + i * SECT;
			}
			next_off += n * SECT;
		} else if (what < 97) {
			assert_int_equal(cache_index_remove(ix,
							    (uint64_t)a * SECT,
							    (uint64_t)n * SECT),
					 0);
			for (uint32_t i = 0; i < n; i++)
				m->seg[a + i] = 0;
		} else {
			uint32_t seg = (uint32_t)(rnd(&s) % 6);

			cache_index_drop_seg(ix, seg);
			for (uint32_t i = 0; i < NSECT; i++)
				if (m->seg[i] == seg + 1)
					m->seg[i] = 0;
		}
		a = (uint32_t)(rnd(&s) % NSECT);
		n = 1 + (uint32_t)(rnd(&s) % (NSECT - a));
		model_check(ix, m, (uint64_t)a * SECT, (uint64_t)n * SECT);
	}
	model_check(ix, m, 0, (uint64_t)NSECT * SECT);
	printf("%llu extents at the end\n",
	       (unsigned long long)cache_index_count(ix));
	cache_index_free(ix);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlaps_resolve_by_order),
		cmocka_unit_test(test_remove_and_clipped_lookup),
		cmocka_unit_test(test_lookup_stops_when_asked_and_drop_seg),
		cmocka_unit_test(test_random_against_a_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
