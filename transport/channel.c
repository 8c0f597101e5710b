/* SPDX-License-Identifier: MIT */
/*
 * Channel rings: init, open (with handler crash recovery), submit/reap on
 * the client, peek/validate/complete on the handler, doorbell-aware waits.
 * One thread per side: the caller serialises each side's calls (cbdt.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "cbdt.h"
#include "chan-alloc.h"

#define CHAN_SE_COUNT_DEFAULT 256U
#define CHAN_DATA_ALIGN	      (64U << 10) /* data area starts here */
#define CHAN_SEQ_HI	      (~(uint64_t)UINT32_MAX)
#define CHAN_ERRNO_MAX	      4095
#define CHAN_ALIGN_UP(x, a)   (((x) + (a)-1) / (a) * (a))

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
	struct chan_pending *pending; /* [se_count], by seq */
	struct chan_alloc alloc;      /* data area, private */

	/* handler */
	uint64_t h_seq;		   /* seq expected at sq_tail */
	uint32_t h_flags;	   /* our copy of ctrl->handler_flags */
	uint32_t sq_tail, cq_head; /* private shadows of our indexes */
	bool peeked;
};

static bool is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

/* ---- geometry ---- */

static bool range_in(uint64_t off, uint64_t len, uint64_t start, uint64_t end)
{
	return off >= start && len <= end - start &&
	       off - start <= end - start - len;
}

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

bool cbdt_channel_lost(const struct cbdt_channel *ch)
{
	return ch->h_flags & CBDT_HF_LOST;
}

void *cbdt_channel_data(const struct cbdt_channel *ch, uint32_t off)
{
	return ch->kdata + off;
}

/* ---- data area ---- */

int cbdt_channel_data_alloc(struct cbdt_channel *ch, uint32_t len,
			    uint32_t *off)
{
	uint32_t n = (uint32_t)(((uint64_t)len + CBDT_DATA_UNIT - 1) /
				CBDT_DATA_UNIT);
	uint32_t first;
	int ret;

	if (ch->role != CBDT_CHANNEL_CLIENT || !len)
		return -EINVAL;
	ret = chan_alloc_get(&ch->alloc, n, &first);
	if (ret)
		return ret;
	*off = first * CBDT_DATA_UNIT;
	return 0;
}

void cbdt_channel_data_free(struct cbdt_channel *ch, uint32_t off, uint32_t len)
{
	/* A misaligned extent is a caller bug: refused, the map stays sane. */
	if (ch->role != CBDT_CHANNEL_CLIENT || off % CBDT_DATA_UNIT)
		return;
	chan_alloc_put(&ch->alloc, off / CBDT_DATA_UNIT,
		       (uint32_t)(((uint64_t)len + CBDT_DATA_UNIT - 1) /
				  CBDT_DATA_UNIT));
}

/* ---- entries ---- */

int cbdt_se_validate(const struct cbdt_se *se,
		     const struct cbdt_channel_geom *g, uint64_t dev_size)
{
	bool data_op = se->op == CBDT_OP_READ || se->op == CBDT_OP_WRITE;

	if (se->op < CBDT_OP_READ || se->op > CBDT_OP_MAX)
		return -EINVAL;
	if (se->flags & ~CBDT_SE_FLAGS_ALL)
		return -EINVAL;
	/* FUA makes sense only where something is written. */
	if ((se->flags & CBDT_SE_FUA) &&
	    (se->op == CBDT_OP_READ || se->op == CBDT_OP_FLUSH))
		return -EINVAL;
	if (se->op == CBDT_OP_FLUSH)
		return se->len || se->data_len ? -EINVAL : 0;
	if (!se->len || se->offset > dev_size ||
	    se->len > dev_size - se->offset)
		return -EINVAL;
	if (!data_op)
		return se->data_len ? -EINVAL : 0;
	if (se->data_len != se->len ||
	    !range_in(se->data_off, se->data_len, 0, g->data_size))
		return -EINVAL;
	return 0;
}

static uint32_t se_crc(const struct cbdt_se *se)
{
	return cbdt_crc32c(0, (const uint8_t *)se + 4, sizeof(*se) - 4);
}

static uint32_t ce_crc(const struct cbdt_ce *ce)
{
	return cbdt_crc32c(0, (const uint8_t *)ce + 4, sizeof(*ce) - 4);
}

static int errno_sane(int32_t result)
{
	return result > 0 || result < -CHAN_ERRNO_MAX ? -EIO : result;
}

static bool extent_ok(const struct cbdt_channel *ch, uint32_t off, uint32_t len)
{
	return range_in(off, len, 0, ch->g.data_size);
}

