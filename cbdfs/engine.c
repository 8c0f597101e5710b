/* SPDX-License-Identifier: MIT */
/*
 * cbdfs request engine: FUSE reads, writes, flushes and trims become
 * channel commands (split when larger than a command may be), and the
 * answers to FUSE once the backend completed them.
 *
 * Concurrency: any FUSE worker submits (queue.c serialises the channel's
 * producer side) and returns without waiting; the queue's reaper thread
 * answers.  A split request's parent is shared by its commands through
 * atomic counters; the write epochs that order fsync are under bd->wlock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cbdfs.h"
#include "log.h"
#include "util.h"

#define TRIM_CHUNK	(1U << 30)	/* DISCARD/WRITE_ZEROES per command */

/* A request split into several commands (larger than max_chunk). */
struct cbdfs_io {
	fuse_req_t req;
	uint16_t op;
	int remaining;		/* commands + the submitter's bias; atomic */
	int error;		/* first errno; atomic */
	uint64_t offset;
	size_t len;
	char *buf;		/* READ: the data, assembled */
};

static int errno_of(int result)
{
	return result < 0 && result > -4096 ? -result : EIO;
}

/* ---- write epochs: fsync covers every write submitted before it ---- */

uint8_t cbdfs_wepoch_get(struct cbdfs_bdev *bd)
{
	uint8_t p;

	pthread_mutex_lock(&bd->wlock);
	p = (uint8_t)(bd->wepoch & 1);
	bd->wcount[p]++;
	pthread_mutex_unlock(&bd->wlock);
	return p;
}

void cbdfs_wepoch_put(struct cbdfs_bdev *bd, uint8_t p)
{
	pthread_mutex_lock(&bd->wlock);
	if (--bd->wcount[p] == 0)
		pthread_cond_broadcast(&bd->wdone);
	pthread_mutex_unlock(&bd->wlock);
}

/*
 * Close the current epoch and wait until its writes completed.  Callers
 * hold flush_lock, so the parity being drained is never reused meanwhile.
 */
/* Writes on a broken queue were failed with EIO and never complete. */
static bool bdev_any_broken(struct cbdfs_bdev *bd)
{
	for (unsigned i = 0; i < bd->nq; i++)
		if (cbdfs_queue_broken(&bd->q[i]))
			return true;
	return false;
}

static int wepoch_drain(struct cbdfs_bdev *bd)
{
	uint64_t deadline = bd->fs->cfg.timeout_s ?
				    cbdt_now_ns() + cbdfs_timeout_ns(bd->fs) : 0;
	int ret = 0;
	uint8_t p;

	pthread_mutex_lock(&bd->wlock);
	p = (uint8_t)(bd->wepoch++ & 1);
	/* A broken queue's writes never come back to lower the count: the
	 * fsync fails (within a wait slice) instead of waiting forever. */
	while (bd->wcount[p] && !ret)
		ret = bdev_any_broken(bd) ? -EIO :
		      cbdfs_cond_wait_until(bd->fs, &bd->wdone, &bd->wlock,
					    deadline);
	pthread_mutex_unlock(&bd->wlock);
	return ret ? -EIO : 0;
}

/* ---- answering ------------------------------------------------------ */

