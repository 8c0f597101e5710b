/* SPDX-License-Identifier: MIT */
/*
 * The command-line conventions every cbd program keeps: errors as
 * "PROG: message" on stderr followed by "Try 'PROG --help'.", exit 2 for
 * bad usage, --version as "PROG VERSION".  PROG is the name given to
 * log_init(), which must come first.
 */
#ifndef CBD_COMMON_CLI_H
#define CBD_COMMON_CLI_H

#include "log.h"

#define CLI_EXIT_USAGE 2

/* A program whose other exit codes are errnos exits @code instead. */
void cli_set_usage_exit(int code);

/* The two lines of a usage error, on stderr. */
void cli_usage_msg(const char *fmt, ...) PRINTF_FMT(1, 2);
/* ... and exit CLI_EXIT_USAGE. */
void cli_usage_error(const char *fmt, ...) PRINTF_FMT(1, 2)
	__attribute__((noreturn));
/*
 * getopt_long() returned '?' or ':' (@c): say which option was unknown
 * or lacks its argument, and exit CLI_EXIT_USAGE.  Wants opterr = 0 and
 * an optstring starting with ':'.
 */
void cli_bad_option(int c, char *const argv[]) __attribute__((noreturn));
/* "PROG VERSION" on stdout, exit 0. */
void cli_version(void) __attribute__((noreturn));

#endif /* CBD_COMMON_CLI_H */
