/* SPDX-License-Identifier: MIT */
/*
 * Mapping, opening and formatting a transport.  A struct cbdt is immutable
 * after cbdt_open() (or after cbdt_format() on a cbdt_map()), so any number
 * of threads may use it; format itself is single-threaded.  The layout and
 * the checks of the info block are in info.c, what kind of device or file
 * a path is in probe.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpmem2.h>

#include "barrier.h"
#include "cbdt-cache.h"
#include "cbdt.h"
#include "internal.h"

struct cbdt {
	char *path;
	int fd;
	bool rdonly;
	bool is_dax;
	bool dax_pagemap_dev; /* page map on the device (--map=dev) */
	void *base;
	uint64_t map_size;
	struct pmem2_source *src; /* NULL with the plain mmap fallback */
	struct pmem2_map *map;	  /* NULL with the plain mmap fallback */
	bool valid;		  /* info holds a validated copy */
	struct cbdt_info info;
};

#define BLANK_CHECK_LEN (1U << 20)

/*
 * Worded for the open/format errors of cbdt.h, but general enough for the
 * same errnos from claims, records and rings, which callers print too.
 */
const char *cbdt_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case ENOENT:
		return "does not exist";
	case ENOSPC:
		return "too small for a transport, or no free slot left";
	case ENODATA:
		return "not formatted (nothing written there yet; cbd-admin format makes it a transport)";
	case EMEDIUMTYPE:
		return "not a cbd transport (bad magic)";
	case EBADMSG:
		return "corrupted (checksum mismatch in every copy)";
	case EPROTONOSUPPORT:
		return "unsupported transport format version, flags or byte order";
	case ERANGE:
		return "layout does not fit the device (truncated?) or id out of range";
	case ENODEV:
		return "not a transport: neither a regular file nor a dax device (/dev/daxX.Y); a block device such as /dev/pmem0 goes through each kernel's page cache and is not shared memory";
	case EADDRINUSE:
		return "a dax device in system-ram mode: its memory is the kernel's RAM now (daxctl reconfigure-device --mode=devdax)";
	case EREMOTE:
		return "a file on a network or FUSE file system: not memory that hosts share (a file transport serves the processes of one kernel)";
	case EEXIST:
		return "already exists (format needs force) or held by a live process";
	case ENOTEMPTY:
		return "holds data that is not a cbd transport (format needs force)";
	case EBUSY:
		return "in use by a live process";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

/* ---- mapping ---- */

static int map_pmem2(struct cbdt *t, size_t len)
{
	struct pmem2_config *cfg;
	int ret;

	ret = pmem2_source_from_fd(&t->src, t->fd);
	if (ret)
		return ret;
	ret = pmem2_config_new(&cfg);
	if (ret)
		goto err_free_src;
	/* Regular and tmpfs files only offer page granularity; we never
	 * persist on the hot path, so it costs nothing. */
	ret = pmem2_config_set_required_store_granularity(
		cfg, PMEM2_GRANULARITY_PAGE);
	if (!ret)
		ret = pmem2_config_set_length(cfg, len);
	if (!ret && t->rdonly)
		ret = pmem2_config_set_protection(cfg, PMEM2_PROT_READ);
	if (!ret)
		ret = pmem2_map_new(&t->map, cfg, t->src);
	pmem2_config_delete(&cfg);
	if (ret)
		goto err_free_src;
	t->base = pmem2_map_get_address(t->map);
	t->map_size = pmem2_map_get_size(t->map);
	return 0;

err_free_src:
	pmem2_source_delete(&t->src);
	t->src = NULL;
	return ret;
}

/*
 * pmem2 returns -errno for system errors and PMEM2_E_* (<= -100000) for its
 * own; this release does not export pmem2_err_to_errno().
 */
static int pmem2_to_errno(int ret)
{
	if (ret < 0 && ret > PMEM2_E_UNKNOWN)
		return ret;
	switch (ret) {
	case PMEM2_E_INVALID_FILE_TYPE:
		return -ENODEV;
	case PMEM2_E_NOSUPP:
	case PMEM2_E_GRANULARITY_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	case PMEM2_E_SOURCE_EMPTY:
		return -ENOSPC;
	default:
		return -EINVAL;
	}
}

