/* SPDX-License-Identifier: MIT */
/*
 * Backing-store I/O: pread/pwrite straight between the backing fd and the
 * channel's data area, one request at a time per handler thread.  Durable
 * by default: a write returns once it is on the backing device (direct
 * I/O; O_DSYNC for files and for what direct I/O cannot take), so that it
 * survives a crash of this whole host, not only of the process.  In
 * writeback mode it may sit in this host's page cache until a flush.
 * Thread-safe: positional I/O only; the capability bits are a cache that
 * any thread may clear.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/major.h>
#include <linux/stat.h>

#include "barrier.h"
#include "store.h"
#include "util.h"

/* Source of the zeroes written where the kernel cannot zero a range. */
#define ZERO_BUF_SIZE (1U << 20)
static char zero_buf[ZERO_BUF_SIZE] __attribute__((aligned(4096)));

/*
 * Hold a regular file for as long as it is served: an OFD lock (per open
 * file description, so two backends of one process conflict too), write
 * lock for a writable backend, read lock for a read-only one (read-only
 * servers may share an image, nobody shares it with a writer).  QEMU
 * locks its images the same way.
 */
static int file_lock(int fd, bool ro)
{
	struct flock fl = {.l_type = ro ? F_RDLCK : F_WRLCK,
			   .l_whence = SEEK_SET};

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
}

/*
 * Offset and length alignment that direct I/O on @fd needs (statx
 * STATX_DIOALIGN; else the logical block size of a block device, else 4
 * KiB, which every file system takes).  Memory alignment: CBDT_DATA_UNIT
 * of the data area always satisfies it.
 */
static uint32_t dio_align_of(int fd, bool blk, uint32_t block_size)
{
	struct statx sx;

	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) ==
		    0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align)
		return sx.stx_dio_offset_align;
	return blk ? block_size : 4096;
}

/*
 * An image is a disk, not a document: its reads need not touch its
 * atime (on tmpfs that check alone was ~10 % of a 4 KiB read).  The file's
 * owner or root may ask for that; anyone else gets EPERM and the plain
 * open.
 */
static int store_open_path(const char *path, int flags)
{
	int fd = open(path, flags | O_NOATIME);

	if (fd < 0 && errno == EPERM)
		fd = open(path, flags);
	return fd;
}

/*
 * Open the descriptors of durability @sync: the direct one (O_DIRECT, plus
 * O_DSYNC for a file so that the allocation is durable too), and the
 * buffered O_DSYNC one that takes what direct I/O cannot (unaligned
 * requests, or all of them where the file system has no O_DIRECT, e.g.
 * tmpfs before Linux 6.6).  Writeback: one buffered descriptor.
 */
static int store_open_fds(struct store *s, const char *path, int flags,
			  bool blk)
{
	int rw = s->ro ? 0 : O_DSYNC;

	if (s->writeback) {
		s->fd = store_open_path(path, flags);
		s->fd_buf = s->fd;
		return s->fd < 0 ? -errno : 0;
	}
	s->fd = store_open_path(path, flags | O_DIRECT | (blk ? 0 : rw));
	if (s->fd < 0 && errno == EINVAL)
		s->fd = store_open_path(path, flags | rw); /* no O_DIRECT */
	else if (s->fd >= 0)
		s->direct = true;
	if (s->fd < 0)
		return -errno;
	/* Not O_EXCL: we hold the device through s->fd already. */
	s->fd_buf = store_open_path(path, (flags & ~O_EXCL) | rw);
	if (s->fd_buf < 0) {
		int ret = -errno;

		close(s->fd);
		s->fd = -1;
		return ret;
	}
	return 0;
}

/*
 * Memory, where a read or write is a copy and never waits for a device:
 * a file on tmpfs or ramfs, or a brd RAM disk.  (A cached page of a disk
 * file does not count: the next one may be a miss.)
 */
