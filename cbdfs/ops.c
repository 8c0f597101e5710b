/* SPDX-License-Identifier: MIT */
/*
 * cbdfs FUSE callbacks (low-level API): a root directory with one file
 * "backendN" per backend, and a directory "by-name" with a symlink
 * NAME -> ../backendN per backend name.
 *
 * Concurrency: every callback may run in parallel on several FUSE worker
 * threads, and a request may be answered later by a reaper thread
 * (read/write/fsync/fallocate).  Callbacks keep no state of their own:
 * what they share lives in blkdev.c (under its locks) and engine.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cbdfs.h"
#include "log.h"
#include "util.h"

#define ATTR_TIMEOUT  1.0 /* seconds the kernel may cache attributes */
#define ENTRY_TIMEOUT 1.0 /* ... and names: backends come and go */
#define BLKSIZE	      4096

static struct cbdfs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct cbdfs_blkdev *fi_bdev(const struct fuse_file_info *fi)
{
	return (struct cbdfs_blkdev *)(uintptr_t)fi->fh;
}

/* What an inode is; *id: the backend of a file or a link. */
enum ino_kind {
	INO_NONE,
	INO_ROOT,
	INO_FILE,
	INO_BYNAME,
	INO_LINK
};

static enum ino_kind ino_kind(fuse_ino_t ino, uint32_t *id)
{
	if (ino == CBDFS_ROOT_INO)
		return INO_ROOT;
	if (ino == CBDFS_BYNAME_INO)
		return INO_BYNAME;
	if (ino >= CBDFS_INO(0) && ino < CBDFS_INO(CBDT_BACKENDS_NR)) {
		*id = (uint32_t)(ino - CBDFS_INO(0));
		return INO_FILE;
	}
	if (ino >= CBDFS_LINK_INO(0) &&
	    ino < CBDFS_LINK_INO(CBDT_BACKENDS_NR)) {
		*id = (uint32_t)(ino - CBDFS_LINK_INO(0));
		return INO_LINK;
	}
	return INO_NONE;
}

/* A backend name that can be a directory entry (records of any writer). */
static bool link_name_ok(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") &&
	       !strchr(name, '/');
}

/* The backend by-name/@name points to: the lowest id of that name. */
static int by_name(struct cbdfs *fs, const char *name, uint32_t *id,
		   struct cbdfs_backend_info *bi)
{
	if (!link_name_ok(name))
		return -ENOENT;
	for (uint32_t i = 0; i < CBDT_BACKENDS_NR; i++)
		if (!cbdfs_backend_info(fs, i, bi) && !strcmp(bi->name, name)) {
			*id = i;
			return 0;
		}
	return -ENOENT;
}

/* Backend @id has the link by-name/NAME (it is the lowest id of NAME). */
static int link_info(struct cbdfs *fs, uint32_t id,
		     struct cbdfs_backend_info *bi)
{
	struct cbdfs_backend_info other;
	uint32_t owner;

	if (cbdfs_backend_info(fs, id, bi) ||
	    by_name(fs, bi->name, &owner, &other) || owner != id)
		return -ENOENT;
	return 0;
}

static int link_target(uint32_t id, char *buf, size_t size)
{
	return snprintf(buf, size, "../backend%u", id);
}

static void stat_fill(const struct cbdfs *fs, fuse_ino_t ino,
		      const struct cbdfs_backend_info *bi, struct stat *st)
{
	uint32_t id = 0;
	char target[32];

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim = fs->start_time;
	st->st_mtim = fs->start_time;
	st->st_ctim = fs->start_time;
	st->st_blksize = BLKSIZE;
	switch (ino_kind(ino, &id)) {
	case INO_ROOT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 3; /* ., .. and by-name/.. */
		break;
	case INO_BYNAME:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		break;
	case INO_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = link_target(id, target, sizeof(target));
		break;
	default:
		st->st_mode = S_IFREG | (bi->ro ? 0400 : 0600);
		st->st_nlink = 1;
		st->st_size = (off_t)bi->size;
		st->st_blocks = (blkcnt_t)((bi->size + 511) / 512);
	}
}

