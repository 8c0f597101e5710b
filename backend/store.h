/* SPDX-License-Identifier: MIT */
/*
 * Backing-store I/O of one backend (a regular file or a block device):
 * synchronous positional I/O, safe to call from many handler threads at
 * once on one struct store (only the learned capability bits change, with
 * relaxed atomics).  Every function returns 0 or -errno.
 */
#ifndef CBD_BACKEND_STORE_H
#define CBD_BACKEND_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

/* Capabilities tried first; cleared once the kernel says EOPNOTSUPP. */
#define STORE_CAN_PUNCH	 (1U << 0) /* PUNCH_HOLE / BLKDISCARD */
#define STORE_CAN_ZERO	 (1U << 1) /* ZERO_RANGE / BLKZEROOUT */
#define STORE_CAN_DIRECT (1U << 2) /* direct I/O takes our buffers */
#define STORE_CAN_ALL	 (STORE_CAN_PUNCH | STORE_CAN_ZERO | STORE_CAN_DIRECT)

/* store_open flags */
#define STORE_RO	(1U << 0) /* read-only backend */
#define STORE_WRITEBACK (1U << 1) /* durability = writeback */

struct store {
	int fd;	    /* direct (sync mode), or the only one */
	int fd_buf; /* buffered (O_DSYNC in sync mode); may == fd */
	bool ro;
	bool writeback;	     /* acknowledged writes may sit in page cache */
	bool direct;	     /* fd is O_DIRECT */
	uint32_t dio_align;  /* offset/length/memory alignment of fd */
	bool blk;	     /* block device, not a regular file */
	bool memory;	     /* tmpfs / ramfs file or RAM disk: no device
			      * waits (store_open, cbdt CBDT_HF_PACK) */
	uint64_t size;	     /* bytes served: at open, rounded down to 512 */
	uint32_t tail;	     /* bytes past size that are not served */
	uint32_t block_size; /* logical block size (512 for files) */
	unsigned caps;	     /* STORE_CAN_*; READ_ONCE/WRITE_ONCE */
	char path[CBDT_PATH_LEN];
};

/*
 * Open @path read-write (read-only with STORE_RO), hold it while open (an
 * OFD lock on a file, O_EXCL on a block device) and learn its size,
 * rounded down to whole CBDT_SECTOR_SIZE sectors (s->tail says what was
 * cut).  Without STORE_WRITEBACK every write is durable on the device when
 * it returns (direct I/O where it works, O_DSYNC for files and for the
 * rest).  -EBUSY if another user holds it, -EFBIG if it is smaller than
 * CBDT_BACKEND_MIN_SIZE, -EINVAL if neither a regular file nor a block
 * device.
 */
int store_open(struct store *s, const char *path, unsigned flags);
void store_close(struct store *s);

/* Read @len bytes at @off; past the end of a file that shrank: zeroes. */
int store_read(struct store *s, void *buf, uint64_t off, uint32_t len);

/* Write @len bytes at @off (-EROFS on a read-only store); durable on
 * return unless the store is writeback. */
int store_write(struct store *s, const void *buf, uint64_t off, uint32_t len);

/* Make completed writes durable, the device's own cache included
 * (fdatasync). */
int store_flush(struct store *s);

/*
 * Discard: a file gets a hole (falling back to zeroing, so the range
 * always reads back as zeroes); a block device gets BLKDISCARD of the
 * whole logical blocks in the range, or nothing where it cannot discard
 * (a hint, as for any disk).
 */
int store_discard(struct store *s, uint64_t off, uint64_t len);

/* Zero the range: ZERO_RANGE / BLKZEROOUT, else a hole, else writes. */
int store_write_zeroes(struct store *s, uint64_t off, uint64_t len);

/* Forget capabilities (tests force the fallbacks with it). */
void store_caps_clear(struct store *s, unsigned caps);

#endif /* CBD_BACKEND_STORE_H */
