/* SPDX-License-Identifier: MIT */
/* The command-line conventions of the cbd programs (see cli.h). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int usage_exit = CLI_EXIT_USAGE;

void cli_set_usage_exit(int code)
{
	usage_exit = code;
}

static void usage_vmsg(const char *fmt, va_list ap)
{
	const char *prog = log_progname();

	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
}

void cli_usage_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	usage_vmsg(fmt, ap);
	va_end(ap);
}

void cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	usage_vmsg(fmt, ap);
	va_end(ap);
	exit(usage_exit);
}

void cli_bad_option(int c, char *const argv[])
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;
	char name[64];

	/* a long option is named as written (up to "="), a short one by
	 * its letter: optind may still point into a cluster like -jx */
	if (arg && !strncmp(arg, "--", 2) && (c == ':' || !optopt))
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="),
			 arg);
	else
		snprintf(name, sizeof(name), "-%c", optopt);
	if (c == ':')
		cli_usage_error("option %s needs an argument", name);
	cli_usage_error("unknown option %s", name);
}

void cli_version(void)
{
	printf("%s %s\n", log_progname(), CBD_VERSION);
	exit(0);
}
