/* Description: the client's data-area allocator through the channel API:
 * limits (-EINVAL, -E2BIG, -ENOSPC), unit rounding, holes from
 * out-of-order frees and fragmentation, double and bogus frees, and a
 * random alloc/free run checked against a reference model (fails exactly
 * when no free run is long enough, never overlaps). */
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

static int setup(void **state)
{
	*state = fx_new(0, 0, 0);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

static void test_data_alloc_limits_and_fragmentation(void **state)
{
	struct fx *f = *state;
	uint32_t size = fx_ctrl(f)->data_size, units = size / CBDT_DATA_UNIT;
	uint32_t off, offs[4096];

	assert_true(units <= 4096);
	assert_int_equal(cbdt_channel_data_alloc(f->c, 0, &off), -EINVAL);
	assert_int_equal(cbdt_channel_data_alloc(f->c, size + 1, &off), -E2BIG);
	assert_int_equal(cbdt_channel_data_alloc(f->c, UINT32_MAX, &off),
			 -E2BIG);
	/* the handler side has no allocator */
	assert_int_equal(cbdt_channel_data_alloc(f->h, 4096, &off), -EINVAL);

	/* fill with single units (sub-unit sizes round up) */
	for (uint32_t i = 0; i < units; i++) {
		assert_int_equal(cbdt_channel_data_alloc(f->c, 1 + i % 4096,
							 &offs[i]),
				 0);
		assert_int_equal(offs[i] % CBDT_DATA_UNIT, 0);
		for (uint32_t j = 0; j < i; j += 97)
			assert_int_not_equal(offs[j], offs[i]);
	}
	assert_int_equal(cbdt_channel_data_alloc(f->c, 1, &off), -ENOSPC);
	/* free every other unit: half the area is free, no 2 units touch */
	for (uint32_t i = 0; i < units; i += 2)
		cbdt_channel_data_free(f->c, offs[i], 4096);
	assert_int_equal(cbdt_channel_data_alloc(f->c, 8192, &off), -ENOSPC);
	/* freeing a neighbour makes a 2-unit hole exactly there */
	cbdt_channel_data_free(f->c, offs[101], 4096);
	assert_int_equal(cbdt_channel_data_alloc(f->c, 8192, &off), 0);
	assert_int_equal(off, offs[100] < offs[101] ? offs[100] : offs[101]);
	/* refill: the area is full again */
	while (cbdt_channel_data_alloc(f->c, 4096, &offs[0]) == 0)
		;
	assert_int_equal(cbdt_channel_data_alloc(f->c, 1, &offs[0]), -ENOSPC);
	/* a double free is harmless: the unit is handed out once */
	cbdt_channel_data_free(f->c, off, 4096);
	cbdt_channel_data_free(f->c, off, 4096);
	assert_int_equal(cbdt_channel_data_alloc(f->c, 4096, &offs[0]), 0);
	assert_int_equal(offs[0], off);
	assert_int_equal(cbdt_channel_data_alloc(f->c, 4096, &offs[0]),
			 -ENOSPC);
	/* bogus frees are ignored, not applied */
	cbdt_channel_data_free(f->c, 5, 4096);
	cbdt_channel_data_free(f->c, size, 4096);
	cbdt_channel_data_free(f->c, 0, UINT32_MAX);
	cbdt_channel_data_free(f->c, 0, 0);
	assert_int_equal(cbdt_channel_data_alloc(f->c, 1, &offs[0]), -ENOSPC);
}

/*
 * Lowest-address first fit: a steady stream of alloc/free never walks
 * over the area (the touched, resident pages stay about the peak in
 * flight), and a freed low hole is reused before higher space.
 */
static void test_data_alloc_reuses_lowest_address(void **state)
{
	struct fx *f = *state;
	uint32_t offs[8], off, max = 0;

	for (int round = 0; round < 1000; round++) {
		for (int i = 0; i < 8; i++) {
			assert_int_equal(cbdt_channel_data_alloc(f->c, 65536,
								 &offs[i]),
					 0);
			if (offs[i] > max)
				max = offs[i];
		}
		for (int i = 0; i < 8; i++)
			cbdt_channel_data_free(f->c, offs[(i + round) % 8],
					       65536);
	}
	assert_int_equal(max, 7 * 65536);
	/* hole at 64 KiB between two used runs: a 4 KiB request lands there */
	for (int i = 0; i < 3; i++)
		assert_int_equal(cbdt_channel_data_alloc(f->c, 65536, &offs[i]),
				 0);
	cbdt_channel_data_free(f->c, offs[1], 65536);
	assert_int_equal(cbdt_channel_data_alloc(f->c, 4096, &off), 0);
	assert_int_equal(off, 65536);
	/* too big for the hole: goes above the used runs */
	assert_int_equal(cbdt_channel_data_alloc(f->c, 65536, &off), 0);
	assert_int_equal(off, 3 * 65536);
}

/* Reference: is there a free run of n units in the model? */
static bool model_fits(const bool *used, uint32_t units, uint32_t n)
{
	uint32_t run = 0;

	for (uint32_t i = 0; i < units; i++) {
		run = used[i] ? 0 : run + 1;
		if (run >= n)
			return true;
	}
	return false;
}

static void test_data_alloc_matches_model(void **state)
{
	struct fx *f = *state;
	uint32_t units = fx_ctrl(f)->data_size / CBDT_DATA_UNIT;
	static bool used[4096];
	static struct {
		uint32_t off, n;
	} live[4096];
	uint32_t nlive = 0;
	unsigned seed = 42;

	memset(used, 0, sizeof(used));
	for (int step = 0; step < 50000; step++) {
		if (nlive && rand_r(&seed) % 2) {
			uint32_t k = (uint32_t)rand_r(&seed) % nlive;

			cbdt_channel_data_free(f->c, live[k].off,
					       live[k].n * CBDT_DATA_UNIT);
			for (uint32_t u = 0; u < live[k].n; u++)
				used[live[k].off / CBDT_DATA_UNIT + u] = false;
			live[k] = live[--nlive];
		} else {
			uint32_t n = 1 + (uint32_t)rand_r(&seed) %
						 (rand_r(&seed) % 8 ? 8 : 300);
			uint32_t off;
			int ret = cbdt_channel_data_alloc(
				f->c, n * CBDT_DATA_UNIT, &off);

			/* fails exactly when no free run is long enough */
			assert_int_equal(ret == 0, model_fits(used, units, n));
			if (ret) {
				assert_int_equal(ret, -ENOSPC);
				continue;
			}
			assert_true(off / CBDT_DATA_UNIT + n <= units);
			for (uint32_t u = 0; u < n; u++) {
				assert_false(used[off / CBDT_DATA_UNIT + u]);
				used[off / CBDT_DATA_UNIT + u] = true;
			}
			live[nlive].off = off;
			live[nlive++].n = n;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_data_alloc_limits_and_fragmentation, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_data_alloc_reuses_lowest_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_alloc_matches_model,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
