/* SPDX-License-Identifier: MIT */
/*
 * The handler side of a channel, once for every server (cbd-backend's
 * handlers, cbd-bench's null handler, the tests): take requests in ring
 * order, check each one, run it through the server's ops, complete it,
 * wait adaptively when idle, and stop on the rules that make it safe to:
 * the client closed the channel, the segment moved on (it may be someone
 * else's now), or the server's own check says so.  One thread per
 * channel; the ops run on it.
 */
#include <errno.h>

#include "barrier.h"
#include "cbdt.h"

/* A busy handler looks at the ring's state every so many requests. */
#define SERVE_CHECK_EVERY 64U

/* Why to stop, before anything else: segment gone, client closing. */
static int serve_state(struct cbdt_channel *ch,
		       const struct cbdt_serve_cfg *cfg,
		       const struct cbdt_handler_ops *ops, void *arg)
{
	int why;

	if (cfg->seg_owner &&
	    cbdt_slot_owner(cbdt_channel_transport(ch), CBDT_OBJ_SEGMENT,
			    cbdt_channel_seg_id(ch)) != cfg->seg_owner)
		return CBDT_SERVE_SEG_GONE;
	if (ops->check && (why = ops->check(arg)) != 0)
		return why;
	if (cbdt_channel_client_state(ch) != CBDT_CLIENT_OPEN)
		return CBDT_SERVE_CLOSING;
	return 0;
}

static enum cbdt_stat_err err_class(int result)
{
	switch (-result) {
	case EIO:
		return CBDT_ERR_EIO;
	case EINVAL:
		return CBDT_ERR_EINVAL;
	case EBADMSG:
		return CBDT_ERR_EBADMSG;
	case EROFS:
		return CBDT_ERR_EROFS;
	case ENOSPC:
		return CBDT_ERR_ENOSPC;
	default:
		return CBDT_ERR_OTHER;
	}
}

/*
 * Count a finished request in the channel's counters (we are their one
 * writer): op, bytes, errors, and the time it took us, in powers of two
 * of microseconds.
 */
static void serve_count(struct cbdt_channel *ch, const struct cbdt_request *rq,
			int result, uint64_t ns)
{
	struct cbdt_chan_stats *st = &cbdt_channel_ctrl(ch)->stats;
	unsigned op = result == -EINVAL && (!rq->op || rq->op > CBDT_OP_MAX) ?
			      0 :
			      rq->op;
	uint64_t us = ns / 1000;
	unsigned b = 0;

	if (op >= CBDT_STAT_OPS)
		op = 0;
	while (us && b < CBDT_LAT_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	WRITE_ONCE(st->ops[op], st->ops[op] + 1);
	if (!result && op)
		WRITE_ONCE(st->bytes[op], st->bytes[op] + rq->len);
	if (result) {
		enum cbdt_stat_err e = err_class(result);

		WRITE_ONCE(st->errors[e], st->errors[e] + 1);
	}
	WRITE_ONCE(st->lat[b], st->lat[b] + 1);
}

/* Validate and execute one request: its result. */
static int serve_exec(struct cbdt_channel *ch, const struct cbdt_serve_cfg *cfg,
		      const struct cbdt_handler_ops *ops, void *arg,
		      const struct cbdt_request *rq)
{
	void *data = NULL;
	int ret;

	/* What this channel acknowledged died with a crashed host. */
	if (cbdt_channel_lost(ch))
		return -EIO;
	ret = cbdt_channel_validate(ch, rq, cfg->dev_size);
	if (ret)
		return ret;
	if (rq->data_len)
		data = cbdt_channel_data(ch, rq->data_off);
	return ops->exec(arg, rq, data);
}

/*
 * Post the completion, waiting while the completion ring is full.  A
 * freed segment may already be someone else's channel: never write it.
 */
static int serve_complete(struct cbdt_channel *ch,
			  const struct cbdt_serve_cfg *cfg,
			  const struct cbdt_handler_ops *ops, void *arg,
			  const struct cbdt_request *rq, int result,
			  struct cbdt_wait *w)
{
	int why;

	for (;;) {
		if (cfg->seg_owner &&
		    cbdt_slot_owner(cbdt_channel_transport(ch),
				    CBDT_OBJ_SEGMENT,
				    cbdt_channel_seg_id(ch)) != cfg->seg_owner)
			return CBDT_SERVE_SEG_GONE;
		if (cbdt_channel_complete(ch, rq, result) != -EAGAIN)
			return 0;
		/* Even on stop: a client that no longer reaps must not hang
		 * us; the request stays in the ring for the next handler. */
		why = serve_state(ch, cfg, ops, arg);
		if (why)
			return why;
		cbdt_wait_idle(w, NULL);
	}
}

int cbdt_serve(struct cbdt_channel *ch, const struct cbdt_serve_cfg *cfg,
	       const struct cbdt_handler_ops *ops, void *arg)
{
	unsigned since_check = 0;
	struct cbdt_request rq;
	uint64_t t0;
	struct cbdt_wait w;
	int ret, why;

	if (!ops || !ops->exec)
		return -EINVAL;
	cbdt_wait_init(&w, &cfg->wait);
	/* Never start on a segment that is no longer ours. */
	why = serve_state(ch, cfg, ops, arg);
	if (why)
		return why;
	for (;;) {
		ret = cbdt_channel_peek(ch, &rq);
		if (ret == 0) {
			why = serve_state(ch, cfg, ops, arg);
			if (why)
				return why;
			since_check = 0;
			cbdt_channel_handler_wait(ch, &w);
			continue;
		}
		cbdt_wait_reset(&w);
		t0 = cbdt_now_ns();
		/* peek < 0: a torn or stale entry, completed with that error */
		if (ret > 0)
			ret = serve_exec(ch, cfg, ops, arg, &rq);
		if (ops->done)
			ops->done(arg, &rq, ret);
		/* before the completion, so a reader that sees it done sees
		 * it counted */
		serve_count(ch, &rq, ret, cbdt_now_ns() - t0);
		why = serve_complete(ch, cfg, ops, arg, &rq, ret, &w);
		if (why)
			return why;
		/* a client at QD1 sends the next one right after this */
		cbdt_wait_expect(&w, cbdt_channel_lone(ch));
		/* The request in hand is done: a stop takes effect now;
		 * the ring's own state is looked at every so often. */
		if (++since_check >= SERVE_CHECK_EVERY) {
			since_check = 0;
			why = serve_state(ch, cfg, ops, arg);
		} else {
			why = ops->check ? ops->check(arg) : 0;
		}
		if (why)
			return why;
	}
}
