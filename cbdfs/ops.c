/* SPDX-License-Identifier: MIT */
/*
 * The FUSE operations of cbdfs, one function per opcode, and their table:
 * what names.c shows (LOOKUP, GETATTR, READLINK, OPENDIR, READDIR,
 * STATFS), the backend files (OPEN, RELEASE), and their I/O (READ, WRITE,
 * FSYNC, FALLOCATE), which the engine answers once the backend did.
 * Every other opcode gets ENOSYS from session.c.
 *
 * Concurrency: any thread may run any operation at any time (FUSE
 * workers, io_uring queue threads); operations keep no state of their
 * own: what they share lives in blkdev.c (under its locks) and engine.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#include "cbdfs.h"
#include "log.h"
#include "util.h"

#define ATTR_TIMEOUT_S	1 /* seconds the kernel may cache attributes */
#define ENTRY_TIMEOUT_S 1 /* ... and names: backends come and go */

static struct cbdfs_blkdev *fh_bdev(uint64_t fh)
{
	return (struct cbdfs_blkdev *)(uintptr_t)fh;
}

static struct cbdfs_dir *fh_dir(uint64_t fh)
{
	return (struct cbdfs_dir *)(uintptr_t)fh;
}

static void reply_attr(struct cbdfs_req *r, uint64_t ino)
{
	struct fuse_attr_out out = {.attr_valid = ATTR_TIMEOUT_S};

	if (cbdfs_attr(r->fs, ino, &out.attr, NULL))
		cbdfs_reply_err(r, ENOENT);
	else
		cbdfs_reply_buf(r, &out, sizeof(out));
}

static void op_lookup(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const char *name = in->payload;
	struct fuse_entry_out e = {
		.generation = 1,
		.entry_valid = ENTRY_TIMEOUT_S,
		.attr_valid = ATTR_TIMEOUT_S,
	};

	if (!in->paylen || name[in->paylen - 1]) {
		cbdfs_reply_err(r, EINVAL);
		return;
	}
	e.nodeid = cbdfs_lookup(r->fs, in->nodeid, name);
	if (!e.nodeid || cbdfs_attr(r->fs, e.nodeid, &e.attr, NULL)) {
		cbdfs_reply_err(r, ENOENT);
		return;
	}
	cbdfs_reply_buf(r, &e, sizeof(e));
}

static void op_getattr(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	reply_attr(r, in->nodeid);
}

/*
 * Like a block device: the size is the backend's, so truncation (from
 * open(O_TRUNC) or truncate) is ignored, and so are mode, owner and times.
 */
static void op_setattr(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	reply_attr(r, in->nodeid);
}

static void op_readlink(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	char target[32];
	uint32_t id;
	int n;

	if (cbdfs_ino_kind(in->nodeid, &id) != CBDFS_INO_LINK) {
		cbdfs_reply_err(r, EINVAL);
		return;
	}
	n = cbdfs_link_target(r->fs, id, target, sizeof(target));
	if (n < 0)
		cbdfs_reply_err(r, ENOENT);
	else
		cbdfs_reply_buf(r, target, (size_t)n);
}

static void op_open(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const struct fuse_open_in *oi = in->arg;
	bool writable = (oi->flags & O_ACCMODE) != O_RDONLY;
	struct fuse_open_out out = {0};
	struct cbdfs_blkdev *bd;
	uint32_t id;
	int ret;

	switch (cbdfs_ino_kind(in->nodeid, &id)) {
	case CBDFS_INO_FILE:
		break;
	case CBDFS_INO_ROOT:
	case CBDFS_INO_BYNAME:
		cbdfs_reply_err(r, EISDIR);
		return;
	case CBDFS_INO_LINK: /* the kernel follows links; O_PATH never
			      * gets here */
		cbdfs_reply_err(r, ELOOP);
		return;
	default:
		cbdfs_reply_err(r, ENOENT);
		return;
	}
	ret = cbdfs_blkdev_open(r->fs, id, writable, &bd);
	if (ret) {
		cbdfs_reply_err(r, -ret);
		return;
	}
	out.fh = (uintptr_t)bd;
	/* never serve a block image from the page cache: another host
	 * writes; close() needs no FLUSH: fsync is what makes data durable */
	out.open_flags = FOPEN_DIRECT_IO | FOPEN_NOFLUSH |
			 FOPEN_PARALLEL_DIRECT_WRITES;
	if (cbdfs_reply_buf(r, &out, sizeof(out)))
		cbdfs_blkdev_release(r->fs, bd); /* the opener is gone */
}

static void op_release(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const struct fuse_release_in *ri = in->arg;

	cbdfs_blkdev_release(r->fs, fh_bdev(ri->fh));
	cbdfs_reply_err(r, 0);
}

static void op_read(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const struct fuse_read_in *ri = in->arg;

	cbdfs_engine_read(fh_bdev(ri->fh), r, ri->offset, ri->size);
}

static void op_write(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const struct fuse_write_in *wi = in->arg;

	if (in->paylen < wi->size) {
		cbdfs_reply_err(r, EINVAL);
		return;
	}
	cbdfs_engine_write(fh_bdev(wi->fh), r, in->payload, wi->offset,
			   wi->size);
}

