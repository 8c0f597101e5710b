/* SPDX-License-Identifier: MIT */
/*
 * Private to libcbdt: the client's data-area allocator, a bitmap of
 * CBDT_DATA_UNIT units searched first-fit from the lowest address.  Lives
 * in the client's private memory (never shared); single-threaded like the
 * client's producer side.
 */
#ifndef CBD_TRANSPORT_CHAN_ALLOC_H
#define CBD_TRANSPORT_CHAN_ALLOC_H

#include <stdint.h>

struct chan_alloc {
	uint64_t *bitmap;     /* bit set = unit in use */
	uint32_t units;	      /* size of the area in units */
	uint32_t free_units;  /* fast -ENOSPC; the bitmap is authoritative */
	uint32_t lowest_free; /* no free unit below it */
};

/* 0 or -ENOMEM. */
int chan_alloc_init(struct chan_alloc *a, uint32_t units);
void chan_alloc_fini(struct chan_alloc *a);

/* First unit of a free run of @n units: 0, -ENOSPC now, -E2BIG never. */
int chan_alloc_get(struct chan_alloc *a, uint32_t n, uint32_t *first);

/* Give units back; a range outside the area is ignored (caller bug). */
void chan_alloc_put(struct chan_alloc *a, uint32_t first, uint32_t n);

#endif /* CBD_TRANSPORT_CHAN_ALLOC_H */