/* Attributes of @ino: 0, or -ENOENT when it is (no longer) there. */
static int ino_stat(struct cbdfs *fs, fuse_ino_t ino, struct stat *st)
{
	struct cbdfs_backend_info bi;
	uint32_t id;

	switch (ino_kind(ino, &id)) {
	case INO_ROOT:
	case INO_BYNAME:
		break;
	case INO_FILE:
		if (cbdfs_backend_info(fs, id, &bi))
			return -ENOENT;
		break;
	case INO_LINK:
		if (link_info(fs, id, &bi))
			return -ENOENT;
		break;
	default:
		return -ENOENT;
	}
	stat_fill(fs, ino, &bi, st);
	return 0;
}

/* "backendN" with N a canonical decimal backend id; -1 otherwise. */
static long name_to_id(const char *name)
{
	const char *p;
	long id = 0;

	if (strncmp(name, "backend", 7) != 0)
		return -1;
	p = name + 7;
	if (!*p || (p[0] == '0' && p[1]) || strlen(p) > 5)
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		id = id * 10 + (*p - '0');
	}
	return id < CBDT_BACKENDS_NR ? id : -1;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = CBDFS_MAX_IO;
	/* loop's queue depth must reach us: async DIO, many in background */
	conn->max_background = 256;
	conn->congestion_threshold = 192;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE | FUSE_CAP_WRITEBACK_CACHE |
			FUSE_CAP_ATOMIC_O_TRUNC);
	log_dbg("init: protocol %u.%u, max_write %u, max_background %u",
		conn->proto_major, conn->proto_minor, conn->max_write,
		conn->max_background);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cbdfs *fs = req_fs(req);
	struct cbdfs_backend_info bi;
	struct fuse_entry_param e;
	fuse_ino_t ino = 0;
	uint32_t id;
	long n;

	if (parent == CBDFS_ROOT_INO && !strcmp(name, CBDFS_BYNAME)) {
		ino = CBDFS_BYNAME_INO;
	} else if (parent == CBDFS_ROOT_INO) {
		n = name_to_id(name);
		if (n >= 0)
			ino = CBDFS_INO(n);
	} else if (parent == CBDFS_BYNAME_INO && !by_name(fs, name, &id, &bi)) {
		ino = CBDFS_LINK_INO(id);
	}
	memset(&e, 0, sizeof(e));
	if (!ino || ino_stat(fs, ino, &e.attr)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;

	if (ino_stat(req_fs(req), ino, &st))
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cbdfs_backend_info bi;
	char target[32];
	uint32_t id;

	if (ino_kind(ino, &id) != INO_LINK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (link_info(req_fs(req), id, &bi)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	link_target(id, target, sizeof(target));
	fuse_reply_readlink(req, target);
}

/*
 * Like a block device: the size is the backend's, so truncation (from
 * open(O_TRUNC) or truncate) is ignored, and so are mode, owner and times.
 */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	op_getattr(req, ino, fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cbdfs *fs = req_fs(req);
	bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct cbdfs_blkdev *bd;
	uint32_t id;
	int ret;

	switch (ino_kind(ino, &id)) {
	case INO_FILE:
		break;
	case INO_ROOT:
	case INO_BYNAME:
		fuse_reply_err(req, EISDIR);
		return;
	case INO_LINK: /* the kernel follows links; O_PATH never gets here */
		fuse_reply_err(req, ELOOP);
		return;
	default:
		fuse_reply_err(req, ENOENT);
		return;
	}
	ret = cbdfs_blkdev_open(fs, id, writable, &bd);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uintptr_t)bd;
	/* never serve a block image from the page cache: another host writes */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) != 0)
		cbdfs_blkdev_release(fs, bd); /* the opener is gone */
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	cbdfs_blkdev_release(req_fs(req), fi_bdev(fi));
	fuse_reply_err(req, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	cbdfs_engine_read(fi_bdev(fi), req, (uint64_t)off, size);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	cbdfs_engine_write(fi_bdev(fi), req, buf, (uint64_t)off, size);
}

