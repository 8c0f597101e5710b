/* SPDX-License-Identifier: MIT */
/*
 * The janitor of cbd-backend: once per heartbeat interval it clears the
 * blkdevs, channel segments, backends and hosts whose heartbeat stopped.
 * Called from one thread; other janitors (other hosts) are kept out by the
 * transport-wide janitor lease.
 */
#ifndef CBD_BACKEND_JANITOR_H
#define CBD_BACKEND_JANITOR_H

#include <stdint.h>

#include "cbdt.h"

/*
 * One pass: sample @obs, take the janitor lease for host @host_id (if a
 * live host holds it, do nothing), clear dead blkdevs (their segments
 * first), orphaned segments, dead backends, then dead hosts, release the
 * lease.  Logs every clear naming the object.  Returns the number of slots
 * freed (0 when another janitor holds the lease) or -errno.
 */
int janitor_pass(struct cbdt *t, struct cbdt_observer *obs, uint32_t host_id);

#endif /* CBD_BACKEND_JANITOR_H */
