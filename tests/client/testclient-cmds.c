/* SPDX-License-Identifier: MIT */
/*
 * cbd-testclient's simple commands: pattern write/read, a slot listing for
 * tests to poll, the hidden "badentry" that puts crafted garbage into a
 * submission ring to prove the handler fails it and goes on, and the
 * hidden "badcompletion" that does the same to a client's completion
 * ring.  Main thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barrier.h"
#include "log.h"
#include "testclient.h"

#define TC_WINDOW      (16U << 20) /* bytes per pass of write/read */
#define TC_BAD_WAIT_MS 10000U

int tc_cmd_write(struct tc *tc, uint64_t off, uint64_t len, uint64_t seed,
		 uint16_t flags)
{
	uint8_t *buf = malloc(len < TC_WINDOW ? (len ? len : 1) : TC_WINDOW);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t done = 0; done < len && !ret;) {
		uint64_t n = len - done < TC_WINDOW ? len - done : TC_WINDOW;

		tc_pattern_fill(buf, off + done, n, seed);
		ret = tc_sync(tc, CBDT_OP_WRITE, flags, off + done, n, buf,
			      NULL);
		done += n;
	}
	if (!len) /* let the backend judge an empty write */
		ret = tc_sync(tc, CBDT_OP_WRITE, flags, off, 0, NULL, NULL);
	free(buf);
	return ret;
}

/* Compare, report the first difference: 0 or 1. */
static int tc_verify(const uint8_t *buf, uint64_t off, uint64_t n,
		     uint64_t seed, bool zero)
{
	for (uint64_t i = 0; i < n; i++) {
		uint8_t want = zero ? 0 : tc_pattern_byte(off + i, seed);

		if (buf[i] != want) {
			log_err("read: mismatch at offset %" PRIu64
				": got %#04x, want %#04x (%s)",
				off + i, buf[i], want,
				zero ? "zeroes" : "pattern");
			return 1;
		}
	}
	return 0;
}

int tc_cmd_read(struct tc *tc, uint64_t off, uint64_t len, uint64_t seed,
		bool zero)
{
	uint8_t *buf = malloc(len < TC_WINDOW ? (len ? len : 1) : TC_WINDOW);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	if (!len)
		ret = tc_sync(tc, CBDT_OP_READ, 0, off, 0, NULL, buf);
	for (uint64_t done = 0; done < len && !ret;) {
		uint64_t n = len - done < TC_WINDOW ? len - done : TC_WINDOW;

		ret = tc_sync(tc, CBDT_OP_READ, 0, off + done, n, NULL, buf);
		if (!ret && tc_verify(buf, off + done, n, seed, zero))
			ret = -EILSEQ;
		done += n;
	}
	free(buf);
	return ret;
}

/* ---- status ---- */

static const char *seg_handler_name(uint32_t s)
{
	return s == CBDT_HANDLER_ATTACHED ? "attached" :
	       s == CBDT_HANDLER_DETACHED ? "detached" :
					    "none";
}

static void status_segment(struct tc *tc, uint32_t id)
{
	const struct cbdt_channel_ctrl *ctrl = cbdt_segment_ctrl(tc->t, id);
	struct cbdt_segment_rec r;

	if (cbdt_segment_read(tc->t, id, &r)) {
		printf("segment %u record=none\n", id);
		return;
	}
	/* Pairs with the store-releases of both sides (a snapshot only). */
	printf("segment %u type=%s blkdev=%u queue=%u backend=%u handler=%s "
	       "client=%s\n",
	       id, r.type == CBDT_SEG_CHANNEL ? "channel" : "other",
	       r.blkdev_id, r.queue, r.backend_id,
	       seg_handler_name(smp_load_acquire(&ctrl->handler_state)),
	       smp_load_acquire(&ctrl->client_state) == CBDT_CLIENT_OPEN ?
		       "open" :
		       "closing");
}

