/* SPDX-License-Identifier: MIT */
/*
 * Logging: one formatted line per call, written with a single write(2) so
 * that lines of concurrent threads never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "cbd";
static int log_level;
static bool log_syslog;

void log_init(const char *prog, int verbosity)
{
	log_prog = prog;
	log_level = verbosity;
}

void log_to_syslog(void)
{
	openlog(log_prog, LOG_PID, LOG_DAEMON);
	log_syslog = true;
}

int log_verbosity(void)
{
	return log_level;
}

static void log_line(int prio, const char *fmt, va_list ap)
{
	int saved = errno;
	char buf[1024];
	int n;

	if (log_syslog) {
		errno = saved;
		vsyslog(prio, fmt, ap);
		errno = saved;
		return;
	}
	n = snprintf(buf, sizeof(buf), "%s: ", log_prog);
	errno = saved;
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

#define LOG_FN(name, prio, cond)                                               \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		if (!(cond))                                                   \
			return;                                                \
		va_start(ap, fmt);                                             \
		log_line(prio, fmt, ap);                                       \
		va_end(ap);                                                    \
	}

LOG_FN(log_err, LOG_ERR, true)
LOG_FN(log_warn, LOG_WARNING, true)
LOG_FN(log_info, LOG_INFO, true)
LOG_FN(log_dbg, LOG_DEBUG, log_level > 0)
