/* SPDX-License-Identifier: MIT */
/* cbd-bench's pieces shared between its files; single-threaded. */
#ifndef CBD_TOOLS_BENCH_H
#define CBD_TOOLS_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cbdt.h"

struct reaped; /* bench-run.c: what the queue's callback saw */

/* What the command line asked for. */
struct opts {
	const char *path;
	double seconds;
	unsigned qd, copy_qd, idle_s;
	uint32_t spin_ns;
	bool crc, json, force;
	const char *cache; /* --cache IMAGE: the handler is a cached backend */
};

/* What the measurements found, for the report. */
struct results {
	double p50_us, p99_us, mean_us;
	uint64_t qd1_ops;
	double qd_iops;
	double wr_gbs, rd_gbs, memcpy_wr_gbs, memcpy_rd_gbs;
	double ratio_wr, ratio_rd; /* medians of per-round ratios */
	double idle_pct;
};

/* One run: the transport, its channel and queue, the handler process. */
struct bench {
	struct opts o;
	struct cbdt *t;
	struct cbdt_channel *ch;
	struct cbdt_queue *q;
	struct reaped *reaped;
	struct cbdt_wait_cfg wcfg;
	uint32_t seg;
	uint64_t dev_size; /* offsets wrap at it (the cached image's size) */
	uint16_t small_op; /* the QD tests' op: READ, or WRITE with --cache */
	const uint8_t *small_buf; /* what a WRITE of theirs writes */
	pid_t child;
	char path[256];
	bool created; /* we created the file: remove it */
	uint32_t *hist;
};

/*
 * The measurements on the client side of @b's channel, whose handler is
 * attached: QD1 round trips, QD throughput, the 128 KiB copies against
 * memcpy, the idle handler's CPU (if o.idle_s).  0 or -errno; fills *r.
 */
int bench_run(struct bench *b, struct results *r);

#endif /* CBD_TOOLS_BENCH_H */
