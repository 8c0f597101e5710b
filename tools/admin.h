/* SPDX-License-Identifier: MIT */
/* cbd-admin's pieces shared between its files; single-threaded. */
#ifndef CBD_TOOLS_ADMIN_H
#define CBD_TOOLS_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The common part of slot @id of @type in @s (id within range). */
const struct status_slot *admin_slot(const struct status_snap *s,
				     enum cbdt_obj type, uint32_t id);

/*
 * clear-host|backend|blkdev|segment @arg on the transport at @path, after
 * watching heartbeats for @window_ms (0: the default window).  Prints what
 * was cleared on stdout, why not on stderr.  Exit code: 0 or 1.
 */
int admin_clear(const char *path, enum cbdt_obj type, const char *cmd,
		const char *arg, uint32_t window_ms);

/*
 * clear-dead: every dead object that nothing alive needs, dependents
 * first (blkdevs, orphaned segments, backends, hosts).  A dead object
 * that a live one still needs is kept, with the reason on stderr.  Exit
 * code: 0, or 1 if a clear failed for another reason.
 */
int admin_clear_dead(const char *path, uint32_t window_ms);

/*
 * cache-writeback @arg (a backend id): with @pause < 0, ask the backend
 * to write its whole cache back and wait up to @timeout_s for it; with
 * @pause 1 or 0, hold its writeback back or let it go on.  Exit code: 0
 * or 1.
 */
int admin_cache_writeback(const char *path, const char *arg, int pause,
			  unsigned timeout_s);

#endif /* CBD_TOOLS_ADMIN_H */
