/* SPDX-License-Identifier: MIT */
/*
 * A channel's control area: its geometry and the check of it
 * (cbdt_channel_ctrl_validate), init, open (with handler crash recovery)
 * and close, the accessors, and the handler flags that say whether
 * acknowledged writes may have been lost.  The rings themselves are in
 * channel.c.  One thread per side: the caller serialises each side's calls
 * (cbdt.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "cbdt.h"
#include "chan-alloc.h"
#include "chan-internal.h"

#define CHAN_SE_COUNT_DEFAULT 256U
#define CHAN_DATA_ALIGN	      (64U << 10) /* data area starts here */
#define CHAN_ALIGN_UP(x, a)   (((x) + (a)-1) / (a) * (a))

static bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

/* ---- geometry ---- */

static bool range_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int cbdt_channel_ctrl_validate(const struct cbdt_channel_ctrl *ctrl,
			       uint32_t seg_size, struct cbdt_channel_geom *g)
{
	uint64_t se_len, ce_len;

	if (ctrl->magic != CBDT_CHANNEL_MAGIC)
		return -EMEDIUMTYPE;
	if (ctrl->version != CBDT_CHANNEL_VERSION)
		return -EPROTONOSUPPORT;
	if (ctrl->flags & ~CBDT_F_ALL)
		return -EINVAL;
	if (!is_pow2(ctrl->se_count) || !is_pow2(ctrl->ce_count))
		return -EINVAL;
	/* Entry alignment keeps every entry inside one cache line pair and
	 * the data area unit-aligned for dax. */
	if (ctrl->se_off % sizeof(struct cbdt_se) ||
	    ctrl->ce_off % sizeof(struct cbdt_ce) ||
	    ctrl->data_off % CBDT_DATA_UNIT ||
	    ctrl->data_size % CBDT_DATA_UNIT || !ctrl->data_size)
		return -EINVAL;
	se_len = (uint64_t)ctrl->se_count * sizeof(struct cbdt_se);
	ce_len = (uint64_t)ctrl->ce_count * sizeof(struct cbdt_ce);
	if (seg_size < CBDT_CTRL_SIZE ||
	    !range_in(ctrl->se_off, se_len, CBDT_CTRL_SIZE, seg_size) ||
	    !range_in(ctrl->ce_off, ce_len, CBDT_CTRL_SIZE, seg_size) ||
	    !range_in(ctrl->data_off, ctrl->data_size, CBDT_CTRL_SIZE,
		      seg_size))
		return -ERANGE;
	if (range_overlap(ctrl->se_off, se_len, ctrl->ce_off, ce_len) ||
	    range_overlap(ctrl->se_off, se_len, ctrl->data_off,
			  ctrl->data_size) ||
	    range_overlap(ctrl->ce_off, ce_len, ctrl->data_off,
			  ctrl->data_size))
		return -ERANGE;
	g->flags = ctrl->flags;
	g->se_off = ctrl->se_off;
	g->se_count = ctrl->se_count;
	g->ce_off = ctrl->ce_off;
	g->ce_count = ctrl->ce_count;
	g->data_off = ctrl->data_off;
	g->data_size = ctrl->data_size;
	return 0;
}

static int chan_seg_locate(struct cbdt *t, uint32_t seg_id, uint8_t **seg,
			   uint32_t *seg_size)
{
	*seg = cbdt_segment_base(t, seg_id);
	if (!*seg)
		return -ERANGE;
	*seg_size = cbdt_get_info(t)->seg_size;
	return 0;
}

