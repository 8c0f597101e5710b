/* SPDX-License-Identifier: MIT */
/* Small parsing and system helpers shared by the daemons and tools. */
#ifndef CBD_COMMON_UTIL_H
#define CBD_COMMON_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)      ((a) < (b) ? (a) : (b))
#define MAX(a, b)      ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

/*
 * Parse a size: a decimal number with an optional K, M, G or T suffix
 * (powers of 1024, case-insensitive, optional trailing "iB"/"B").
 * 0 or -EINVAL (garbage), -ERANGE (overflow).
 */
int parse_size(const char *s, uint64_t *out);

/* Parse an unsigned decimal in [min, max]; 0, -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parse true/false/yes/no/on/off/1/0; 0 or -EINVAL. */
int parse_bool(const char *s, bool *out);

struct cbdt;

/*
 * Log what a user must know about the transport just opened: a regular
 * file serves the processes of this kernel only (info), a dax device with
 * its page map on the device must not be shared by two hosts (warning).
 */
void transport_note(const struct cbdt *t);

/* Human-readable size: "512 B", "4.0 KiB", "1.5 GiB". */
const char *format_size(uint64_t bytes, char *buf, size_t len);

/* Copy a string into a fixed field, NUL-terminated, truncating. */
void strlcpy_field(char *dst, const char *src, size_t size);

/* Size of a regular file or block device open on @fd; 0 or -errno. */
int fd_size(int fd, uint64_t *out);

/* True if process @pid exists (kill(pid, 0) did not say ESRCH). */
bool pid_alive(int pid);

/*
 * Name thread @t for top -H, perf and /proc/PID/task/TID/comm, printf
 * style, cut to the kernel's 15 characters.  Best effort: a name is an aid,
 * never a reason to fail.
 */
void thread_name(pthread_t t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* CBD_COMMON_UTIL_H */