static uint32_t data_crc(const struct cbdt_channel *ch, uint32_t off,
			 uint32_t len)
{
	return cbdt_crc32c(0, ch->kdata + off, len);
}

static void se_from_request(struct cbdt_se *se, const struct cbdt_request *rq)
{
	memset(se, 0, sizeof(*se));
	se->op = rq->op;
	se->flags = rq->flags;
	se->seq = rq->seq;
	se->req_id = rq->req_id;
	se->offset = rq->offset;
	se->len = rq->len;
	se->data_off = rq->data_off;
	se->data_len = rq->data_len;
	se->data_crc = rq->data_crc;
}

/* ---- client side ---- */

int cbdt_channel_submit(struct cbdt_channel *ch, struct cbdt_request *rq)
{
	struct cbdt_channel_ctrl *ctrl = ch->ctrl;
	struct chan_pending *p;
	uint64_t seq = ch->seq; /* ours: only submit writes it */
	struct cbdt_se se;
	uint32_t tail;
	int ret;

	if (ch->role != CBDT_CHANNEL_CLIENT)
		return -EINVAL;
	/* pairs with the store-release of ch->reaped in reap (maybe another
	 * thread): its pending slot is read and done with */
	if (seq - smp_load_acquire(&ch->reaped) >= ch->inflight_max)
		return -EAGAIN;
	/* pairs with the store-release of sq_tail in cbdt_channel_complete():
	 * a reaped se may still be the one a restarting handler checks, so
	 * its slot is reused only once sq_tail moved past it. */
	tail = smp_load_acquire(&ctrl->sq_tail);
	if ((uint32_t)seq - tail >= ch->g.se_count)
		return -EAGAIN;
	rq->seq = seq;
	rq->data_crc = 0;
	se_from_request(&se, rq);
	/* Our own mistakes must not reach the handler (nor our crc loop). */
	ret = cbdt_se_validate(&se, &ch->g, UINT64_MAX);
	if (ret)
		return ret;
	if (rq->op == CBDT_OP_WRITE && (ch->g.flags & CBDT_F_DATA_CRC))
		rq->data_crc = se.data_crc =
			data_crc(ch, se.data_off, se.data_len);
	if (ch->g.flags & CBDT_F_ENTRY_CRC)
		se.crc = se_crc(&se);
	memcpy(&ch->ksq[seq & (ch->g.se_count - 1)], &se, sizeof(se));
	p = &ch->pending[seq & (ch->g.se_count - 1)];
	p->req_id = rq->req_id;
	p->op = rq->op;
	p->data_off = rq->data_off;
	p->data_len = rq->data_len;
	/* pairs with the load-acquire of ch->seq in reap and inflight */
	smp_store_release(&ch->seq, seq + 1);
	/* pairs with the load-acquire of sq_head in cbdt_channel_peek() */
	smp_store_release(&ctrl->sq_head, (uint32_t)(seq + 1));
	/* pairs with the smp_mb() after the handler's sq_sleep store */
	smp_mb();
	cbdt_doorbell_ring(&ctrl->sq_sleep);
	return 0;
}

/* seq and crc say whether the ce is the handler's answer for this slot. */
static bool ce_ok(const struct cbdt_channel *ch, const struct cbdt_ce *ce,
		  uint64_t seq)
{
	if ((uint32_t)ce->seq != (uint32_t)seq)
		return false;
	return !(ch->g.flags & CBDT_F_ENTRY_CRC) || ce->crc == ce_crc(ce);
}