static bool store_in_memory(int fd, const struct stat *st)
{
	struct statfs sf;

	if (S_ISBLK(st->st_mode))
		return major(st->st_rdev) == RAMDISK_MAJOR;
	if (fstatfs(fd, &sf) < 0)
		return false;
	return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

int store_open(struct store *s, const char *path, unsigned flags)
{
	int oflags;
	struct stat st;
	int ret;

	memset(s, 0, sizeof(*s));
	s->fd = s->fd_buf = -1;
	s->ro = flags & STORE_RO;
	s->writeback = flags & STORE_WRITEBACK;
	oflags = (s->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	/* A block device is opened exclusively: EBUSY while it is mounted
	 * or another exclusive user (another backend, mkfs) holds it. */
	if (S_ISBLK(st.st_mode))
		oflags |= O_EXCL;
	ret = store_open_fds(s, path, oflags, S_ISBLK(st.st_mode));
	if (ret)
		return ret;
	if (fstat(s->fd, &st) < 0) {
		ret = -errno;
		goto err_close;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ret = -EINVAL;
		goto err_close;
	}
	if (S_ISREG(st.st_mode)) {
		ret = file_lock(s->fd, s->ro);
		if (ret)
			goto err_close;
	}
	ret = fd_size(s->fd, &s->size);
	if (ret)
		goto err_close;
	if (s->size < CBDT_BACKEND_MIN_SIZE) {
		ret = -EFBIG; /* too small: the caller says so */
		goto err_close;
	}
	s->blk = S_ISBLK(st.st_mode);
	s->memory = store_in_memory(s->fd, &st);
	s->block_size = 512;
	if (s->blk) {
		int bs;

		if (ioctl(s->fd, BLKSSZGET, &bs) == 0 && bs > 0)
			s->block_size = (uint32_t)bs;
	}
	if (s->direct)
		s->dio_align = dio_align_of(s->fd, s->blk, s->block_size);
	/* Served in whole 512-byte sectors, as a disk would be; the tail of
	 * an odd-sized image stays untouched. */
	s->tail = s->size % CBDT_SECTOR_SIZE;
	s->size -= s->tail;
	s->caps = STORE_CAN_ALL;
	strlcpy_field(s->path, path, sizeof(s->path));
	return 0;

err_close:
	store_close(s);
	return ret;
}

void store_caps_clear(struct store *s, unsigned caps)
{
	/* Private memory shared by the handler threads; a lost race only
	 * costs one more failing syscall. */
	WRITE_ONCE(s->caps, READ_ONCE(s->caps) & ~caps);
}

static bool store_can(struct store *s, unsigned cap)
{
	return READ_ONCE(s->caps) & cap;
}

void store_close(struct store *s)
{
	if (s->fd_buf >= 0 && s->fd_buf != s->fd)
		close(s->fd_buf);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = s->fd_buf = -1;
}

/*
 * The descriptor for @len bytes at @off from @buf: the direct one when the
 * request is aligned for it (and direct I/O still works), else the
 * buffered one.  Both are durable in sync mode.
 */
static int store_fd(struct store *s, const void *buf, uint64_t off,
		    uint64_t len)
{
	uint64_t a = s->dio_align;

	if (!s->direct || !store_can(s, STORE_CAN_DIRECT) || !a || off % a ||
	    len % a || (uintptr_t)buf % a)
		return s->fd_buf;
	return s->fd;
}

/* The kernel's ways of saying "this file or device cannot do that". */
static bool unsupported(int e)
{
	return e == EOPNOTSUPP || e == ENOTTY || e == ENOSYS;
}

/*
 * Direct I/O refused a buffer it should take (EINVAL, or EFAULT from a dax
 * mapping without struct pages): go buffered from now on, durable still.
 */
static bool direct_refused(struct store *s, int fd, int e)
{
	if (fd == s->fd_buf || (e != EINVAL && e != EFAULT))
		return false;
	store_caps_clear(s, STORE_CAN_DIRECT);
	return true;
}

int store_read(struct store *s, void *buf, uint64_t off, uint32_t len)
{
	uint8_t *p = buf;

	while (len) {
		int fd = store_fd(s, p, off, len);
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR || direct_refused(s, fd, errno))
				continue;
			return -errno;
		}
		if (n == 0) {
			/* The file shrank under us: what is gone reads as
			 * zeroes, as a hole would. */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (uint32_t)n;
	}
	return 0;
}

static int write_full(struct store *s, const void *buf, uint64_t off,
		      size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		int fd = store_fd(s, p, off, len);
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR || direct_refused(s, fd, errno))
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int store_write(struct store *s, const void *buf, uint64_t off, uint32_t len)
{
	if (s->ro)
		return -EROFS;
	return write_full(s, buf, off, len);
}

int store_flush(struct store *s)
{
	if (s->ro)
		return 0;
	if (fdatasync(s->fd) < 0)
		return -errno;
	return 0;
}

static int write_zero_buf(struct store *s, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < ZERO_BUF_SIZE ? (size_t)len : ZERO_BUF_SIZE;
		int ret = write_full(s, zero_buf, off, n);

		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* fallocate @mode over the range: 0, -EOPNOTSUPP (cap cleared) or -errno. */
static int file_fallocate(struct store *s, unsigned cap, int mode, uint64_t off,
			  uint64_t len)
{
	if (!store_can(s, cap))
		return -EOPNOTSUPP;
	if (fallocate(s->fd, mode | FALLOC_FL_KEEP_SIZE, (off_t)off,
		      (off_t)len) == 0) {
		/* The new extent map is metadata: durable only once synced. */
		if (!s->writeback && fdatasync(s->fd) < 0)
			return -errno;
		return 0;
	}
	if (unsupported(errno)) {
		store_caps_clear(s, cap);
		return -EOPNOTSUPP;
	}
	return -errno;
}

/* BLKDISCARD/BLKZEROOUT over whole logical blocks. */
static int blk_ioctl(struct store *s, unsigned cap, unsigned long req,
		     uint64_t off, uint64_t len)
{
	uint64_t range[2] = {off, len};

	if (!store_can(s, cap))
		return -EOPNOTSUPP;
	if (!len || ioctl(s->fd, req, range) == 0)
		return 0;
	if (unsupported(errno)) {
		store_caps_clear(s, cap);
		return -EOPNOTSUPP;
	}
	return -errno;
}

/* Split [off, off+len) into a block-aligned middle and unaligned edges. */
static void blk_split(const struct store *s, uint64_t off, uint64_t len,
		      uint64_t *mid_off, uint64_t *mid_len)
{
	uint64_t bs = s->block_size;
	uint64_t start = ALIGN_UP(off, bs);
	uint64_t end = (off + len) / bs * bs;

	if (end <= start) {
		*mid_off = off;
		*mid_len = 0;
		return;
	}
	*mid_off = start;
	*mid_len = end - start;
}

static int file_zero(struct store *s, uint64_t off, uint64_t len)
{
	int ret;

	ret = file_fallocate(s, STORE_CAN_ZERO, FALLOC_FL_ZERO_RANGE, off, len);
	if (ret != -EOPNOTSUPP)
		return ret;
	/* tmpfs, for one, punches but cannot zero a range. */
	ret = file_fallocate(s, STORE_CAN_PUNCH, FALLOC_FL_PUNCH_HOLE, off,
			     len);
	if (ret != -EOPNOTSUPP)
		return ret;
	return write_zero_buf(s, off, len);
}

static int blk_zero(struct store *s, uint64_t off, uint64_t len)
{
	uint64_t mid_off, mid_len;
	int ret;

	blk_split(s, off, len, &mid_off, &mid_len);
	ret = blk_ioctl(s, STORE_CAN_ZERO, BLKZEROOUT, mid_off, mid_len);
	if (ret == -EOPNOTSUPP)
		return write_zero_buf(s, off, len);
	if (ret)
		return ret;
	ret = write_zero_buf(s, off, mid_len ? mid_off - off : len);
	if (ret || !mid_len)
		return ret;
	return write_zero_buf(s, mid_off + mid_len,
			      off + len - (mid_off + mid_len));
}

int store_write_zeroes(struct store *s, uint64_t off, uint64_t len)
{
	if (s->ro)
		return -EROFS;
	if (!len)
		return 0;
	return s->blk ? blk_zero(s, off, len) : file_zero(s, off, len);
}

int store_discard(struct store *s, uint64_t off, uint64_t len)
{
	uint64_t mid_off, mid_len;
	int ret;

	if (s->ro)
		return -EROFS;
	if (!len)
		return 0;
	if (!s->blk) {
		ret = file_fallocate(s, STORE_CAN_PUNCH, FALLOC_FL_PUNCH_HOLE,
				     off, len);
		if (ret != -EOPNOTSUPP)
			return ret;
		/* Keep hole semantics: a punched range reads as zeroes. */
		return file_zero(s, off, len);
	}
	blk_split(s, off, len, &mid_off, &mid_len);
	ret = blk_ioctl(s, STORE_CAN_PUNCH, BLKDISCARD, mid_off, mid_len);
	/* A disk that cannot discard has nothing to gain from it. */
	return ret == -EOPNOTSUPP ? 0 : ret;
}
