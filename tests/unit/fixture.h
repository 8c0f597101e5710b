/* SPDX-License-Identifier: MIT */
/*
 * Shared by the unit tests: a formatted transport in a temp file on
 * /dev/shm, and its removal.  Single-threaded setup/teardown helpers.
 */
#ifndef CBD_TESTS_FIXTURE_H
#define CBD_TESTS_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cbdt.h"

#define TFX_PATH_LEN 64

/* Unmap *t (if mapped) and remove the file (if created). */
static inline void tfx_transport_free(char path[TFX_PATH_LEN], struct cbdt **t)
{
	cbdt_close(*t);
	*t = NULL;
	if (path[0])
		unlink(path);
	path[0] = '\0';
}

/* Create a @size byte file, map it and format it with @flags: 0 or -1. */
static inline int tfx_transport_new(char path[TFX_PATH_LEN], struct cbdt **t,
				    uint64_t size, uint16_t flags)
{
	int fd;

	*t = NULL;
	strcpy(path, "/dev/shm/cbd-unit-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0) {
		path[0] = '\0';
		return -1;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		tfx_transport_free(path, t);
		return -1;
	}
	close(fd);
	if (cbdt_map(path, 0, t) || cbdt_format(*t, flags, 0, NULL)) {
		tfx_transport_free(path, t);
		return -1;
	}
	return 0;
}

#endif /* CBD_TESTS_FIXTURE_H */