int cbdt_channel_reap(struct cbdt_channel *ch, struct cbdt_completion *c)
{
	struct cbdt_channel_ctrl *ctrl = ch->ctrl;
	const struct chan_pending *p;
	uint64_t reaped = ch->reaped; /* ours: only reap writes it */
	struct cbdt_ce ce;
	uint32_t head;
	int result;
	bool ok = false;

	if (ch->role != CBDT_CHANNEL_CLIENT)
		return -EINVAL;
	/* pairs with the store-release of cq_head in cbdt_channel_complete() */
	head = smp_load_acquire(&ctrl->cq_head);
	if (head == (uint32_t)reaped)
		return 0;
	/* A completion for nothing we submitted: the handler is broken.
	 * Pairs with the store-release of ch->seq in submit, which precedes
	 * the sq_head that the handler's completion follows. */
	if (smp_load_acquire(&ch->seq) == reaped)
		return -EBADMSG;
	p = &ch->pending[reaped & (ch->g.se_count - 1)];
	for (int i = 0; i < 2 && !(ok && ce.req_id == p->req_id); i++) {
		if (i) /* re-read: same pairing as above */
			(void)smp_load_acquire(&ctrl->cq_head);
		memcpy(&ce, &ch->kcq[reaped & (ch->g.ce_count - 1)],
		       sizeof(ce));
		ok = ce_ok(ch, &ce, reaped);
	}
	if (!ok)
		return -EBADMSG;
	/* A genuine ce for another req_id: the handler read a damaged se.
	 * We know which request sits at this seq; it failed. */
	result = ce.req_id == p->req_id ? errno_sane(ce.result) : -EIO;
	if (!result && p->op == CBDT_OP_READ &&
	    (ch->g.flags & CBDT_F_DATA_CRC) &&
	    data_crc(ch, p->data_off, p->data_len) != ce.data_crc &&
	    data_crc(ch, p->data_off, p->data_len) != ce.data_crc)
		result = -EBADMSG; /* this request fails, not the channel */
	c->req_id = p->req_id;
	c->seq = reaped;
	c->result = result;
	c->data_crc = ce.data_crc;
	/* pairs with the load-acquire of ch->reaped in submit and inflight */
	smp_store_release(&ch->reaped, reaped + 1);
	/* pairs with the load-acquire of cq_tail in cbdt_channel_complete() */
	smp_store_release(&ctrl->cq_tail, (uint32_t)(reaped + 1));
	return 1;
}

uint32_t cbdt_channel_inflight(const struct cbdt_channel *ch)
{
	/* reaped first: it never passes seq, so the difference cannot wrap.
	 * Both pair with the store-releases in submit and reap. */
	uint64_t reaped = smp_load_acquire(&ch->reaped);

	return (uint32_t)(smp_load_acquire(&ch->seq) - reaped);
}

/*
 * Sleep only after announcing it and re-checking: the handler publishes
 * cq_head, smp_mb(), then looks at cq_sleep; we store cq_sleep, smp_mb(),
 * then look at cq_head.  One of the two sees the other.
 */
void cbdt_channel_client_wait(struct cbdt_channel *ch, struct cbdt_wait *w)
{
	struct cbdt_channel_ctrl *ctrl = ch->ctrl;

	if (!cbdt_wait_would_sleep(w)) {
		cbdt_wait_idle(w, NULL);
		return;
	}
	/* read by the handler after its smp_mb() in complete */
	WRITE_ONCE(ctrl->cq_sleep, 1U);
	/* pairs with the smp_mb() in cbdt_channel_complete() */
	smp_mb();
	/* pairs with the store-release of cq_head in cbdt_channel_complete() */
	if (smp_load_acquire(&ctrl->cq_head) == (uint32_t)ch->reaped)
		cbdt_wait_idle(w, &ctrl->cq_sleep);
	/* Awake (or never slept): spare the handler a futex wake per ce. */
	WRITE_ONCE(ctrl->cq_sleep, 0U);
}

void cbdt_channel_client_close(struct cbdt_channel *ch)
{
	/* pairs with the load-acquire in cbdt_channel_client_state() */
	smp_store_release(&ch->ctrl->client_state,
			  (uint32_t)CBDT_CLIENT_CLOSING);
	/* pairs with the smp_mb() after the handler's sq_sleep store */
	smp_mb();
	cbdt_doorbell_ring(&ch->ctrl->sq_sleep);
}

/* ---- handler side ---- */

static bool se_ok(const struct cbdt_channel *ch, const struct cbdt_se *se)
{
	if ((uint32_t)se->seq != ch->sq_tail)
		return false;
	return !(ch->g.flags & CBDT_F_ENTRY_CRC) || se->crc == se_crc(se);
}

int cbdt_channel_peek(struct cbdt_channel *ch, struct cbdt_request *rq)
{
	struct cbdt_channel_ctrl *ctrl = ch->ctrl;
	struct cbdt_se se;
	bool ok = false;

	if (ch->role != CBDT_CHANNEL_HANDLER)
		return -EINVAL;
	/* pairs with the store-release of sq_head in cbdt_channel_submit() */
	if (smp_load_acquire(&ctrl->sq_head) == ch->sq_tail)
		return 0;
	for (int i = 0; i < 2 && !ok; i++) {
		if (i) /* re-read: same pairing as above */
			(void)smp_load_acquire(&ctrl->sq_head);
		memcpy(&se, &ch->ksq[ch->sq_tail & (ch->g.se_count - 1)],
		       sizeof(se));
		ok = se_ok(ch, &se);
	}
	rq->op = se.op;
	rq->flags = se.flags;
	/* A bad entry is still completed, under the seq the client expects. */
	rq->seq = ok ? se.seq : (ch->h_seq & CHAN_SEQ_HI) | ch->sq_tail;
	rq->req_id = se.req_id;
	rq->offset = se.offset;
	rq->len = se.len;
	rq->data_off = se.data_off;
	rq->data_len = se.data_len;
	rq->data_crc = se.data_crc;
	ch->peeked = true;
	return ok ? 1 : -EBADMSG;
}

