/* SPDX-License-Identifier: MIT */
/*
 * cbd-testclient's stress run and its verifier.  stress keeps QD random
 * writes in flight, never two overlapping ones (so that the order of
 * acknowledgements is the order on disk), and logs each acknowledged write;
 * verify-log reads the device back and checks that the newest logged write
 * of every byte is what is there.  Main thread only.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "testclient.h"
#include "util.h"

#define STRESS_QD_MAX	     256U
#define STRESS_PICK_TRIES    8
#define STRESS_RANGE_DEFAULT (32ULL << 20)
#define VERIFY_RANGE_MAX     (512ULL << 20)
#define VERIFY_BLOCK	     4096U

struct stress;

struct stress_slot {
	struct stress *st;
	bool busy;
	uint64_t off, len, seed;
	uint8_t *buf;
};

struct stress {
	FILE *log;
	uint64_t range, max_len, rng, next_seed;
	unsigned qd, busy;
	struct stress_slot slot[STRESS_QD_MAX];
	uint64_t writes, bytes, flushes;
	int err;
};

static uint64_t stress_rand(struct stress *st)
{
	/* xorshift64*: private, deterministic per seed */
	st->rng ^= st->rng >> 12;
	st->rng ^= st->rng << 25;
	st->rng ^= st->rng >> 27;
	return st->rng * 0x2545f4914f6cdd1dULL;
}

static void stress_write_done(struct tc *tc, const struct tc_io *io, int result)
{
	struct stress_slot *s = (struct stress_slot *)(uintptr_t)io->user[0];
	struct stress *st = s->st;

	s->busy = false;
	st->busy--;
	if (result) {
		log_err("stress: write %" PRIu64 "+%" PRIu64 " failed: %s",
			s->off, s->len, strerror(-result));
		if (!st->err)
			st->err = result;
		return;
	}
	/* Acknowledged: from now on it must be on the device. */
	fprintf(st->log, "W %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", s->off,
		s->len, s->seed);
	fflush(st->log);
	st->writes++;
	st->bytes += s->len;
}

static void stress_flush_done(struct tc *tc, const struct tc_io *io, int result)
{
	struct stress *st = (struct stress *)(uintptr_t)io->user[0];

	if (result && !st->err) {
		log_err("stress: flush failed: %s", strerror(-result));
		st->err = result;
	}
	st->flushes++;
}

static bool stress_overlaps(const struct stress *st, uint64_t off, uint64_t len)
{
	for (unsigned i = 0; i < st->qd; i++) {
		const struct stress_slot *s = &st->slot[i];

		if (s->busy && off < s->off + s->len && s->off < off + len)
			return true;
	}
	return false;
}

/* Start one more write: 0, 1 if no non-overlapping range was found now,
 * or -errno. */
static int stress_submit_one(struct tc *tc, struct stress *st)
{
	struct stress_slot *s = NULL;
	uint64_t user[3] = {0};
	uint64_t off = 0, len = 0;
	int tries;

	for (unsigned i = 0; i < st->qd && !s; i++)
		if (!st->slot[i].busy)
			s = &st->slot[i];
	if (!s)
		return 1;
	for (tries = 0; tries < STRESS_PICK_TRIES; tries++) {
		/* Half block-aligned, half arbitrary: both paths of the
		 * backend's store get exercised. */
		if (stress_rand(st) & 1 && st->max_len >= 4096) {
			len = (stress_rand(st) % (st->max_len / 4096) + 1) *
			      4096;
			off = stress_rand(st) % ((st->range - len) / 4096 + 1) *
			      4096;
		} else {
			len = stress_rand(st) % st->max_len + 1;
			off = stress_rand(st) % (st->range - len + 1);
		}
		if (!stress_overlaps(st, off, len))
			break;
	}
	if (tries == STRESS_PICK_TRIES)
		return 1;
	s->off = off;
	s->len = len;
	s->seed = st->next_seed++;
	s->busy = true;
	st->busy++;
	tc_pattern_fill(s->buf, off, len, s->seed);
	user[0] = (uintptr_t)s;
	/* Every 32nd write goes through FUA. */
	return tc_submit(tc, CBDT_OP_WRITE,
			 (st->writes + st->busy) % 32 ? 0 : CBDT_SE_FUA, off,
			 (uint32_t)len, s->buf, NULL, stress_write_done, user);
}

