/* SPDX-License-Identifier: MIT */
/*
 * cbd-testclient's request engine: spreads requests over the blkdev's
 * channels (one libcbdt queue each), reaps their completions, and fails
 * loudly on any completion that answers no request in flight.  Main
 * thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "testclient.h"

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Each aligned 8-byte word of the device has its own value per seed, so an
 * unaligned write of one seed next to another is told apart. */
static uint64_t pattern_word(uint64_t word, uint64_t seed)
{
	return splitmix64(seed * 0x100000001b3ULL ^ word);
}

uint8_t tc_pattern_byte(uint64_t off, uint64_t seed)
{
	return (uint8_t)(pattern_word(off >> 3, seed) >> ((off & 7) * 8));
}

void tc_pattern_fill(void *buf, uint64_t off, uint64_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		p[i] = tc_pattern_byte(off + i, seed);
	for (; i + 8 <= len; i += 8) {
		uint64_t v = pattern_word((off + i) >> 3, seed);

		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = tc_pattern_byte(off + i, seed);
}

/* The queues' callback: one request answered, its slot given back. */
static void tc_done(void *arg, const struct cbdt_queue_done *d)
{
	struct tc *tc = arg;
	struct tc_io *io = d->cookie;
	uint64_t lat;

	if (d->answer) {
		if (!d->result && d->op == CBDT_OP_READ && io->rbuf)
			memcpy(io->rbuf, d->data, d->len);
		tc->last_progress_ns = cbdt_now_ns();
		lat = tc->last_progress_ns - io->start_ns;
		if (lat > tc->max_lat_ns)
			tc->max_lat_ns = lat;
		if (io->done)
			io->done(tc, io, d->result);
	}
	if (d->last) {
		tc->inflight--;
		free(io);
	}
}

int tc_queues_open(struct tc *tc)
{
	for (unsigned q = 0; q < tc->b->queues; q++) {
		int ret = cbdt_queue_new(tc->b->ch[q], tc_done, tc, &tc->q[q]);

		if (ret) {
			tc_queues_close(tc);
			return ret;
		}
	}
	return 0;
}

void tc_queues_close(struct tc *tc)
{
	for (unsigned q = 0; q < CBDT_QUEUES_MAX; q++) {
		cbdt_queue_free(tc->q[q]);
		tc->q[q] = NULL;
	}
}

int tc_poll(struct tc *tc)
{
	int n = 0, ret;

	for (unsigned q = 0; q < tc->b->queues; q++) {
		uint32_t strays = 0;

		ret = cbdt_queue_reap(tc->q[q], UINT32_MAX, &strays);
		if (strays) {
			log_err("queue %u: %u completions of requests not in flight "
				"(duplicated or stray)",
				q, strays);
			if (!tc->fatal)
				tc->fatal = -EBADMSG;
		}
		if (ret < 0) {
			log_err("queue %u: bad completion entry: %s", q,
				strerror(-ret));
			if (!tc->fatal)
				tc->fatal = ret;
		} else {
			n += ret;
		}
	}
	if (tc->fatal)
		return tc->fatal;
	return n;
}

int tc_wait_some(struct tc *tc)
{
	int n;

	for (;;) {
		n = tc_poll(tc);
		if (n) {
			if (n > 0)
				cbdt_wait_reset(&tc->w);
			return n;
		}
		if (!tc->inflight)
			return 0;
		if (tc->io_timeout_ms &&
		    cbdt_now_ns() - tc->last_progress_ns >
			    (uint64_t)tc->io_timeout_ms * 1000000ULL) {
			log_err("no completion for %u ms with %u requests in flight",
				tc->io_timeout_ms, tc->inflight);
			return -ETIMEDOUT;
		}
		/* With one queue its doorbell can wake us; with several, the
		 * back-off bounds the latency. */
		if (tc->b->queues == 1)
			(void)cbdt_queue_idle(tc->q[0], &tc->w);
		else
			cbdt_wait_idle(&tc->w, NULL);
	}
}

int tc_drain(struct tc *tc)
{
	while (tc->inflight) {
		int ret = tc_wait_some(tc);

		if (ret < 0)
			return ret;
	}
	return tc->fatal;
}

/* Try each queue once, round robin: 0, or -EAGAIN if none has room. */
static int tc_try_submit(struct tc *tc, const struct cbdt_queue_req *r)
{
	unsigned nq = tc->b->queues;

	for (unsigned i = 0; i < nq; i++) {
		unsigned q = (tc->next_q + i) % nq;
		int ret = cbdt_queue_submit(tc->q[q], r);

		if (ret == -EAGAIN)
			continue;
		if (!ret)
			tc->next_q = (q + 1) % nq;
		return ret;
	}
	return -EAGAIN;
}

int tc_submit(struct tc *tc, uint16_t op, uint16_t flags, uint64_t off,
	      uint32_t len, const void *wdata, void *rbuf, tc_done_fn done,
	      const uint64_t user[3])
{
	struct cbdt_queue_req r = {.op = op,
				   .flags = flags,
				   .offset = off,
				   .len = len,
				   .wbuf = wdata};
	struct tc_io *io;
	int ret;

	if (len > TC_CHUNK)
		return -E2BIG;
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->rbuf = rbuf;
	io->done = done;
	if (user)
		memcpy(io->user, user, sizeof(io->user));
	io->start_ns = cbdt_now_ns();
	r.cookie = io;
	for (;;) {
		if (tc->fatal) {
			ret = tc->fatal;
			break;
		}
		ret = tc->inflight < TC_IOS ? tc_try_submit(tc, &r) : -EAGAIN;
		if (ret != -EAGAIN)
			break;
		ret = tc_wait_some(tc);
		if (ret < 0)
			break;
	}
	if (ret) {
		free(io);
		return ret;
	}
	if (!tc->inflight++)
		tc->last_progress_ns = io->start_ns;
	return 0;
}

/* tc_sync's requests report into user[0], a pointer to the first error. */
static void tc_sync_done(struct tc *tc, const struct tc_io *io, int result)
{
	int *first = (int *)(uintptr_t)io->user[0];

	if (result && !*first)
		*first = result;
}

int tc_sync(struct tc *tc, uint16_t op, uint16_t flags, uint64_t off,
	    uint64_t len, const void *wdata, void *rbuf)
{
	uint64_t user[3] = {0};
	int first = 0, ret = 0, drained;
	uint64_t done = 0;

	user[0] = (uintptr_t)&first;
	/* FLUSH has no range; DISCARD and WRITE_ZEROES are split like data
	 * so that no single request exceeds what a handler handles at once. */
	do {
		uint32_t n = (uint32_t)(len - done < TC_CHUNK ? len - done :
								TC_CHUNK);

		ret = tc_submit(tc, op, flags, off + done, n,
				wdata ? (const uint8_t *)wdata + done : NULL,
				rbuf ? (uint8_t *)rbuf + done : NULL,
				tc_sync_done, user);
		if (ret)
			break;
		done += n;
	} while (done < len);
	/* Requests already in flight must finish before their buffers go. */
	drained = tc_drain(tc);
	if (drained && !ret)
		ret = drained;
	return ret ? ret : first;
}