int cbdt_channel_init(struct cbdt *t, uint32_t seg_id,
		      const struct cbdt_channel_params *p)
{
	uint32_t se_count = p->se_count ? p->se_count : CHAN_SE_COUNT_DEFAULT;
	uint32_t ce_count = p->ce_count ? p->ce_count : se_count;
	struct cbdt_segment_rec rec = {
		.type = CBDT_SEG_CHANNEL,
		.queue = p->queue,
		.backend_id = p->backend_id,
		.blkdev_id = p->blkdev_id,
		.blkdev_owner = p->blkdev_owner,
		.backend_ident = p->backend_ident,
	};
	struct cbdt_channel_ctrl *ctrl;
	struct cbdt_channel_geom g;
	uint64_t se_off, ce_off, ring_end, data_off;
	uint32_t seg_size;
	uint8_t *seg;
	int ret;

	ret = chan_seg_locate(t, seg_id, &seg, &seg_size);
	if (ret)
		return ret;
	if (!is_pow2(se_count) || !is_pow2(ce_count))
		return -EINVAL;
	se_off = CBDT_CTRL_SIZE;
	ce_off = se_off + (uint64_t)se_count * sizeof(struct cbdt_se);
	ring_end = ce_off + (uint64_t)ce_count * sizeof(struct cbdt_ce);
	data_off = CHAN_ALIGN_UP(ring_end, (uint64_t)CHAN_DATA_ALIGN);
	if (data_off + CBDT_DATA_UNIT > seg_size)
		return -EINVAL;

	/* The segment is ours (claimed) and no handler serves it yet: plain
	 * stores, published below by the magic and then the record. */
	ctrl = (struct cbdt_channel_ctrl *)seg;
	memset(ctrl, 0, sizeof(*ctrl));
	memset(seg + se_off, 0, ring_end - se_off);
	ctrl->version = CBDT_CHANNEL_VERSION;
	ctrl->flags = cbdt_get_info(t)->flags & CBDT_F_ALL;
	ctrl->se_off = (uint32_t)se_off;
	ctrl->se_count = se_count;
	ctrl->ce_off = (uint32_t)ce_off;
	ctrl->ce_count = ce_count;
	ctrl->data_off = (uint32_t)data_off;
	ctrl->data_size = (uint32_t)((seg_size - data_off) / CBDT_DATA_UNIT *
				     CBDT_DATA_UNIT);
	ctrl->backend_id = p->backend_id;
	ctrl->blkdev_id = p->blkdev_id;
	ctrl->queue = p->queue;
	ctrl->blkdev_owner = p->blkdev_owner;
	ctrl->client_state = CBDT_CLIENT_OPEN;
	/* pairs with the load-acquire of magic in cbdt_channel_open() */
	smp_store_release(&ctrl->magic, CBDT_CHANNEL_MAGIC);

	/* Self-check: what we wrote is what a handler will accept. */
	ret = cbdt_channel_ctrl_validate(ctrl, seg_size, &g);
	if (ret)
		return ret;
	return cbdt_record_write(t, CBDT_OBJ_SEGMENT, seg_id, &rec,
				 sizeof(rec));
}

/* ---- open / close ---- */

static int chan_client_setup(struct cbdt_channel *ch)
{
	/* Our own indexes: nobody else writes them. */
	uint32_t head = READ_ONCE(ch->ctrl->sq_head);
	uint32_t tail = READ_ONCE(ch->ctrl->cq_tail);

	/* A client starts from a freshly initialised channel: requests in
	 * flight belong to a client that is gone. */
	if (head != tail)
		return -EBUSY;
	ch->seq = head;
	ch->reaped = tail;
	ch->c_hints = READ_ONCE(ch->ctrl->client_hints);
	ch->inflight_max = ch->g.se_count < ch->g.ce_count ? ch->g.se_count :
							     ch->g.ce_count;
	ch->pending = calloc(ch->g.se_count, sizeof(*ch->pending));
	if (!ch->pending)
		return -ENOMEM;
	return chan_alloc_init(&ch->alloc, ch->g.data_size / CBDT_DATA_UNIT);
}

/*
 * A handler that died between publishing cq_head and sq_tail left the se
 * at sq_tail completed but not consumed: consume it now, or it would run
 * twice.  A handler that died before publishing cq_head left it pending:
 * it runs again, which is the "submitted but not completed" rule.
 */
static int chan_handler_setup(struct cbdt_channel *ch, uint64_t backend_owner)
{
	struct cbdt_channel_ctrl *ctrl = ch->ctrl;
	uint32_t smask = ch->g.se_count - 1, cmask = ch->g.ce_count - 1;
	struct cbdt_se se;
	struct cbdt_ce ce;
	uint32_t head;

	/* Written by earlier handlers of this channel only (possibly another
	 * process or host): pair with their store-release of sq_tail and
	 * cq_head in cbdt_channel_complete(), so the ce read below is the
	 * one they published. */
	ch->sq_tail = smp_load_acquire(&ctrl->sq_tail);
	ch->cq_head = smp_load_acquire(&ctrl->cq_head);
	/* pairs with the store-release of sq_head in cbdt_channel_submit() */
	head = smp_load_acquire(&ctrl->sq_head);
	if (ch->cq_head - ch->sq_tail == 1 && head != ch->sq_tail) {
		memcpy(&ce, &ch->kcq[(ch->cq_head - 1) & cmask], sizeof(ce));
		memcpy(&se, &ch->ksq[ch->sq_tail & smask], sizeof(se));
		if (ce.seq == se.seq && (uint32_t)se.seq == ch->sq_tail) {
			ch->sq_tail++;
			/* pairs with the load-acquire of sq_tail in submit */
			smp_store_release(&ctrl->sq_tail, ch->sq_tail);
		}
	}
	if (ch->cq_head != ch->sq_tail)
		return -EBADMSG;
	ch->h_seq = ch->sq_tail;
	/* published by the store-release of handler_state just below */
	WRITE_ONCE(ctrl->handler_owner, backend_owner);
	/* pairs with the client's load-acquire of handler_state (map/unmap) */
	smp_store_release(&ctrl->handler_state,
			  (uint32_t)CBDT_HANDLER_ATTACHED);
	return 0;
}

int cbdt_channel_open(struct cbdt *t, uint32_t seg_id,
		      enum cbdt_channel_role role, uint64_t backend_owner,
		      struct cbdt_channel **out)
{
	struct cbdt_channel_ctrl copy;
	struct cbdt_channel *ch;
	uint32_t seg_size;
	uint8_t *seg;
	int ret;