static int stress_run(struct tc *tc, struct stress *st, unsigned seconds)
{
	uint64_t start = cbdt_now_ms(), ops = 0;
	uint64_t user[3] = {(uintptr_t)st, 0, 0};
	int ret = 0;

	while (!tc_stop && !st->err &&
	       cbdt_now_ms() - start < seconds * 1000ULL) {
		while (st->busy < st->qd) {
			ret = stress_submit_one(tc, st);
			if (ret)
				break;
			/* A flush now and then, racing the writes. */
			if (++ops % 128 == 0) {
				ret = tc_submit(tc, CBDT_OP_FLUSH, 0, 0, 0,
						NULL, NULL, stress_flush_done,
						user);
				if (ret)
					break;
			}
		}
		if (ret < 0)
			break;
		ret = tc_wait_some(tc);
		if (ret < 0)
			break;
		ret = 0;
	}
	if (!ret || ret == 1)
		ret = tc_drain(tc);
	else
		(void)tc_drain(tc);
	return ret ? ret : st->err;
}

/* Options after the word "stress" (argv[0]); stops at the next command. */
static int stress_parse(struct stress *st, int argc, char **argv,
			uint64_t *seconds, const char **logf, int *used)
{
	static const struct option opts[] = {
		{"seconds", required_argument, NULL, 's'},
		{"qd", required_argument, NULL, 'q'},
		{"log", required_argument, NULL, 'l'},
		{"max-len", required_argument, NULL, 'm'},
		{"range", required_argument, NULL, 'r'},
		{"seed", required_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, bad;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			bad = parse_uint(optarg, 1, 3600, seconds);
			break;
		case 'q':
			bad = parse_uint(optarg, 1, STRESS_QD_MAX, &v);
			if (!bad)
				st->qd = (unsigned)v;
			break;
		case 'l':
			*logf = optarg;
			bad = 0;
			break;
		case 'm':
			bad = parse_size(optarg, &st->max_len) ||
			      !st->max_len || st->max_len > TC_CHUNK;
			break;
		case 'r':
			bad = parse_size(optarg, &st->range) || !st->range;
			break;
		case 'S':
			bad = parse_uint(optarg, 1, UINT64_MAX, &st->rng);
			break;
		default:
			return -EINVAL;
		}
		if (bad) {
			log_err("stress: %s: bad value: %s", argv[optind - 1],
				optarg);
			return -EINVAL;
		}
	}
	*used = optind;
	if (!*logf) {
		log_err("stress: --log FILE is required");
		return -EINVAL;
	}
	return 0;
}

int tc_cmd_stress(struct tc *tc, int argc, char **argv, int *used)
{
	uint64_t seconds = 5, t0;
	const char *logf = NULL;
	struct stress *st;
	unsigned i;
	double secs;
	int ret;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->qd = 16;
	st->max_len = 64 << 10;
	st->range = STRESS_RANGE_DEFAULT;
	st->rng = cbdt_now_ns() ^ ((uint64_t)getpid() << 32);
	ret = stress_parse(st, argc, argv, &seconds, &logf, used);
	if (ret)
		goto err_free;
	if (st->range > tc->b->size)
		st->range = tc->b->size;
	if (st->max_len > st->range)
		st->max_len = st->range;
	/* Seeds of different runs differ, so one log can hold several. */
	st->next_seed = stress_rand(st) & ~0xffffffffULL;
	st->log = fopen(logf, "a");
	if (!st->log) {
		ret = -errno;
		log_err("stress: %s: %m", logf);
		goto err_free;
	}
	for (i = 0; i < st->qd; i++) {
		st->slot[i].st = st;
		st->slot[i].buf = malloc(st->max_len);
		if (!st->slot[i].buf) {
			ret = -ENOMEM;
			goto err_free_bufs;
		}
	}

	t0 = cbdt_now_ns();
	ret = stress_run(tc, st, (unsigned)seconds);
	secs = (double)(cbdt_now_ns() - t0) / 1e9;
	printf("stress: writes=%" PRIu64 " bytes=%" PRIu64 " flushes=%" PRIu64
	       " seconds=%.1f iops=%.0f max_latency_ms=%.1f result=%d\n",
	       st->writes, st->bytes, st->flushes, secs,
	       secs > 0 ? (double)st->writes / secs : 0.0,
	       (double)tc->max_lat_ns / 1e6, ret);
	fflush(stdout);

err_free_bufs:
	for (i = 0; i < st->qd; i++)
		free(st->slot[i].buf);
	fclose(st->log);
err_free:
	free(st);
	return ret;
}

