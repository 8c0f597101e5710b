/* SPDX-License-Identifier: MIT */
/*
 * Data-area allocator of a channel client: a bitmap of units, first-fit
 * from the lowest address.
 * Private memory, single-threaded (the client's producer side).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "chan-alloc.h"

int chan_alloc_init(struct chan_alloc *a, uint32_t units)
{
	a->bitmap = calloc(((size_t)units + 63) / 64, sizeof(uint64_t));
	if (!a->bitmap)
		return -ENOMEM;
	a->units = units;
	a->free_units = units;
	a->lowest_free = 0;
	return 0;
}

void chan_alloc_fini(struct chan_alloc *a)
{
	free(a->bitmap);
	a->bitmap = NULL;
}

/* First index in [i, end) whose bit equals @set, or end. */
static uint32_t bit_find(const uint64_t *bm, uint32_t i, uint32_t end, bool set)
{
	while (i < end) {
		uint64_t w = set ? bm[i / 64] : ~bm[i / 64];

		w &= ~0ULL << (i % 64);
		if (w) {
			i = (i & ~63U) + (uint32_t)__builtin_ctzll(w);
			return i < end ? i : end;
		}
		i = (i & ~63U) + 64;
	}
	return end;
}

/* A free run of @n units starting in [from, end); -1 if none. */
static int64_t run_find(const struct chan_alloc *a, uint32_t from, uint32_t end,
			uint32_t n)
{
	uint32_t i = from;

	while (i < end) {
		uint32_t start = bit_find(a->bitmap, i, end, false), stop;

		if (start >= end)
			break;
		/* a run may extend past @end: only its start is bounded */
		stop = bit_find(a->bitmap, start, a->units, true);
		if (stop - start >= n)
			return start;
		i = stop;
	}
	return -1;
}

int chan_alloc_get(struct chan_alloc *a, uint32_t n, uint32_t *first)
{
	int64_t start;

	if (!a->bitmap || !n)
		return -EINVAL;
	if (n > a->units)
		return -E2BIG;
	if (n > a->free_units)
		return -ENOSPC;
	/* Lowest-address first fit: the pages ever touched (resident in both
	 * daemons, the area is shared memory) stay about the peak of bytes in
	 * flight instead of creeping over the whole area, and hot buffers
	 * stay in cache.  The bitmap is small (16 MiB = 64 words), so the
	 * scan from the lowest free unit is cheap. */
	start = run_find(a, a->lowest_free, a->units, n);
	if (start < 0)
		return -ENOSPC;
	for (uint32_t i = (uint32_t)start; i < (uint32_t)start + n; i++)
		a->bitmap[i / 64] |= 1ULL << (i % 64);
	a->free_units -= n;
	if ((uint32_t)start == a->lowest_free)
		a->lowest_free =
			bit_find(a->bitmap, a->lowest_free, a->units, false);
	*first = (uint32_t)start;
	return 0;
}

void chan_alloc_put(struct chan_alloc *a, uint32_t first, uint32_t n)
{
	if (!a->bitmap || !n || first >= a->units || n > a->units - first)
		return;
	for (uint32_t i = first; i < first + n; i++) {
		uint64_t bit = 1ULL << (i % 64);

		/* a double free must not inflate free_units */
		if (a->bitmap[i / 64] & bit) {
			a->bitmap[i / 64] &= ~bit;
			a->free_units++;
		}
	}
	if (first < a->lowest_free)
		a->lowest_free = first;
}
