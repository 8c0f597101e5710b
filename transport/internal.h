/* SPDX-License-Identifier: MIT */
/*
 * Private to libcbdt: what transport.c (mapping, opening, formatting)
 * shares with info.c (the info block) and probe.c (what kind of device or
 * file a path is).  Not installed, not for the programs.
 */
#ifndef CBD_TRANSPORT_INTERNAL_H
#define CBD_TRANSPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "layout.h"

/* ---- info.c ---- */

/* crc32c of an info copy, over everything after its crc field. */
uint32_t info_crc(const struct cbdt_info *in);

/* True if the @len bytes at @p are all zero. */
bool bytes_zero(const void *p, size_t len);

/*
 * The newest of the two info copies of @image with good magic and crc, into
 * *out: 0, or -EBADMSG, -EMEDIUMTYPE, -ENOSPC or -ENODATA for the pair.
 * Their contents are not checked (cbdt_info_check() does).
 */
int info_pick(const void *image, size_t len, struct cbdt_info *out);

/* ---- probe.c ---- */

/* Does the dax device @rdev keep its page map on the device (--map=dev)? */
bool dax_pagemap_on_device(dev_t rdev);

/*
 * Size and alignment of the dax character device @rdev: 0, -EADDRINUSE in
 * system-ram mode, -ENODEV if it is not a dax device.
 */
int dax_probe(dev_t rdev, uint64_t *size, uint64_t *align);

/* Is the file system of device @dev remote (NFS, 9p, FUSE, ...)? */
bool fs_is_remote(dev_t dev);

#endif /* CBD_TRANSPORT_INTERNAL_H */