/* close() needs nothing: fsync is what makes data durable. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	cbdfs_engine_flush(fi_bdev(fi), req);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	uint16_t op;

	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		op = CBDT_OP_DISCARD;
	} else if (mode == FALLOC_FL_ZERO_RANGE ||
		   mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
		op = CBDT_OP_WRITE_ZEROES;
	} else {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	cbdfs_engine_trim(fi_bdev(fi), req, op, (uint64_t)off, (uint64_t)len);
}

/* ---- the directories: a snapshot per opendir ------------------------ */

struct dirbuf {
	char *p;
	size_t size;
};

static int dirbuf_add(fuse_req_t req, struct dirbuf *db, const char *name,
		      fuse_ino_t ino, mode_t mode)
{
	struct stat st = {.st_ino = ino, .st_mode = mode};
	size_t len = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
	char *p = realloc(db->p, db->size + len);

	if (!p)
		return -ENOMEM;
	db->p = p;
	fuse_add_direntry(req, p + db->size, len, name, &st,
			  (off_t)(db->size + len));
	db->size += len;
	return 0;
}

/* The entries of the root (@links false) or of by-name (true). */
static int dir_fill(fuse_req_t req, struct dirbuf *db, fuse_ino_t self,
		    bool links)
{
	struct cbdfs *fs = req_fs(req);
	struct cbdfs_backend_info bi;
	char name[32];
	int ret;

	ret = dirbuf_add(req, db, ".", self, S_IFDIR);
	if (!ret)
		ret = dirbuf_add(req, db, "..", CBDFS_ROOT_INO, S_IFDIR);
	if (!ret && !links)
		ret = dirbuf_add(req, db, CBDFS_BYNAME, CBDFS_BYNAME_INO,
				 S_IFDIR);
	for (uint32_t id = 0; id < CBDT_BACKENDS_NR && !ret; id++) {
		if (!links) {
			if (cbdfs_backend_info(fs, id, &bi))
				continue;
			snprintf(name, sizeof(name), "backend%u", id);
			ret = dirbuf_add(req, db, name, CBDFS_INO(id), S_IFREG);
		} else if (!link_info(fs, id, &bi)) {
			ret = dirbuf_add(req, db, bi.name, CBDFS_LINK_INO(id),
					 S_IFLNK);
		}
	}
	return ret;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dirbuf *db;
	uint32_t id;
	int ret;

	switch (ino_kind(ino, &id)) {
	case INO_ROOT:
	case INO_BYNAME:
		break;
	case INO_NONE:
		fuse_reply_err(req, ENOENT);
		return;
	default:
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	db = calloc(1, sizeof(*db));
	if (!db) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = dir_fill(req, db, ino, ino == CBDFS_BYNAME_INO);
	if (ret) {
		free(db->p);
		free(db);
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uintptr_t)db;
	if (fuse_reply_open(req, fi) != 0) {
		free(db->p);
		free(db);
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dirbuf *db = (struct dirbuf *)(uintptr_t)fi->fh;

	if (off < 0 || (size_t)off >= db->size)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, db->p + off,
			       MIN(size, db->size - (size_t)off));
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct dirbuf *db = (struct dirbuf *)(uintptr_t)fi->fh;

	free(db->p);
	free(db);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cbdfs *fs = req_fs(req);
	struct cbdfs_backend_info bi;
	struct statvfs sv;
	uint64_t blocks = 0;
	uint32_t id, files = 2; /* the directories */

	for (id = 0; id < CBDT_BACKENDS_NR; id++) {
		if (cbdfs_backend_info(fs, id, &bi))
			continue;
		blocks += bi.size / BLKSIZE;
		files++;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = BLKSIZE; /* loop takes its discard granularity here */
	sv.f_frsize = BLKSIZE;
	sv.f_blocks = blocks;
	sv.f_files = files;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops cbdfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.setattr = op_setattr,
	.open = op_open,
	.release = op_release,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.fallocate = op_fallocate,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
};
