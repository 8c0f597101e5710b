/* SPDX-License-Identifier: MIT */
/*
 * Channel rings: data-area extents, entries and their checks, submit/reap
 * on the client, peek/validate/complete on the handler, doorbell-aware
 * waits, and the client and handler states.  Init and open (with handler
 * crash recovery) are in chan-ctrl.c.  One thread per side: the caller
 * serialises each side's calls (cbdt.h).
 */
#include <errno.h>
#include <string.h>

#include "barrier.h"
#include "cbdt.h"
#include "chan-alloc.h"
#include "chan-internal.h"

#define CHAN_SEQ_HI    (~(uint64_t)UINT32_MAX)
#define CHAN_ERRNO_MAX 4095

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
	/* A hint of the handler that completed it, from the line we just
	 * read cq_head from: any thread may look (cbdt_channel_packs). */
	WRITE_ONCE(ch->packs,
		   !!(READ_ONCE(ctrl->handler_flags) & CBDT_HF_PACK));
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

	/* the decision is made once: a step that set out to spin must not
	 * sleep because the spin phase ended meanwhile (unwakeable) */
	if (!cbdt_wait_would_sleep(w)) {
		cbdt_wait_spin(w);
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

	/* the decision is made once: a step that set out to spin must not
	 * sleep because the spin phase ended meanwhile (unwakeable) */
	if (!cbdt_wait_would_sleep(w)) {
		cbdt_wait_spin(w);
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