/* ---- verify-log ---- */

struct log_entry {
	uint64_t off, len, seed;
};

static int verify_load(const char *file, struct log_entry **out, size_t *n,
		       uint64_t *end)
{
	struct log_entry *e = NULL, *ne;
	size_t cap = 0, cnt = 0;
	unsigned long long off, len, seed;
	char line[256];
	FILE *f = fopen(file, "r");

	if (!f)
		return -errno;
	*end = 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "W %llu %llu %llu", &off, &len, &seed) != 3)
			continue; /* a torn last line of a killed writer */
		if (cnt == cap) {
			cap = cap ? cap * 2 : 4096;
			ne = realloc(e, cap * sizeof(*e));
			if (!ne) {
				free(e);
				fclose(f);
				return -ENOMEM;
			}
			e = ne;
		}
		e[cnt++] = (struct log_entry){off, len, seed};
		if (off + len > *end)
			*end = off + len;
	}
	fclose(f);
	*out = e;
	*n = cnt;
	return 0;
}

int tc_cmd_verify_log(struct tc *tc, const char *file)
{
	uint8_t *buf = NULL, *covered = NULL;
	uint16_t *left = NULL; /* per block: bytes not yet covered */
	struct log_entry *e = NULL;
	uint64_t end, checked = 0, bad = 0, nblocks;
	size_t n;
	int ret;

	ret = verify_load(file, &e, &n, &end);
	if (ret) {
		log_err("verify-log: %s: %s", file, strerror(-ret));
		return ret;
	}
	if (end > VERIFY_RANGE_MAX || end > tc->b->size) {
		log_err("verify-log: %s: writes up to %" PRIu64
			" exceed what can be "
			"verified (%" PRIu64 ")",
			file, end, (uint64_t)VERIFY_RANGE_MAX);
		ret = -EFBIG;
		goto out;
	}
	nblocks = (end + VERIFY_BLOCK - 1) / VERIFY_BLOCK;
	buf = malloc(end ? end : 1);
	covered = calloc(end ? end : 1, 1);
	left = malloc((nblocks ? nblocks : 1) * sizeof(*left));
	ret = -ENOMEM;
	if (!buf || !covered || !left)
		goto out;
	for (uint64_t b = 0; b < nblocks; b++)
		left[b] = (uint16_t)MIN(VERIFY_BLOCK, end - b * VERIFY_BLOCK);
	ret = end ? tc_sync(tc, CBDT_OP_READ, 0, 0, end, NULL, buf) : 0;
	if (ret) {
		log_err("verify-log: read: %s", strerror(-ret));
		goto out;
	}

	/* Newest first: a byte belongs to the last acknowledged write of it. */
	for (size_t i = n; i-- > 0;) {
		uint64_t p = e[i].off, stop = e[i].off + e[i].len;

		while (p < stop) {
			uint64_t blk = p / VERIFY_BLOCK;
			uint64_t bend = MIN(stop, (blk + 1) * VERIFY_BLOCK);

			if (!left[blk]) { /* all newer: nothing to do */
				p = bend;
				continue;
			}
			for (; p < bend; p++) {
				if (covered[p])
					continue;
				covered[p] = 1;
				left[blk]--;
				checked++;
				if (buf[p] == tc_pattern_byte(p, e[i].seed))
					continue;
				if (bad++ < 10)
					log_err("verify-log: offset %" PRIu64
						": got %#04x, want %#04x from "
						"line %zu (write %" PRIu64
						"+%" PRIu64 ")",
						p, buf[p],
						tc_pattern_byte(p, e[i].seed),
						i + 1, e[i].off, e[i].len);
			}
		}
	}
	printf("verify-log: entries=%zu bytes_checked=%" PRIu64
	       " mismatches=%" PRIu64 "\n",
	       n, checked, bad);
	fflush(stdout);
	ret = bad ? -EILSEQ : 0;
out:
	free(left);
	free(covered);
	free(buf);
	free(e);
	return ret;
}
