/* SPDX-License-Identifier: MIT */
/*
 * Logging for the daemons and tools: "prog: message" on stderr, or syslog
 * once log_to_syslog() was called.  Thread-safe (one write per line);
 * every function preserves errno, so "%m" works in the format.
 */
#ifndef CBD_COMMON_LOG_H
#define CBD_COMMON_LOG_H

#include <stdbool.h>

#define PRINTF_FMT(a, b) __attribute__((format(printf, a, b)))

/* Program name used as the prefix; set once at startup. */
void log_init(const char *prog, int verbosity);
/* From now on to syslog: 0, or -ENOENT (nothing listens on /dev/log:
 * the lines keep going where they went). */
int log_to_syslog(void);
/* From now on append to @path, each line with the local time: 0/-errno. */
int log_to_file(const char *path);
int log_verbosity(void);
/* The name given to log_init(). */
const char *log_progname(void);

void log_err(const char *fmt, ...) PRINTF_FMT(1, 2);  /* always */
void log_warn(const char *fmt, ...) PRINTF_FMT(1, 2); /* always */
void log_info(const char *fmt, ...) PRINTF_FMT(1, 2); /* always */
void log_dbg(const char *fmt, ...) PRINTF_FMT(1, 2);  /* with -v */

#endif /* CBD_COMMON_LOG_H */
