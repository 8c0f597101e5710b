/* SPDX-License-Identifier: MIT */
/*
 * cbd-admin cache-writeback: ask the backend that owns a cache to write
 * everything dirty back to its disk now and wait until it has, or hold
 * its writeback back (--pause) and let it go on (--resume).  The
 * request goes through the cache's header in the transport, so it works
 * from any host that maps it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "barrier.h"
#include "cbdt-cache.h"
#include "log.h"
#include "util.h"

#define POLL_MS 20U

/* The header of backend @id's cache; NULL (logged) if it has none. */
static struct cbdt_cache_hdr *cache_of(struct cbdt *t, const char *path,
				       uint32_t id)
{
	struct cbdt_backend_rec rec;
	struct cbdt_cache_seg *segs;
	struct cbdt_cache_hdr *h = NULL;
	uint32_t max = cbdt_slot_count(t, CBDT_OBJ_SEGMENT);
	int n;

	if (id >= cbdt_slot_count(t, CBDT_OBJ_BACKEND) ||
	    cbdt_backend_read(t, id, &rec)) {
		log_err("%s: backend %u: no such backend", path, id);
		return NULL;
	}
	segs = calloc(max, sizeof(*segs));
	if (!segs) {
		log_err("%s: out of memory", path);
		return NULL;
	}
	n = cbdt_cache_find(t, rec.ident, segs, max);
	if (n < 0)
		log_err("%s: backend %u: its cache segments are not one whole cache: %s",
			path, id, strerror(-n));
	else if (!n)
		log_err("%s: backend %u (%.*s) has no cache", path, id,
			(int)sizeof(rec.name), rec.name);
	else
		h = cbdt_cache_hdr(t, segs[0].id);
	free(segs);
	if (h && smp_load_acquire(&h->magic) != CBDT_CACHE_HDR_MAGIC) {
		log_err("%s: backend %u: its cache is not running", path, id);
		h = NULL;
	}
	return h;
}

int admin_cache_writeback(const char *path, const char *arg, int pause,
			  unsigned timeout_s)
{
	struct cbdt_cache_hdr *h;
	uint64_t v, req, deadline;
	struct cbdt *t;
	char sz[32];
	int rc = 1, ret;

	if (parse_uint(arg, 0, UINT32_MAX, &v)) {
		log_err("%s: cache-writeback: '%s' is not a backend id", path,
			arg);
		return 1;
	}
	ret = cbdt_open(path, 0, &t);
	if (ret) {
		log_err("%s: %s", path, cbdt_strerror(ret));
		return 1;
	}
	h = cache_of(t, path, (uint32_t)v);
	if (!h)
		goto out;
	if (pause >= 0) {
		__atomic_store_n(&h->wb_pause, (uint32_t)pause,
				 __ATOMIC_RELEASE);
		printf("backend %" PRIu64 ": cache writeback %s\n", v,
		       pause ? "paused: only what must go is written back" :
			       "resumed");
		rc = 0;
		goto out;
	}
	req = __atomic_add_fetch(&h->wb_request, 1, __ATOMIC_ACQ_REL);
	printf("backend %" PRIu64 ": writing back %s dirty\n", v,
	       format_size(READ_ONCE(h->dirty), sz, sizeof(sz)));
	fflush(stdout);
	deadline = cbdt_now_ms() + (uint64_t)timeout_s * 1000;
	/* wb_done counts requests: ours is served once it reaches req. */
	while ((int64_t)(__atomic_load_n(&h->wb_done, __ATOMIC_ACQUIRE) - req) <
	       0) {
		if (cbdt_now_ms() >= deadline) {
			log_err("%s: backend %" PRIu64
				": the cache was not written back within %u s (%s still dirty); is the backend running?",
				path, v, timeout_s,
				format_size(READ_ONCE(h->dirty), sz,
					    sizeof(sz)));
			goto out;
		}
		cbdt_sleep_ms(POLL_MS);
	}
	printf("backend %" PRIu64 ": cache written back\n", v);
	rc = 0;
out:
	cbdt_close(t);
	return rc;
}
