/* SPDX-License-Identifier: MIT */
/*
 * cbd-testclient's request engine: spreads requests over the blkdev's
 * channels, reaps their completions, and checks that every completion
 * answers exactly one request in flight.  Main thread only.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "testclient.h"

/* req_id = counter << 16 | slot: a stale or repeated completion cannot
 * match a slot that was reused since. */
#define TC_ID_SHIFT	16

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

static struct cbdt_channel *tc_ch(const struct tc *tc, unsigned q)
{
	return tc->b->ch[q];
}

/* One completion from queue @q. */
static void tc_complete(struct tc *tc, unsigned q,
			const struct cbdt_completion *c)
{
	uint64_t idx = c->req_id & ((1U << TC_ID_SHIFT) - 1);
	struct tc_io io;
	uint64_t lat;

	if (idx >= TC_IOS || tc->ios[idx].req_id != c->req_id ||
	    tc->ios[idx].q != q) {
		err("queue %u: completion of request %#llx that is not in "
		    "flight (duplicated or stray completion)",
		    q, (unsigned long long)c->req_id);
		if (!tc->fatal)
			tc->fatal = -EBADMSG;
		return;
	}
	io = tc->ios[idx];
	if (c->seq != io.rq.seq) {
		err("queue %u: request %#llx completed with seq %llu, "
		    "submitted as %llu",
		    q, (unsigned long long)c->req_id,
		    (unsigned long long)c->seq, (unsigned long long)io.rq.seq);
		if (!tc->fatal)
			tc->fatal = -EBADMSG;
	}
	if (!c->result && io.rq.op == CBDT_OP_READ && io.rbuf)
		memcpy(io.rbuf, cbdt_channel_data(tc_ch(tc, q), io.rq.data_off),
		       io.rq.len);
	if (io.rq.data_len)
		cbdt_channel_data_free(tc_ch(tc, q), io.rq.data_off,
				       io.rq.data_len);
	tc->ios[idx].req_id = 0;
	tc->inflight--;
	tc->last_progress_ns = cbdt_now_ns();
	lat = tc->last_progress_ns - io.start_ns;
	if (lat > tc->max_lat_ns)
		tc->max_lat_ns = lat;
	if (io.done)
		io.done(tc, &io, c->result);
}

int tc_poll(struct tc *tc)
{
	struct cbdt_completion c;
	int n = 0, ret;

	for (unsigned q = 0; q < tc->b->queues; q++) {
		while ((ret = cbdt_channel_reap(tc_ch(tc, q), &c)) == 1) {
			tc_complete(tc, q, &c);
			n++;
		}
		if (ret < 0) {
			err("queue %u: bad completion entry: %s", q,
			    strerror(-ret));
			if (!tc->fatal)
				tc->fatal = ret;
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
			err("no completion for %u ms with %u requests in flight",
			    tc->io_timeout_ms, tc->inflight);
			return -ETIMEDOUT;
		}
		/* With one queue its doorbell can wake us; with several, the
		 * back-off bounds the latency. */
		if (tc->b->queues == 1)
			cbdt_channel_client_wait(tc_ch(tc, 0), &tc->w);
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

static int tc_slot_get(struct tc *tc)
{
	for (unsigned i = 0; i < TC_IOS; i++)
		if (!tc->ios[i].req_id)
			return (int)i;
	return -1;
}

/* Try each queue once, round robin: 0, or -EAGAIN if none has room. */
static int tc_try_submit(struct tc *tc, struct tc_io *io, const void *wdata)
{
	unsigned nq = tc->b->queues;

	for (unsigned i = 0; i < nq; i++) {
		unsigned q = (tc->next_q + i) % nq;
		struct cbdt_channel *ch = tc_ch(tc, q);
		struct cbdt_request rq = io->rq;
		int ret;

		if (rq.data_len) {
			ret = cbdt_channel_data_alloc(ch, rq.data_len,
						      &rq.data_off);
			if (ret == -ENOSPC)
				continue;
			if (ret)
				return ret;
			if (wdata)
				memcpy(cbdt_channel_data(ch, rq.data_off),
				       wdata, rq.len);
		}
		ret = cbdt_channel_submit(ch, &rq);
		if (ret) {
			if (rq.data_len)
				cbdt_channel_data_free(ch, rq.data_off,
						       rq.data_len);
			if (ret == -EAGAIN)
				continue;
			return ret;
		}
		io->rq = rq;
		io->q = q;
		tc->next_q = (q + 1) % nq;
		return 0;
	}
	return -EAGAIN;
}

int tc_submit(struct tc *tc, uint16_t op, uint16_t flags, uint64_t off,
	      uint32_t len, const void *wdata, void *rbuf, tc_done_fn done,
	      const uint64_t user[3])
{
	bool data = op == CBDT_OP_READ || op == CBDT_OP_WRITE;
	struct tc_io *io;
	int slot, ret;

	if (len > TC_CHUNK)
		return -E2BIG;
	for (;;) {
		if (tc->fatal)
			return tc->fatal;
		slot = tc_slot_get(tc);
		if (slot >= 0) {
			io = &tc->ios[slot];
			memset(io, 0, sizeof(*io));
			io->rq.op = op;
			io->rq.flags = flags;
			io->rq.offset = off;
			io->rq.len = len;
			io->rq.data_len = data ? len : 0;
			io->rq.req_id = (++tc->next_id << TC_ID_SHIFT) |
					(uint64_t)slot;
			ret = tc_try_submit(tc, io, wdata);
			if (!ret)
				break;
			if (ret != -EAGAIN)
				return ret;
		}
		ret = tc_wait_some(tc);
		if (ret < 0)
			return ret;
	}
	io->req_id = io->rq.req_id;
	io->rbuf = rbuf;
	io->done = done;
	if (user)
		memcpy(io->user, user, sizeof(io->user));
	io->start_ns = cbdt_now_ns();
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
	uint64_t user[3] = { 0 };
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
