/* SPDX-License-Identifier: MIT */
/*
 * Handler threads: one per served channel, each running libcbdt's
 * cbdt_serve() loop with the backing store as its ops.  A handler thread
 * owns its channel handle; the service starts, stops and joins handlers
 * under svc->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "barrier.h"
#include "log.h"
#include "util.h"

/* How long an idle handler sleeps on the doorbell when the client shares
 * our kernel: every submit rings it, so only a stop or a dead peer waits
 * this out (20 wake-ups a second per idle handler instead of 200). */
#define HANDLER_DOORBELL_MAX_US 50000U
/* Per-handler error lines before going quiet (counted, summed at exit). */
#define HANDLER_ERR_LOG_MAX 8U

/* Why a handler stopped: cbdt_serve's reasons and our own. */
enum handler_exit {
	HANDLER_CLOSING = CBDT_SERVE_CLOSING,	/* client asked us to detach */
	HANDLER_SEG_GONE = CBDT_SERVE_SEG_GONE, /* not ours to touch */
	HANDLER_STOP = CBDT_SERVE_USER, /* service stop, backend removed */
	HANDLER_LOST,			/* our backend slot was taken over */
};

static const char *exit_why(int why)
{
	switch (why) {
	case HANDLER_CLOSING:
		return "client closed the channel";
	case HANDLER_SEG_GONE:
		return "segment was freed";
	case HANDLER_STOP:
		return "stopping";
	case HANDLER_LOST:
		return "backend slot was taken over";
	default:
		return "error";
	}
}

static const char *op_name(uint16_t op)
{
	static const char *const names[] = {
		[CBDT_OP_READ] = "READ",
		[CBDT_OP_WRITE] = "WRITE",
		[CBDT_OP_FLUSH] = "FLUSH",
		[CBDT_OP_DISCARD] = "DISCARD",
		[CBDT_OP_WRITE_ZEROES] = "WRITE_ZEROES",
	};

	return op && op <= CBDT_OP_MAX ? names[op] : "op?";
}

/* ops->check: cheap, after every request and while idle. */
static int handler_check(void *arg)
{
	struct handler *h = arg;

	/* Private flag written by the service thread under svc->lock. */
	if (READ_ONCE(h->stop))
		return HANDLER_STOP;
	if (cbdt_slot_owner(h->svc->t, CBDT_OBJ_BACKEND, h->b->id) !=
	    h->b->owner)
		return HANDLER_LOST;
	return 0;
}

static int handler_do(struct store *s, const struct cbdt_request *rq,
		      void *data)
{
	int ret;

	switch (rq->op) {
	case CBDT_OP_READ:
		return store_read(s, data, rq->offset, rq->len);
	case CBDT_OP_WRITE:
		ret = store_write(s, data, rq->offset, rq->len);
		if (!ret && (rq->flags & CBDT_SE_FUA))
			ret = store_flush(s);
		return ret;
	case CBDT_OP_FLUSH:
		return store_flush(s);
	case CBDT_OP_DISCARD:
		ret = store_discard(s, rq->offset, rq->len);
		break;
	case CBDT_OP_WRITE_ZEROES:
		ret = store_write_zeroes(s, rq->offset, rq->len);
		break;
	default:
		return -EINVAL;
	}
	/* FUA on a discard or zeroing: durable before it completes. */
	if (!ret && (rq->flags & CBDT_SE_FUA))
		ret = store_flush(s);
	return ret;
}

/* ops->exec: the backing store (or the cache in front of it) does the
 * work. */
static int handler_exec(void *arg, const struct cbdt_request *rq, void *data)
{
	struct handler *h = arg;
	int ret;

	if (h->cache_head)
		return cache_request(h->b->cache, h->cache_head, rq, data);
	ret = handler_do(&h->b->store, rq, data);

	/* Writeback: what changed may be in our page cache only, until a
	 * flush (or FUA) through this channel made all of it durable. */
	if (!ret && h->b->store.writeback && rq->op != CBDT_OP_READ)
		cbdt_channel_handler_unflushed(
			h->ch,
			rq->op != CBDT_OP_FLUSH && !(rq->flags & CBDT_SE_FUA));
	return ret;
}

/* ops->done: count, and log the first few errors. */
static void handler_done(void *arg, const struct cbdt_request *rq, int ret)
{
	struct handler *h = arg;

	h->nr_requests++;
	if (!ret)
		return;
	h->nr_errors++;
	if (h->nr_errors > HANDLER_ERR_LOG_MAX)
		return;
	/* Bad entries and read-only refusals are the client's doing. */
	if (ret == -EINVAL || ret == -EBADMSG || ret == -EROFS)
		log_dbg("backend %s: segment %u: request %" PRIu64
			": %s %u@%" PRIu64 ": %s",
			h->b->conf.name, h->seg_id, rq->req_id, op_name(rq->op),
			rq->len, rq->offset, strerror(-ret));
	else
		log_warn("backend %s: segment %u: request %" PRIu64
			 ": %s %u@%" PRIu64 ": %s",
			 h->b->conf.name, h->seg_id, rq->req_id,
			 op_name(rq->op), rq->len, rq->offset, strerror(-ret));
	if (h->nr_errors == HANDLER_ERR_LOG_MAX)
		log_warn(
			"backend %s: segment %u: further errors are only counted",
			h->b->conf.name, h->seg_id);
}

