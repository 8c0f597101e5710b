/* SPDX-License-Identifier: MIT */
/*
 * Private to libcbdt: a channel's private state (struct cbdt_channel),
 * shared by chan-ctrl.c (init, open, close, handler flags) and channel.c
 * (the rings).  Not installed, not for the programs.
 */
#ifndef CBD_TRANSPORT_CHAN_INTERNAL_H
#define CBD_TRANSPORT_CHAN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cbdt.h"
#include "chan-alloc.h"

/* What the client remembers of a request until its completion. */
struct chan_pending {
	uint64_t req_id;
	uint32_t data_off;
	uint32_t data_len;
	uint16_t op;
};

struct cbdt_channel {
	struct cbdt *t;
	uint32_t seg_id;
	enum cbdt_channel_role role;
	struct cbdt_channel_ctrl *ctrl; /* shared */
	struct cbdt_se *ksq;		/* shared rings and data */
	struct cbdt_ce *kcq;
	uint8_t *kdata;
	struct cbdt_channel_geom g; /* private, validated copy */

	/* client: the producer (submit) and the consumer (reap) may be two
	 * threads; each writes its own counter, the other reads it */
	uint64_t seq;	 /* next submission; (u32) == sq_head */
	uint64_t reaped; /* next completion; (u32) == cq_tail */
	uint32_t inflight_max;
	bool packs;	  /* CBDT_HF_PACK as of the last reap; READ_ONCE */
	uint32_t c_hints; /* our copy of ctrl->client_hints (producer) */
	struct chan_pending *pending; /* [se_count], by seq */
	struct chan_alloc alloc;      /* data area, private */

	/* handler */
	uint64_t h_seq;		   /* seq expected at sq_tail */
	uint32_t h_flags;	   /* our copy of ctrl->handler_flags */
	uint32_t sq_tail, cq_head; /* private shadows of our indexes */
	bool peeked;
};

/* [off, off + len) lies inside [start, end), without overflow. */
static inline bool range_in(uint64_t off, uint64_t len, uint64_t start,
			    uint64_t end)
{
	return off >= start && len <= end - start &&
	       off - start <= end - start - len;
}

#endif /* CBD_TRANSPORT_CHAN_INTERNAL_H */
