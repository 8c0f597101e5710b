/* SPDX-License-Identifier: MIT */
/*
 * Shared by the unit tests: a formatted transport in a temp file on
 * /dev/shm, and its removal.  Single-threaded setup/teardown helpers.
 */
#ifndef CBD_TESTS_FIXTURE_H
#define CBD_TESTS_FIXTURE_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cbdt.h"

#define TFX_PATH_LEN 64

/*
 * Deadline for a condition that normally holds within milliseconds (a
 * thread reaching its wait, a handler attaching, a wake-up): generous, so
 * that only a real hang fails a test, never a slow or busy machine.
 */
#define TFX_DEADLINE_MS 30000U

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

/* True if a thread of this process other than the caller sleeps in the
 * kernel (state S) right now. */
static inline bool tfx_other_thread_sleeping(void)
{
	long self = syscall(SYS_gettid);
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool sleeping = false;

	if (!d)
		return false;
	while (!sleeping && (e = readdir(d))) {
		char path[300], buf[512], *p;
		FILE *f;

		if (e->d_name[0] == '.' || atol(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		/* "tid (comm) S ...": the comm may hold anything */
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    p[1] == ' ' && p[2] == 'S')
			sleeping = true;
		fclose(f);
	}
	closedir(d);
	return sleeping;
}

/*
 * Wait, at most TFX_DEADLINE_MS, until the one other thread of a test
 * sleeps in the kernel: about to block in a futex or nanosleep, it is
 * known to be there instead of guessed from a sleep of our own.
 */
static inline bool tfx_wait_other_thread_sleeping(void)
{
	uint64_t start = cbdt_now_ms();

	while (!tfx_other_thread_sleeping()) {
		if (cbdt_now_ms() - start >= TFX_DEADLINE_MS)
			return false;
		usleep(1000);
	}
	return true;
}

#endif /* CBD_TESTS_FIXTURE_H */