	if (role != CBDT_CHANNEL_CLIENT && role != CBDT_CHANNEL_HANDLER)
		return -EINVAL;
	ret = chan_seg_locate(t, seg_id, &seg, &seg_size);
	if (ret)
		return ret;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->t = t;
	ch->seg_id = seg_id;
	ch->role = role;
	ch->ctrl = (struct cbdt_channel_ctrl *)seg;
	/* pairs with the store-release of magic in cbdt_channel_init() */
	if (smp_load_acquire(&ch->ctrl->magic) != CBDT_CHANNEL_MAGIC) {
		ret = -EMEDIUMTYPE;
		goto err_free;
	}
	/* The geometry is untrusted: validate a private copy, use only it. */
	memcpy(&copy, ch->ctrl, sizeof(copy));
	ret = cbdt_channel_ctrl_validate(&copy, seg_size, &ch->g);
	if (ret)
		goto err_free;
	ch->ksq = (struct cbdt_se *)(seg + ch->g.se_off);
	ch->kcq = (struct cbdt_ce *)(seg + ch->g.ce_off);
	ch->kdata = seg + ch->g.data_off;
	if (role == CBDT_CHANNEL_CLIENT)
		ret = chan_client_setup(ch);
	else
		ret = chan_handler_setup(ch, backend_owner);
	if (ret)
		goto err_free;
	*out = ch;
	return 0;

err_free:
	cbdt_channel_close(ch);
	return ret;
}

void cbdt_channel_close(struct cbdt_channel *ch)
{
	if (!ch)
		return;
	free(ch->pending);
	chan_alloc_fini(&ch->alloc);
	free(ch);
}

struct cbdt_channel_ctrl *cbdt_channel_ctrl(const struct cbdt_channel *ch)
{
	return ch->ctrl;
}

const struct cbdt_channel_geom *cbdt_channel_geom(const struct cbdt_channel *ch)
{
	return &ch->g;
}

uint32_t cbdt_channel_seg_id(const struct cbdt_channel *ch)
{
	return ch->seg_id;
}

struct cbdt *cbdt_channel_transport(const struct cbdt_channel *ch)
{
	return ch->t;
}

bool cbdt_channel_handler_adopt(struct cbdt_channel *ch,
				const uint8_t boot_id[16])
{
	static const uint8_t zero[16];
	struct cbdt_channel_ctrl *ctrl = ch->ctrl;
	uint32_t flags = READ_ONCE(ctrl->handler_flags);
	bool other_boot = memcmp(ctrl->handler_boot, zero, sizeof(zero)) &&
			  memcmp(ctrl->handler_boot, boot_id, sizeof(zero));

	if ((flags & CBDT_HF_UNFLUSHED) && other_boot)
		flags |= CBDT_HF_LOST;
	memcpy(ctrl->handler_boot, boot_id, sizeof(ctrl->handler_boot));
	/* Published with the next completion (store-release of cq_head). */
	WRITE_ONCE(ctrl->handler_flags, flags & CBDT_HF_LOST);
	ch->h_flags = flags & CBDT_HF_LOST;
	return flags & CBDT_HF_LOST;
}

void cbdt_channel_handler_unflushed(struct cbdt_channel *ch, bool unflushed)
{
	uint32_t flags = (ch->h_flags & ~CBDT_HF_UNFLUSHED) |
			 (unflushed ? CBDT_HF_UNFLUSHED : 0);

	if (flags == ch->h_flags)
		return;
	ch->h_flags = flags;
	/* Before the completion that acknowledges the write (or flush):
	 * its store-release of cq_head orders this store before it. */
	WRITE_ONCE(ch->ctrl->handler_flags, flags);
}

void cbdt_channel_handler_pack(struct cbdt_channel *ch, bool pack)
{
	ch->h_flags = (ch->h_flags & ~CBDT_HF_PACK) | (pack ? CBDT_HF_PACK : 0);
	/* A hint: the client reads it relaxed, whenever it looks. */
	WRITE_ONCE(ch->ctrl->handler_flags, ch->h_flags);
}

bool cbdt_channel_packs(const struct cbdt_channel *ch)
{
	return READ_ONCE(ch->packs);
}

void cbdt_channel_client_lone(struct cbdt_channel *ch, bool lone)
{
	uint32_t hints = lone ? CBDT_CH_LONE : 0;

	/* written only when it changes: a QD32 stream costs no store */
	if (hints == ch->c_hints)
		return;
	ch->c_hints = hints;
	WRITE_ONCE(ch->ctrl->client_hints, hints);
}

bool cbdt_channel_lone(const struct cbdt_channel *ch)
{
	return READ_ONCE(ch->ctrl->client_hints) & CBDT_CH_LONE;
}

bool cbdt_channel_lost(const struct cbdt_channel *ch)
{
	return ch->h_flags & CBDT_HF_LOST;
}

void *cbdt_channel_data(const struct cbdt_channel *ch, uint32_t off)
{
	return ch->kdata + off;
}