static const struct cbdt_handler_ops handler_ops = {
	.exec = handler_exec,
	.check = handler_check,
	.done = handler_done,
};

/*
 * A client on this kernel rings our futex doorbell on every submit, so an
 * idle handler may sleep long between looks; a client on another host
 * cannot, and the plain sleep cap bounds how late we notice its requests.
 */
static bool handler_client_local(const struct handler *h)
{
	struct cbdt *t = h->svc->t;
	struct cbdt_segment_rec srec;
	struct cbdt_blkdev_rec brec;

	if (cbdt_segment_read(t, h->seg_id, &srec) ||
	    cbdt_blkdev_read(t, srec.blkdev_id, &brec))
		return false;
	return cbdt_host_same_kernel(t, h->svc->host_id, brec.host_id);
}

static int handler_serve(struct handler *h)
{
	struct cbdt_serve_cfg cfg = {
		.dev_size = h->b->store.size,
		.seg_owner = h->seg_owner,
		/* poll_us (cbd.ini): short by default, so that on a small
		 * machine a polling handler does not take the CPU the client
		 * and its I/O need (docs/performance.md) */
		.wait = {.spin_ns = h->b->conf.poll_us * 1000U,
			 .spin_max_ns = h->b->conf.poll_max_us * 1000U},
	};

	if (handler_client_local(h))
		cfg.wait.doorbell_max_us = HANDLER_DOORBELL_MAX_US;
	return cbdt_serve(h->ch, &cfg, &handler_ops, h);
}

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	int why;

	why = handler_serve(h);
	/* Detach only from a channel that is still ours to write. */
	if (why == HANDLER_STOP || why == HANDLER_CLOSING)
		cbdt_channel_handler_detach(h->ch);
	cbdt_channel_close(h->ch);
	h->ch = NULL;
	cache_head_free(h->b->cache, h->cache_head);
	h->cache_head = NULL;
	if (why == HANDLER_LOST || why == HANDLER_SEG_GONE)
		log_warn("backend %s: segment %u: stopped serving: %s",
			 h->b->conf.name, h->seg_id, exit_why(why));
	log_info("backend %s: segment %u: detached (%s; %" PRIu64
		 " requests, %" PRIu64 " errors)",
		 h->b->conf.name, h->seg_id, exit_why(why), h->nr_requests,
		 h->nr_errors);
	/* Private flag; pairs with the load-acquire in handlers_reap(). */
	smp_store_release(&h->done, 1U);
	return NULL;
}

int handler_start(struct service *svc, struct backend *b, uint32_t seg_id,
		  uint64_t seg_owner, struct cbdt_channel *ch)
{
	struct handler *h;
	int ret;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->svc = svc;
	h->b = b;
	h->ch = ch;
	h->seg_id = seg_id;
	h->seg_owner = seg_owner;
	if (b->cache && !(h->cache_head = cache_head_new(b->cache))) {
		free(h);
		return -ENOMEM;
	}
	if (cbdt_channel_handler_adopt(ch, svc->boot_id))
		log_warn(
			"backend %s: segment %u: lost: writes acknowledged in writeback mode by a host that crashed were never flushed; failing its I/O with EIO until the client unmaps it",
			b->conf.name, seg_id);
	/* A memory store loses nothing when the client queues many requests
	 * on one handler (docs/performance.md, "Packing"); a cache in front
	 * may miss to a disk, so it does not say so. */
	cbdt_channel_handler_pack(ch, b->store.memory && !b->cache);
	ret = pthread_create(&h->thread, NULL, handler_main, h);
	if (ret) {
		cache_head_free(b->cache, h->cache_head);
		free(h);
		return -ret;
	}
	thread_name(h->thread, "handler-s%u", seg_id);
	h->next = b->handlers;
	b->handlers = h;
	b->nr_handlers++;
	svc->served[seg_id] = h;
	log_info("backend %s: segment %u: attached (handler %u of %u)",
		 b->conf.name, seg_id, b->nr_handlers, b->conf.handlers);
	return 0;
}

void handlers_reap(struct service *svc, struct backend *b)
{
	struct handler **pp = &b->handlers, *h;

	while ((h = *pp)) {
		/* Pairs with the store-release of done in handler_main(). */
		if (!smp_load_acquire(&h->done)) {
			pp = &h->next;
			continue;
		}
		pthread_join(h->thread, NULL);
		if (svc->served[h->seg_id] == h)
			svc->served[h->seg_id] = NULL;
		*pp = h->next;
		b->nr_handlers--;
		free(h);
	}
	if (b->nr_handlers < b->conf.handlers)
		b->cap_warned = false;
}

void handlers_stop(struct backend *b)
{
	struct handler *h;

	/* Private flag; handler threads poll it with READ_ONCE. */
	for (h = b->handlers; h; h = h->next)
		WRITE_ONCE(h->stop, 1U);
	while ((h = b->handlers)) {
		pthread_join(h->thread, NULL);
		b->handlers = h->next;
		b->nr_handlers--;
		free(h);
	}
}