static int map_fd(struct cbdt *t)
{
	struct stat st;
	uint64_t size, align;
	void *p;
	int ret;

	if (fstat(t->fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		if (fs_is_remote(st.st_dev))
			return -EREMOTE;
		size = (uint64_t)st.st_size;
		align = (uint64_t)sysconf(_SC_PAGESIZE);
	} else if (S_ISCHR(st.st_mode)) {
		ret = dax_probe(st.st_rdev, &size, &align);
		if (ret)
			return ret;
		t->is_dax = true;
		t->dax_pagemap_dev = dax_pagemap_on_device(st.st_rdev);
	} else {
		return -ENODEV;
	}
	/* Mapping length (and offset 0) must be multiples of the alignment. */
	size -= size % align;
	/* Checked here: an empty or tiny file must never reach pmem2. */
	if (size < CBDT_META_OFF)
		return -ENOSPC;
	if (size > SIZE_MAX)
		return -EFBIG;

	ret = map_pmem2(t, (size_t)size);
	if (!ret)
		return 0;
	if (!t->is_dax)
		return pmem2_to_errno(ret);
	/* A dax device not under an NVDIMM namespace: libdaxctl validated
	 * it, so a plain shared mapping is fine. */
	p = mmap(NULL, (size_t)size, PROT_READ | (t->rdonly ? 0 : PROT_WRITE),
		 MAP_SHARED, t->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	t->base = p;
	t->map_size = size;
	return 0;
}

int cbdt_map(const char *path, unsigned map_flags, struct cbdt **out)
{
	struct stat st;
	struct cbdt *t;
	int ret;

	if (!path || !out || (map_flags & ~CBDT_MAP_RDONLY))
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->rdonly = map_flags & CBDT_MAP_RDONLY;
	t->path = strdup(path);
	if (!t->path) {
		ret = -ENOMEM;
		goto err_free;
	}
	t->fd = open(path, (t->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (t->fd < 0) {
		ret = -errno;
		/* A dax device handed to the kernel as RAM is still there,
		 * but its character device has no driver: say why. */
		if (ret == -ENXIO && stat(path, &st) == 0 &&
		    S_ISCHR(st.st_mode)) {
			uint64_t size, align;
			int probe = dax_probe(st.st_rdev, &size, &align);

			if (probe == -EADDRINUSE)
				ret = probe;
		}
		goto err_free;
	}
	ret = map_fd(t);
	if (ret)
		goto err_close;
	*out = t;
	return 0;

err_close:
	close(t->fd);
err_free:
	free(t->path);
	free(t);
	return ret;
}

void cbdt_close(struct cbdt *t)
{
	if (!t)
		return;
	if (t->map)
		pmem2_map_delete(&t->map);
	else if (t->base)
		munmap(t->base, (size_t)t->map_size);
	if (t->src)
		pmem2_source_delete(&t->src);
	close(t->fd);
	free(t->path);
	free(t);
}

int cbdt_validate(struct cbdt *t)
{
	struct cbdt_info in;
	int ret;

	ret = cbdt_info_check(t->base, (size_t)t->map_size, t->map_size, &in);
	if (ret)
		return ret;
	t->info = in;
	t->valid = true;
	return 0;
}

int cbdt_open(const char *path, unsigned map_flags, struct cbdt **out)
{
	struct cbdt *t;
	int ret;

	ret = cbdt_map(path, map_flags, &t);
	if (ret)
		return ret;
	ret = cbdt_validate(t);
	if (ret) {
		cbdt_close(t);
		return ret;
	}
	*out = t;
	return 0;
}

int cbdt_file_create(const char *path, uint64_t size)
{
	int fd, ret = 0;

	if (!size || size > INT64_MAX)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		unlink(path);
	}
	close(fd);
	return ret;
}

bool cbdt_is_blank(const struct cbdt *t)
{
	size_t len = t->map_size < BLANK_CHECK_LEN ? (size_t)t->map_size :
						     BLANK_CHECK_LEN;

	return bytes_zero(t->base, len);
}

/* ---- format ---- */

static void info_store(void *dst, struct cbdt_info *in, uint64_t seq)
{
	in->seq = seq ? seq : 1;
	in->crc = info_crc(in);
	memcpy(dst, in, sizeof(*in));
}

static void format_persist(struct cbdt *t, void *addr, size_t len)
{
	if (t->map)
		pmem2_get_persist_fn(t->map)(addr, len);
	else
		msync(addr, len, MS_SYNC);
}

int cbdt_format(struct cbdt *t, uint16_t flags, unsigned format_flags,
		struct cbdt_inuse *busy)
{
	uint8_t *base = t->base;
	struct cbdt_info in, old;
	uint64_t seq = 0;
	uint32_t dirty_seg;
	int ret;

	if (t->rdonly)
		return -EROFS;
	if ((flags & ~CBDT_F_ALL) || (format_flags & ~CBDT_FORMAT_FORCE))
		return -EINVAL;
	if (cbdt_validate(t) == 0) {
		if (cbdt_inuse_find(t, busy))
			return -EBUSY;
		/* A dead backend's dirty cache: writes acknowledged but not
		 * on its disk yet; its restart writes them back. */
		if (cbdt_cache_dirty_find(t, &dirty_seg) > 0) {
			if (busy)
				*busy = (struct cbdt_inuse){
					.type = CBDT_OBJ_SEGMENT,
					.id = dirty_seg};
			return -EBUSY;
		}
		if (!(format_flags & CBDT_FORMAT_FORCE))
			return -EEXIST;
	} else if (!cbdt_is_blank(t) && !(format_flags & CBDT_FORMAT_FORCE)) {
		return -ENOTEMPTY;
	}
	/* Continue the seq of any copy that still checks, so that a reader
	 * holding an old image can tell the new one is newer. */
	if (info_pick(t->base, (size_t)t->map_size, &old) == 0)
		seq = old.seq;
	ret = cbdt_layout_compute(t->map_size, flags, &in);
	if (ret)
		return ret;
	if (getrandom(in.uuid, sizeof(in.uuid), 0) != (ssize_t)sizeof(in.uuid))
		return -EIO; /* 16 bytes never come short once seeded */
	in.uuid[6] = (in.uuid[6] & 0x0f) | 0x40; /* RFC 4122 v4 */
	in.uuid[8] = (in.uuid[8] & 0x3f) | 0x80;
	t->valid = false;
	memset(&t->info, 0, sizeof(t->info));

	/* Infos first: a crash from here on leaves a blank transport, never
	 * a valid info over half-zeroed metadata. */
	memset(base, 0, CBDT_META_OFF);
	memset(base + CBDT_META_OFF, 0,
	       in.segments.off - CBDT_META_OFF +
		       (uint64_t)in.segments.count * CBDT_SLOT_SIZE);
	for (uint32_t i = 0; i < in.segments.count; i++) {
		uint8_t *seg =
			base + in.seg_data_off + (uint64_t)i * CBDT_SEG_SIZE;

		memset(seg, 0, CBDT_CTRL_SIZE);
	}
	/* Everything above is ordered before the infos that publish it;
	 * pairs with the reader's copy and crc check at open. */
	smp_mb();
	info_store(base + CBDT_INFO_A_OFF, &in, seq + 1);
	info_store(base + CBDT_INFO_B_OFF, &in, seq + 2);

	/* Once, off the hot path: page-granular msync on files. */
	format_persist(t, base,
		       in.segments.off +
			       (size_t)in.segments.count * CBDT_SLOT_SIZE);
	for (uint32_t i = 0; i < in.segments.count; i++)
		format_persist(
			t, base + in.seg_data_off + (uint64_t)i * CBDT_SEG_SIZE,
			CBDT_CTRL_SIZE);
	return cbdt_validate(t);
}

/* ---- accessors ---- */

const struct cbdt_info *cbdt_get_info(const struct cbdt *t)
{
	/* Zeroed until validated: every area then has count 0, so no slot
	 * of an unvalidated mapping can be reached. */
	return &t->info;
}

const char *cbdt_path(const struct cbdt *t)
{
	return t->path;
}

uint64_t cbdt_map_size(const struct cbdt *t)
{
	return t->map_size;
}

void *cbdt_base(const struct cbdt *t)
{
	return t->base;
}

bool cbdt_dax_pagemap_on_device(const struct cbdt *t)
{
	return t->dax_pagemap_dev;
}

bool cbdt_is_dax(const struct cbdt *t)
{
	return t->is_dax;
}

/* A dax mapping libpmem2 did not make (its fallback): flush each line. */
static void persist_clflush(const void *p, size_t len)
{
#if defined(__x86_64__)
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)63, end = (uintptr_t)p + len;

	for (; a < end; a += 64)
		__builtin_ia32_clflush((const void *)a);
	__builtin_ia32_sfence();
#else
	(void)p;
	(void)len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

cbdt_persist_fn cbdt_persist_get(const struct cbdt *t)
{
	if (!t->is_dax)
		return NULL;
	return t->map ? (cbdt_persist_fn)pmem2_get_persist_fn(t->map) :
			persist_clflush;
}

void *cbdt_segment_base(const struct cbdt *t, uint32_t id)
{
	/* The info was validated against the mapping: every segment of
	 * segments.count lies inside it. */
	if (!t->valid || id >= t->info.segments.count)
		return NULL;
	return (uint8_t *)t->base + t->info.seg_data_off +
	       (uint64_t)id * t->info.seg_size;
}

struct cbdt_channel_ctrl *cbdt_segment_ctrl(const struct cbdt *t, uint32_t id)
{
	return cbdt_segment_base(t, id);
}