int cbdt_channel_validate(const struct cbdt_channel *ch,
			  const struct cbdt_request *rq, uint64_t dev_size)
{
	struct cbdt_se se;
	int ret;

	se_from_request(&se, rq);
	ret = cbdt_se_validate(&se, &ch->g, dev_size);
	if (ret)
		return ret;
	if (rq->op == CBDT_OP_WRITE && (ch->g.flags & CBDT_F_DATA_CRC) &&
	    data_crc(ch, rq->data_off, rq->data_len) != rq->data_crc &&
	    data_crc(ch, rq->data_off, rq->data_len) != rq->data_crc)
		return -EBADMSG;
	return 0;
}

int cbdt_channel_complete(struct cbdt_channel *ch,
			  const struct cbdt_request *rq, int result)
{
	struct cbdt_channel_ctrl *ctrl = ch->ctrl;
	struct cbdt_ce ce = {0};

	if (ch->role != CBDT_CHANNEL_HANDLER || !ch->peeked ||
	    (uint32_t)rq->seq != ch->sq_tail)
		return -EINVAL;
	/* pairs with the store-release of cq_tail in cbdt_channel_reap() */
	if (ch->cq_head - smp_load_acquire(&ctrl->cq_tail) >= ch->g.ce_count)
		return -EAGAIN;
	ce.result = errno_sane(result);
	ce.seq = rq->seq;
	ce.req_id = rq->req_id;
	if (!ce.result && rq->op == CBDT_OP_READ &&
	    (ch->g.flags & CBDT_F_DATA_CRC) &&
	    extent_ok(ch, rq->data_off, rq->data_len))
		ce.data_crc = data_crc(ch, rq->data_off, rq->data_len);
	if (ch->g.flags & CBDT_F_ENTRY_CRC)
		ce.crc = ce_crc(&ce);
	memcpy(&ch->kcq[ch->cq_head & (ch->g.ce_count - 1)], &ce, sizeof(ce));
	ch->cq_head++;
	/* pairs with the load-acquire of cq_head in cbdt_channel_reap() */
	smp_store_release(&ctrl->cq_head, ch->cq_head);
	ch->sq_tail++;
	/* pairs with the load-acquire of sq_tail in cbdt_channel_submit()
	 * and in the recovery of the next handler's open */
	smp_store_release(&ctrl->sq_tail, ch->sq_tail);
	ch->h_seq = rq->seq + 1;
	ch->peeked = false;
	/* pairs with the smp_mb() after the client's cq_sleep store */
	smp_mb();
	cbdt_doorbell_ring(&ctrl->cq_sleep);
	return 0;
}

/* The mirror of cbdt_channel_client_wait() on sq_head / sq_sleep. */
void cbdt_channel_handler_wait(struct cbdt_channel *ch, struct cbdt_wait *w)
{
	struct cbdt_channel_ctrl *ctrl = ch->ctrl;

	if (!cbdt_wait_would_sleep(w)) {
		cbdt_wait_idle(w, NULL);
		return;
	}
	/* read by the client after its smp_mb() in submit / client_close */
	WRITE_ONCE(ctrl->sq_sleep, 1U);
	/* pairs with the smp_mb() in submit and in client_close */
	smp_mb();
	/* pairs with the store-release of sq_head in submit and of
	 * client_state in client_close */
	if (smp_load_acquire(&ctrl->sq_head) == ch->sq_tail &&
	    smp_load_acquire(&ctrl->client_state) == CBDT_CLIENT_OPEN)
		cbdt_wait_idle(w, &ctrl->sq_sleep);
	WRITE_ONCE(ctrl->sq_sleep, 0U);
}

void cbdt_channel_handler_detach(struct cbdt_channel *ch)
{
	/* pairs with the client's / janitor's load-acquire of handler_state */
	smp_store_release(&ch->ctrl->handler_state,
			  (uint32_t)CBDT_HANDLER_DETACHED);
}

uint32_t cbdt_channel_client_state(const struct cbdt_channel *ch)
{
	/* pairs with the store-release in client_close (and init's magic) */
	return smp_load_acquire(&ch->ctrl->client_state);
}

uint32_t cbdt_channel_handler_state(const struct cbdt_channel *ch)
{
	/* pairs with the handler's store-release at attach and detach */
	return smp_load_acquire(&ch->ctrl->handler_state);
}
