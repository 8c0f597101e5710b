/* SPDX-License-Identifier: MIT */
/*
 * Fixture shared by the channel unit tests: a formatted file transport on
 * /dev/shm with one channel segment initialised, and its two handles.
 * Single-threaded setup/teardown; the handles follow cbdt.h's rules.
 */
#ifndef CBD_TESTS_CHANNEL_FIXTURE_H
#define CBD_TESTS_CHANNEL_FIXTURE_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbdt.h"
#include "fixture.h"

#define FX_SIZE		 (40ULL << 20) /* metadata + 2 segments */
#define FX_BACKEND_OWNER 0x1234500ULL

struct fx {
	char path[64];
	struct cbdt *t;
	uint32_t seg;
	uint64_t seg_owner;
	uint8_t *kseg;		/* the segment in shared memory */
	struct cbdt_channel *c; /* client handle */
	struct cbdt_channel *h; /* handler handle */
};

/* Create, format (@flags: CBDT_F_*) and map; claim one segment. */
static inline int fx_transport(struct fx *f, uint16_t flags)
{
	int id;

	if (tfx_transport_new(f->path, &f->t, FX_SIZE, flags))
		return -1;
	id = cbdt_slot_claim(f->t, CBDT_OBJ_SEGMENT, -1, 0, &f->seg_owner);
	if (id < 0)
		return -1;
	f->seg = (uint32_t)id;
	f->kseg = cbdt_segment_base(f->t, f->seg);
	return 0;
}

/* Init the channel (@se/@ce counts, 0 = default) and open both sides. */
static inline int fx_channel(struct fx *f, uint32_t se, uint32_t ce)
{
	struct cbdt_channel_params p = {
		.se_count = se,
		.ce_count = ce,
		.backend_id = 3,
		.blkdev_id = 5,
		.queue = 1,
		.blkdev_owner = 0xabcdef,
		.backend_ident = 0x1122334455667788ULL,
	};

	if (cbdt_channel_init(f->t, f->seg, &p))
		return -1;
	if (cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_CLIENT, 0, &f->c))
		return -1;
	if (cbdt_channel_open(f->t, f->seg, CBDT_CHANNEL_HANDLER,
			      FX_BACKEND_OWNER, &f->h))
		return -1;
	return 0;
}

static inline void fx_free(struct fx *f)
{
	if (!f)
		return;
	cbdt_channel_close(f->c);
	cbdt_channel_close(f->h);
	tfx_transport_free(f->path, &f->t);
	free(f);
}

static inline struct fx *fx_new(uint16_t flags, uint32_t se, uint32_t ce)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	if (fx_transport(f, flags) || fx_channel(f, se, ce)) {
		fprintf(stderr, "channel fixture setup failed\n");
		fx_free(f);
		return NULL;
	}
	return f;
}

static inline struct cbdt_channel_ctrl *fx_ctrl(struct fx *f)
{
	return (struct cbdt_channel_ctrl *)f->kseg;
}

static inline struct cbdt_se *fx_se(struct fx *f, uint32_t idx)
{
	struct cbdt_channel_ctrl *c = fx_ctrl(f);

	return (struct cbdt_se *)(f->kseg + c->se_off) +
	       (idx & (c->se_count - 1));
}

static inline struct cbdt_ce *fx_ce(struct fx *f, uint32_t idx)
{
	struct cbdt_channel_ctrl *c = fx_ctrl(f);

	return (struct cbdt_ce *)(f->kseg + c->ce_off) +
	       (idx & (c->ce_count - 1));
}

/* Deterministic payload of request @id. */
static inline void fx_fill(void *buf, uint32_t len, uint64_t id)
{
	uint8_t *p = buf;

	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t x = (id + i / 8) * 0x9e3779b97f4a7c15ULL;

		memcpy(p + i, &x, len - i < 8 ? len - i : 8);
	}
}

/* Whether @buf holds the pattern of request @id (little-endian host). */
static inline bool fx_check(const void *buf, uint32_t len, uint64_t id)
{
	const uint8_t *p = buf;

	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t x = (id + i / 8) * 0x9e3779b97f4a7c15ULL;

		if (memcmp(p + i, &x, len - i < 8 ? len - i : 8))
			return false;
	}
	return true;
}

#endif /* CBD_TESTS_CHANNEL_FIXTURE_H */
