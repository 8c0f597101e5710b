/* SPDX-License-Identifier: MIT */
/*
 * Logging: one formatted line per call, written with a single write(2) so
 * that lines of concurrent threads never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "cbd";
static int log_level;
static bool log_syslog;
static int log_fd = STDERR_FILENO;
static bool log_stamps; /* a file: lines get the local time */

void log_init(const char *prog, int verbosity)
{
	log_prog = prog;
	log_level = verbosity;
}

/* Is anybody listening on /dev/log?  Without it syslog(3) drops lines. */
static bool syslog_there(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "/dev/log"};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int log_to_syslog(void)
{
	if (!syslog_there())
		return -ENOENT;
	openlog(log_prog, LOG_PID, LOG_DAEMON);
	log_syslog = true;
	return 0;
}

int log_to_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -errno;
	log_fd = fd;
	log_stamps = true;
	return 0;
}

int log_verbosity(void)
{
	return log_level;
}

const char *log_progname(void)
{
	return log_prog;
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
	n = 0;
	if (log_stamps) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
		n += snprintf(buf + n, sizeof(buf) - n, ".%03ld ",
			      ts.tv_nsec / 1000000);
	}
	n += snprintf(buf + n, sizeof(buf) - n, "%s: ", log_prog);
	errno = saved;
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(log_fd, buf, n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

#define LOG_FN(name, prio, cond)         \
	void name(const char *fmt, ...)  \
	{                                \
		va_list ap;              \
		if (!(cond))             \
			return;          \
		va_start(ap, fmt);       \
		log_line(prio, fmt, ap); \
		va_end(ap);              \
	}

LOG_FN(log_err, LOG_ERR, true)
LOG_FN(log_warn, LOG_WARNING, true)
LOG_FN(log_info, LOG_INFO, true)
LOG_FN(log_dbg, LOG_DEBUG, log_level > 0)