/* One line per ACTIVE slot: "TYPE ID key=value ...". */
int tc_cmd_status(struct tc *tc)
{
	for (int type = 0; type < CBDT_OBJ_NR; type++) {
		uint32_t n = cbdt_slot_count(tc->t, type);

		for (uint32_t id = 0; id < n; id++) {
			uint64_t o = cbdt_slot_owner(tc->t, type, id);
			uint64_t hb = cbdt_slot_heartbeat_read(tc->t, type, id);
			struct cbdt_host_rec h;
			struct cbdt_backend_rec be;
			struct cbdt_blkdev_rec bd;

			if (CBDT_OWNER_STATE(o) != CBDT_SLOT_ACTIVE)
				continue;
			switch (type) {
			case CBDT_OBJ_HOST:
				if (cbdt_host_read(tc->t, id, &h))
					memset(&h, 0, sizeof(h));
				printf("host %u name=%s role=%s pid=%u hb=%" PRIu64
				       "\n",
				       id, h.hostname,
				       h.role == CBDT_ROLE_BACKEND ? "backend" :
								     "client",
				       h.pid, hb);
				break;
			case CBDT_OBJ_BACKEND:
				if (cbdt_backend_read(tc->t, id, &be))
					memset(&be, 0, sizeof(be));
				printf("backend %u host=%u name=%s size=%" PRIu64
				       " handlers=%u ro=%d hb=%" PRIu64 "\n",
				       id, CBDT_OWNER_HOST(o), be.name, be.size,
				       be.handlers,
				       !!(be.flags & CBDT_BACKEND_RO), hb);
				break;
			case CBDT_OBJ_BLKDEV:
				if (cbdt_blkdev_read(tc->t, id, &bd))
					memset(&bd, 0, sizeof(bd));
				printf("blkdev %u host=%u backend=%u queues=%u "
				       "ro=%d hb=%" PRIu64 "\n",
				       id, CBDT_OWNER_HOST(o), bd.backend_id,
				       bd.queues, !!(bd.flags & CBDT_BLKDEV_RO),
				       hb);
				break;
			default:
				status_segment(tc, id);
				break;
			}
		}
	}
	fflush(stdout);
	return 0;
}

/* ---- badentry ---- */

struct bad_kind {
	const char *name;
	uint16_t op, flags;
	uint64_t offset; /* UINT64_MAX: the device size */
	uint32_t len, data_off, data_len;
	bool extent_end; /* data_off = end of the data area */
	bool bad_seq;	 /* seq that does not match the ring index */
	int expect;	 /* 0: any error */
};

static const struct bad_kind bad_kinds[] = {
	{"op0", 0, 0, 0, 4096, 0, 4096, false, false, -EINVAL},
	{"op", 99, 0, 0, 4096, 0, 4096, false, false, -EINVAL},
	{"flags", CBDT_OP_WRITE, 0x80, 0, 4096, 0, 4096, false, false, -EINVAL},
	{"fua-read", CBDT_OP_READ, CBDT_SE_FUA, 0, 4096, 0, 4096, false, false,
	 -EINVAL},
	{"len0", CBDT_OP_WRITE, 0, 0, 0, 0, 0, false, false, -EINVAL},
	{"past-end", CBDT_OP_READ, 0, UINT64_MAX, 4096, 0, 4096, false, false,
	 -EINVAL},
	{"overflow", CBDT_OP_READ, 0, UINT64_MAX - 100, 4096, 0, 4096, false,
	 false, -EINVAL},
	{"extent", CBDT_OP_READ, 0, 0, 4096, 0, 4096, true, false, -EINVAL},
	{"data-len", CBDT_OP_WRITE, 0, 0, 4096, 0, 8192, false, false, -EINVAL},
	{"flush-len", CBDT_OP_FLUSH, 0, 0, 4096, 0, 0, false, false, -EINVAL},
	{"discard-data", CBDT_OP_DISCARD, 0, 0, 4096, 0, 4096, false, false,
	 -EINVAL},
	{"seq", CBDT_OP_READ, 0, 0, 4096, 0, 4096, false, true, 0},
};

static int tc_wait_word(const uint32_t *word, uint32_t old, uint32_t ms)
{
	struct timespec pause = {.tv_nsec = 100000};
	uint64_t start = cbdt_now_ms();

	/* Pairs with the handler's store-release of cq_head. */
	while (smp_load_acquire(word) == old) {
		if (cbdt_now_ms() - start > ms)
			return -ETIMEDOUT;
		nanosleep(&pause, NULL);
	}
	return 0;
}

/*
 * Write one crafted entry at sq_head of queue 0 by hand (the library's
 * submit refuses garbage), wait for its completion and return its result.
 * The client handle's private indexes are then rebuilt by reopening it.
 */