static void op_flush(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	cbdfs_reply_err(r, 0);
}

static void op_fsync(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const struct fuse_fsync_in *fi = in->arg;

	cbdfs_engine_flush(fh_bdev(fi->fh), r);
}

static void op_fallocate(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const struct fuse_fallocate_in *fa = in->arg;
	uint16_t op;

	if (fa->mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		op = CBDT_OP_DISCARD;
	} else if (fa->mode == FALLOC_FL_ZERO_RANGE ||
		   fa->mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
		op = CBDT_OP_WRITE_ZEROES;
	} else {
		cbdfs_reply_err(r, EOPNOTSUPP);
		return;
	}
	if ((int64_t)fa->offset < 0 || (int64_t)fa->length <= 0) {
		cbdfs_reply_err(r, EINVAL);
		return;
	}
	cbdfs_engine_trim(fh_bdev(fa->fh), r, op, fa->offset, fa->length);
}

static void op_opendir(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	struct fuse_open_out out = {0};
	struct cbdfs_dir *d;
	int ret = cbdfs_dir_open(r->fs, in->nodeid, &d);

	if (ret) {
		cbdfs_reply_err(r, -ret);
		return;
	}
	out.fh = (uintptr_t)d;
	if (cbdfs_reply_buf(r, &out, sizeof(out)))
		cbdfs_dir_free(d);
}

static void op_readdir(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const struct fuse_read_in *ri = in->arg;
	struct cbdfs_dir *d = fh_dir(ri->fh);

	/* a cut entry is dropped by the kernel and asked for again */
	if (ri->offset >= d->size)
		cbdfs_reply_buf(r, NULL, 0);
	else
		cbdfs_reply_buf(r, d->p + ri->offset,
				MIN(ri->size, d->size - ri->offset));
}

static void op_releasedir(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	const struct fuse_release_in *ri = in->arg;

	cbdfs_dir_free(fh_dir(ri->fh));
	cbdfs_reply_err(r, 0);
}

static void op_statfs(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	struct fuse_statfs_out out = {0};
	uint64_t blocks, files;

	cbdfs_totals(r->fs, &blocks, &files);
	out.st.bsize = 4096; /* loop takes its discard granularity here */
	out.st.frsize = 4096;
	out.st.blocks = blocks;
	out.st.files = files;
	out.st.namelen = 255;
	cbdfs_reply_buf(r, &out, sizeof(out));
}

/* Inodes never go away: nothing to forget.  No reply. */
static void op_forget(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	cbdfs_reply_none(r);
}

/* Block I/O is not interrupted, as on a disk: the request completes (or
 * fails after timeout=).  No reply. */
static void op_interrupt(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	cbdfs_reply_none(r);
}

static void op_destroy(struct cbdfs_req *r, const struct cbdfs_in *in)
{
	cbdfs_reply_err(r, 0);
}

/* [FUSE_X] = {"X", size of its in-struct, fn, no reply} */
#define OP(code, fn, insize, ...) \
	[code] = {#code + 5, insize, fn, ##__VA_ARGS__}

static const struct cbdfs_op ops[] = {
	OP(FUSE_LOOKUP, op_lookup, 0),
	OP(FUSE_FORGET, op_forget, sizeof(struct fuse_forget_in), true),
	OP(FUSE_GETATTR, op_getattr, sizeof(struct fuse_getattr_in)),
	OP(FUSE_SETATTR, op_setattr, sizeof(struct fuse_setattr_in)),
	OP(FUSE_READLINK, op_readlink, 0),
	OP(FUSE_OPEN, op_open, sizeof(struct fuse_open_in)),
	OP(FUSE_READ, op_read, sizeof(struct fuse_read_in)),
	OP(FUSE_WRITE, op_write, sizeof(struct fuse_write_in)),
	OP(FUSE_STATFS, op_statfs, 0),
	OP(FUSE_RELEASE, op_release, sizeof(struct fuse_release_in)),
	OP(FUSE_FSYNC, op_fsync, sizeof(struct fuse_fsync_in)),
	OP(FUSE_FLUSH, op_flush, sizeof(struct fuse_flush_in)),
	OP(FUSE_OPENDIR, op_opendir, sizeof(struct fuse_open_in)),
	OP(FUSE_READDIR, op_readdir, sizeof(struct fuse_read_in)),
	OP(FUSE_RELEASEDIR, op_releasedir, sizeof(struct fuse_release_in)),
	OP(FUSE_INTERRUPT, op_interrupt, sizeof(struct fuse_interrupt_in),
	   true),
	OP(FUSE_DESTROY, op_destroy, 0),
	OP(FUSE_BATCH_FORGET, op_forget, sizeof(struct fuse_batch_forget_in),
	   true),
	OP(FUSE_FALLOCATE, op_fallocate, sizeof(struct fuse_fallocate_in)),
};

const struct cbdfs_op *cbdfs_op_find(uint32_t opcode)
{
	if (opcode >= ARRAY_SIZE(ops) || !ops[opcode].fn)
		return NULL;
	return &ops[opcode];
}

const char *cbdfs_op_name(uint32_t opcode)
{
	const struct cbdfs_op *op = cbdfs_op_find(opcode);

	return op ? op->name : "request";
}