static void io_set_error(struct cbdfs_io *io, int e)
{
	int zero = 0;

	__atomic_compare_exchange_n(&io->error, &zero, e, false,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* Drop @n references; the last one answers and frees the request. */
static void io_put(struct cbdfs_io *io, int n)
{
	int e;

	if (__atomic_sub_fetch(&io->remaining, n, __ATOMIC_ACQ_REL) != 0)
		return;
	e = __atomic_load_n(&io->error, __ATOMIC_RELAXED);
	if (e)
		fuse_reply_err(io->req, e);
	else if (io->op == CBDT_OP_READ)
		fuse_reply_buf(io->req, io->buf, io->len);
	else if (io->op == CBDT_OP_WRITE)
		fuse_reply_write(io->req, io->len);
	else
		fuse_reply_err(io->req, 0);
	free(io->buf);
	free(io);
}

/* Answer for one finished command (the queue's reaper). */
void cbdfs_cmd_answer(struct cbdfs_queue *q, struct cbdfs_cmd *c, int result)
{
	const void *data;

	if (c->io) {
		if (result < 0) {
			io_set_error(c->io, errno_of(result));
		} else if (c->op == CBDT_OP_READ) {
			data = cbdt_channel_data(q->ch, c->data_off);
			memcpy(c->io->buf + (c->offset - c->io->offset), data,
			       c->len);
		}
		io_put(c->io, 1);
		return;
	}
	if (result < 0) {
		fuse_reply_err(c->req, errno_of(result));
		return;
	}
	switch (c->op) {
	case CBDT_OP_READ:
		/* one copy: the shared data area straight to the kernel */
		fuse_reply_buf(c->req, cbdt_channel_data(q->ch, c->data_off),
			       c->len);
		break;
	case CBDT_OP_WRITE:
		fuse_reply_write(c->req, c->len);
		break;
	default:
		fuse_reply_err(c->req, 0);
	}
}

static struct cbdfs_queue *queue_pick(struct cbdfs_bdev *bd)
{
	unsigned i = __atomic_fetch_add(&bd->rr, 1, __ATOMIC_RELAXED);

	return &bd->q[i % bd->nq];
}

/*
 * Submit [off, off + len) as one command, or as several on one queue with
 * a parent that answers when the last one is done.
 */
static void engine_submit(struct cbdfs_bdev *bd, fuse_req_t req, uint16_t op,
			  uint64_t off, uint64_t len, const char *wbuf)
{
	bool has_data = op == CBDT_OP_READ || op == CBDT_OP_WRITE;
	uint64_t chunk = has_data ? bd->max_chunk : TRIM_CHUNK, done;
	struct cbdfs_queue *q = queue_pick(bd);
	struct cbdfs_cmd_desc d = { .op = op, .offset = off, .wbuf = wbuf };
	struct cbdfs_io *io;
	int ret, n;

	if (len <= chunk) {
		d.len = (uint32_t)len;
		d.req = req;
		ret = cbdfs_queue_submit(q, &d);
		if (ret)
			fuse_reply_err(req, errno_of(ret));
		return;
	}
	io = calloc(1, sizeof(*io));
	if (io && op == CBDT_OP_READ)
		io->buf = malloc(len);
	if (!io || (op == CBDT_OP_READ && !io->buf)) {
		free(io);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = (int)((len + chunk - 1) / chunk);
	io->req = req;
	io->op = op;
	io->offset = off;
	io->len = len;
	io->remaining = n + 1;
	for (done = 0; done < len; done += d.len, n--) {
		d.offset = off + done;
		d.len = (uint32_t)MIN(chunk, len - done);
		d.wbuf = wbuf ? wbuf + done : NULL;
		d.io = io;
		ret = cbdfs_queue_submit(q, &d);
		if (ret) {
			io_set_error(io, errno_of(ret));
			break;
		}
	}
	/* commands never queued, plus the submitter's own reference */
	io_put(io, n + 1);
}

void cbdfs_engine_read(struct cbdfs_bdev *bd, fuse_req_t req, uint64_t off,
		       size_t len)
{
	if (off >= bd->size || len == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	engine_submit(bd, req, CBDT_OP_READ, off, MIN(len, bd->size - off),
		      NULL);
}

void cbdfs_engine_write(struct cbdfs_bdev *bd, fuse_req_t req, const char *buf,
			uint64_t off, size_t len)
{
	if (bd->ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (len == 0) {
		fuse_reply_write(req, 0);
		return;
	}
	/* a block device: no growing; a write across the end is short */
	if (off >= bd->size) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	engine_submit(bd, req, CBDT_OP_WRITE, off, MIN(len, bd->size - off),
		      buf);
}

void cbdfs_engine_flush(struct cbdfs_bdev *bd, fuse_req_t req)
{
	int ret;

	if (bd->ro) {
		fuse_reply_err(req, 0);
		return;
	}
	pthread_mutex_lock(&bd->flush_lock);
	ret = wepoch_drain(bd);
	pthread_mutex_unlock(&bd->flush_lock);
	if (ret) {
		fuse_reply_err(req, EIO);
		return;
	}
	engine_submit(bd, req, CBDT_OP_FLUSH, 0, 0, NULL);
}

void cbdfs_engine_trim(struct cbdfs_bdev *bd, fuse_req_t req, uint16_t op,
		       uint64_t off, uint64_t len)
{
	if (bd->ro) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off >= bd->size || len == 0) {
		fuse_reply_err(req, 0);
		return;
	}
	engine_submit(bd, req, op, off, MIN(len, bd->size - off), NULL);
}
