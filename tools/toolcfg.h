/* SPDX-License-Identifier: MIT */
/* The [transport] keys the tools need from cbd.ini; single-threaded. */
#ifndef CBD_TOOLS_TOOLCFG_H
#define CBD_TOOLS_TOOLCFG_H

#include <stdbool.h>
#include <stdint.h>

#define TOOLCFG_DEFAULT "/etc/cbd/cbd.ini"

struct toolcfg {
	char *path;		/* [transport] path; NULL if absent */
	uint64_t size;		/* [transport] size; 0 if absent */
};

/*
 * Read @file: only [transport] path and size are looked at, every other
 * key is ignored (cbd-backend owns their validation).  0 or -errno with
 * *why set to a sentence for the user (file, line, what).
 */
int toolcfg_read(const char *file, struct toolcfg *c, char *why, size_t len);
void toolcfg_free(struct toolcfg *c);

#endif /* CBD_TOOLS_TOOLCFG_H */