static int bad_submit(struct tc *tc, const struct bad_kind *k, int32_t *res)
{
	struct cbdt_channel *ch = tc->b->ch[0];
	struct cbdt_channel_ctrl *ctrl = cbdt_channel_ctrl(ch);
	const struct cbdt_channel_geom *g = cbdt_channel_geom(ch);
	uint8_t *seg = (uint8_t *)ctrl;
	uint32_t head, tail;
	struct cbdt_se se;
	struct cbdt_ce ce;
	int ret;

	if (tc->inflight)
		return -EBUSY;
	/* Both are written by us only. */
	head = READ_ONCE(ctrl->sq_head);
	tail = READ_ONCE(ctrl->cq_tail);

	memset(&se, 0, sizeof(se));
	se.op = k->op;
	se.flags = k->flags;
	se.seq = k->bad_seq ? head + 0x5a5a : head;
	se.req_id = 0xbad0000ULL + head;
	se.offset = k->offset == UINT64_MAX ? tc->b->size : k->offset;
	se.len = k->len;
	se.data_off = k->extent_end ? g->data_size : k->data_off;
	se.data_len = k->data_len;
	if (g->flags & CBDT_F_ENTRY_CRC)
		se.crc = cbdt_crc32c(0, (uint8_t *)&se + 4, sizeof(se) - 4);
	memcpy(seg + g->se_off +
		       (uint64_t)(head & (g->se_count - 1)) * sizeof(se),
	       &se, sizeof(se));
	/* Pairs with the handler's load-acquire of sq_head in peek. */
	smp_store_release(&ctrl->sq_head, head + 1);
	smp_mb();
	cbdt_doorbell_ring(&ctrl->sq_sleep);

	ret = tc_wait_word(&ctrl->cq_head, tail, TC_BAD_WAIT_MS);
	if (ret)
		return ret;
	memcpy(&ce,
	       seg + g->ce_off +
		       (uint64_t)(tail & (g->ce_count - 1)) * sizeof(ce),
	       sizeof(ce));
	/* Pairs with the handler's load-acquire of cq_tail in complete. */
	smp_store_release(&ctrl->cq_tail, tail + 1);
	if ((uint32_t)ce.seq != head) {
		log_err("badentry %s: completion carries seq %llu, want %u",
			k->name, (unsigned long long)ce.seq, head);
		return -EBADMSG;
	}
	*res = ce.result;

	tc_queues_close(tc);
	cbdt_channel_close(ch);
	tc->b->ch[0] = NULL;
	ret = cbdt_channel_open(tc->t, tc->b->segs[0], CBDT_CHANNEL_CLIENT, 0,
				&tc->b->ch[0]);
	return ret ? ret : tc_queues_open(tc);
}

/* Exit status: 0 if every entry of @kind ("all" for every kind) was
 * failed as expected, 1 if one was not. */
int tc_cmd_badentry(struct tc *tc, const char *kind)
{
	bool all = !strcmp(kind, "all"), found = false;
	int bad = 0;

	for (size_t i = 0; i < sizeof(bad_kinds) / sizeof(bad_kinds[0]); i++) {
		const struct bad_kind *k = &bad_kinds[i];
		int32_t res = 0;
		int ret;

		if (!all && strcmp(kind, k->name))
			continue;
		found = true;
		ret = bad_submit(tc, k, &res);
		if (ret)
			return ret;
		printf("badentry %s: result %d (%s)\n", k->name, res,
		       res ? strerror(-res) : "accepted");
		if (k->expect ? res != k->expect : res >= 0)
			bad = 1;
	}
	fflush(stdout);
	if (!found)
		return -EINVAL;
	return bad ? -EILSEQ : 0;
}

/* ---- badcompletion ---- */

/*
 * Post a completion that no request asked for (its seq and req_id match
 * nothing) into the completion ring of the channel in segment @seg, as a
 * broken handler would.  The client of that channel must stop using it,
 * fail what it has in flight with EIO and go on serving the rest.  The
 * channel's handler must not be posting meanwhile (stopped, or idle).
 */
int tc_cmd_badcompletion(struct tc *tc, uint32_t seg)
{
	struct cbdt_channel_ctrl *ctrl = cbdt_segment_ctrl(tc->t, seg), copy;
	struct cbdt_channel_geom g;
	struct cbdt_ce ce;
	uint32_t head;
	int ret;

	/* by hand: a handle of either side would refuse or write */
	if (!ctrl)
		return -EINVAL;
	memcpy(&copy, ctrl, sizeof(copy));
	ret = cbdt_channel_ctrl_validate(&copy, cbdt_get_info(tc->t)->seg_size,
					 &g);
	if (ret)
		return ret;
	head = READ_ONCE(ctrl->cq_head);
	memset(&ce, 0xa5, sizeof(ce));
	ce.result = 0;
	ce.seq = head + 0x5a5aU;
	ce.req_id = 0xbadce000ULL + head;
	memcpy((uint8_t *)ctrl + g.ce_off +
		       (uint64_t)(head & (g.ce_count - 1)) * sizeof(ce),
	       &ce, sizeof(ce));
	/* Pairs with the client's load-acquire of cq_head in reap. */
	smp_store_release(&ctrl->cq_head, head + 1);
	smp_mb();
	cbdt_doorbell_ring(&ctrl->cq_sleep);
	printf("badcompletion: segment %u, completion %u\n", seg, head);
	fflush(stdout);
	return 0;
}
