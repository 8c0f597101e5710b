/* SPDX-License-Identifier: MIT */
/*
 * Mapping, validating and formatting a transport.  A struct cbdt is
 * immutable after cbdt_open() (or after cbdt_format() on a cbdt_map()), so
 * any number of threads may use it; format itself is single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <daxctl/libdaxctl.h>
#include <libpmem2.h>

#include "barrier.h"
#include "cbdt.h"

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

#define ALIGN_UP64(x, a) \
	(((x) + (uint64_t)(a)-1) / (uint64_t)(a) * (uint64_t)(a))
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

/* ---- layout ---- */

static uint64_t layout_meta_end(uint32_t segs)
{
	return CBDT_META_OFF + (uint64_t)(CBDT_HOSTS_NR + CBDT_BACKENDS_NR +
					  CBDT_BLKDEVS_NR + segs) *
				       CBDT_SLOT_SIZE;
}

static uint64_t layout_seg_data_off(uint32_t segs)
{
	return ALIGN_UP64(layout_meta_end(segs), CBDT_SEG_ALIGN);
}

static uint64_t layout_total(uint32_t segs)
{
	return layout_seg_data_off(segs) + (uint64_t)segs * CBDT_SEG_SIZE;
}

uint64_t cbdt_min_size(void)
{
	return layout_total(1);
}

int cbdt_layout_compute(uint64_t size, uint16_t flags, struct cbdt_info *out)
{
	uint64_t segs = size / CBDT_SEG_SIZE;
	uint64_t off;

	if (flags & ~CBDT_F_ALL)
		return -EINVAL;
	if (segs > CBDT_SEGMENTS_MAX)
		segs = CBDT_SEGMENTS_MAX;
	/* The metadata grows with the count: step down until both fit. */
	while (segs > 0 && layout_total((uint32_t)segs) > size)
		segs--;
	if (segs == 0)
		return -ENOSPC;

	memset(out, 0, sizeof(*out));
	out->hdr_version = CBDT_INFO_HDR_VERSION;
	out->magic = CBDT_MAGIC;
	out->format_version = CBDT_FORMAT_VERSION;
	out->flags = flags;
	out->endian = CBDT_ENDIAN_MARK;
	out->size = size;
	off = CBDT_META_OFF;
	out->hosts = (struct cbdt_area){off, CBDT_SLOT_SIZE, CBDT_HOSTS_NR};
	off += (uint64_t)CBDT_HOSTS_NR * CBDT_SLOT_SIZE;
	out->backends =
		(struct cbdt_area){off, CBDT_SLOT_SIZE, CBDT_BACKENDS_NR};
	off += (uint64_t)CBDT_BACKENDS_NR * CBDT_SLOT_SIZE;
	out->blkdevs = (struct cbdt_area){off, CBDT_SLOT_SIZE, CBDT_BLKDEVS_NR};
	off += (uint64_t)CBDT_BLKDEVS_NR * CBDT_SLOT_SIZE;
	out->segments = (struct cbdt_area){off, CBDT_SLOT_SIZE, (uint32_t)segs};
	out->seg_data_off = layout_seg_data_off((uint32_t)segs);
	out->seg_size = CBDT_SEG_SIZE;
	return 0;
}

/* ---- info validation (pure) ---- */

enum info_copy_state {
	COPY_ABSENT, /* outside the image */
	COPY_ZERO,
	COPY_BAD_MAGIC,
	COPY_BAD_CRC,
	COPY_OK, /* magic and crc good; contents not checked yet */
};

static uint32_t info_crc(const struct cbdt_info *in)
{
	return cbdt_crc32c(0, (const uint8_t *)in + 4, sizeof(*in) - 4);
}

static bool bytes_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* Copy one info copy out of the image first: the image may be shared. */
static enum info_copy_state info_copy_read(const void *image, size_t len,
					   size_t off, struct cbdt_info *in)
{
	if (off > len || len - off < sizeof(*in))
		return COPY_ABSENT;
	memcpy(in, (const uint8_t *)image + off, sizeof(*in));
	if (bytes_zero(in, sizeof(*in)))
		return COPY_ZERO;
	if (in->magic != CBDT_MAGIC)
		return COPY_BAD_MAGIC;
	if (in->crc != info_crc(in))
		return COPY_BAD_CRC;
	return COPY_OK;
}

/* Newer in wrap-safe order (seqs are never compared further apart). */
static bool seq_newer(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b) > 0;
}

/*
 * Pick the newest copy with good magic and crc.  Returns 0 and *out, or the
 * error that describes the pair when neither is usable.
 */
static int info_pick(const void *image, size_t len, struct cbdt_info *out)
{
	struct cbdt_info c[2];
	enum info_copy_state s[2];
	int best = -1;

	s[0] = info_copy_read(image, len, CBDT_INFO_A_OFF, &c[0]);
	s[1] = info_copy_read(image, len, CBDT_INFO_B_OFF, &c[1]);
	for (int i = 0; i < 2; i++) {
		if (s[i] != COPY_OK)
			continue;
		if (best < 0 || seq_newer(c[i].seq, c[best].seq))
			best = i;
	}
	if (best >= 0) {
		*out = c[best];
		return 0;
	}
	if (s[0] == COPY_BAD_CRC || s[1] == COPY_BAD_CRC)
		return -EBADMSG;
	if (s[0] == COPY_BAD_MAGIC || s[1] == COPY_BAD_MAGIC)
		return -EMEDIUMTYPE;
	if (s[0] == COPY_ABSENT && s[1] == COPY_ABSENT)
		return -ENOSPC;
	return -ENODATA;
}

/* One slot area: aligned, sized, inside [CBDT_META_OFF, limit). */
static bool area_ok(const struct cbdt_area *a, uint32_t max_count,
		    uint64_t limit)
{
	if (a->entry_size != CBDT_SLOT_SIZE)
		return false;
	if (a->count == 0 || a->count > max_count)
		return false;
	/* Slot words are CAS targets: keep them cache-line aligned. */
	if (a->off % 64 || a->off < CBDT_META_OFF || a->off > limit)
		return false;
	return (uint64_t)a->count * a->entry_size <= limit - a->off;
}

static bool ranges_overlap(uint64_t a_off, uint64_t a_len, uint64_t b_off,
			   uint64_t b_len)
{
	return a_off < b_off + b_len && b_off < a_off + a_len;
}

/* Contents of a copy whose crc is good: versions, then geometry. */
static int info_contents_check(const struct cbdt_info *in, uint64_t map_size)
{
	const struct cbdt_area *areas[4] = {&in->hosts, &in->backends,
					    &in->blkdevs, &in->segments};
	uint64_t off[5], len[5];
	uint64_t limit;

	if (in->hdr_version != CBDT_INFO_HDR_VERSION ||
	    in->format_version != CBDT_FORMAT_VERSION ||
	    in->endian != CBDT_ENDIAN_MARK || (in->flags & ~CBDT_F_ALL))
		return -EPROTONOSUPPORT;

	/* A mapping shorter than the formatted size is a truncated file. */
	if (in->size > map_size || in->size < CBDT_META_OFF)
		return -ERANGE;
	limit = in->size;

	/* Host ids 0xffff (none) and lease ids (id + 1 in 16 bits) bound
	 * the counts. */
	if (!area_ok(&in->hosts, 0xfffeU, limit) ||
	    !area_ok(&in->backends, 0xffffU, limit) ||
	    !area_ok(&in->blkdevs, 0xffffU, limit) ||
	    !area_ok(&in->segments, CBDT_SEGMENTS_MAX, limit))
		return -ERANGE;

	if (in->seg_size != CBDT_SEG_SIZE ||
	    in->seg_data_off % CBDT_SEG_ALIGN ||
	    in->seg_data_off < CBDT_META_OFF || in->seg_data_off > limit ||
	    (uint64_t)in->segments.count * in->seg_size >
		    limit - in->seg_data_off)
		return -ERANGE;

	for (int i = 0; i < 4; i++) {
		off[i] = areas[i]->off;
		len[i] = (uint64_t)areas[i]->count * areas[i]->entry_size;
	}
	off[4] = in->seg_data_off;
	len[4] = (uint64_t)in->segments.count * in->seg_size;
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			if (ranges_overlap(off[i], len[i], off[j], len[j]))
				return -ERANGE;
	return 0;
}

int cbdt_info_check(const void *image, size_t len, uint64_t map_size,
		    struct cbdt_info *out)
{
	struct cbdt_info in;
	int ret;

	if (map_size < CBDT_META_OFF)
		return -ENOSPC;
	ret = info_pick(image, len, &in);
	if (ret)
		return ret;
	ret = info_contents_check(&in, map_size);
	if (ret)
		return ret;
	if (out)
		*out = in;
	return 0;
}

/* ---- mapping ---- */

/*
 * Does the nd_dax device above dax character device @rdev keep its page
 * map (struct pages) on the device itself (ndctl --map=dev, sysfs mode
 * "pmem")?  Each kernel that maps it then writes its own page structs into
 * the shared memory: two hosts corrupt each other.
 */
static bool dax_pagemap_on_device(dev_t rdev)
{
	char path[96], mode[16] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/../mode", major(rdev),
		 minor(rdev));
	f = fopen(path, "re");
	if (!f)
		return false; /* not under an NVDIMM namespace */
	if (!fgets(mode, sizeof(mode), f))
		mode[0] = '\0';
	fclose(f);
	return !strncmp(mode, "pmem", 4);
}

/*
 * Size and alignment of a dax character device through libdaxctl; refuses
 * a device in system-ram mode (its memory belongs to the kernel), and any
 * other character device (-ENODEV).
 */
static int dax_probe(dev_t rdev, uint64_t *size, uint64_t *align)
{
	struct daxctl_ctx *ctx;
	struct daxctl_region *region;
	struct daxctl_dev *dev;
	int ret = -ENODEV;

	if (daxctl_new(&ctx) < 0)
		return -ENODEV;
	daxctl_region_foreach (ctx, region) {
		daxctl_dev_foreach (region, dev) {
			if ((unsigned)daxctl_dev_get_major(dev) !=
				    major(rdev) ||
			    (unsigned)daxctl_dev_get_minor(dev) != minor(rdev))
				continue;
			if (daxctl_dev_get_memory(dev)) {
				ret = -EADDRINUSE; /* system-ram mode */
				goto out_unref;
			}
			*size = daxctl_dev_get_size(dev);
			*align = daxctl_dev_get_align(dev);
			if (!*align)
				*align = daxctl_region_get_align(region);
			if (!*align)
				*align = CBDT_SEG_ALIGN;
			ret = 0;
			goto out_unref;
		}
	}
out_unref:
	daxctl_unref(ctx);
	return ret;
}

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

/*
 * A file on a file system served by another machine or process (NFS, SMB,
 * 9p, virtiofs, Ceph, FUSE, cluster file systems): its pages are not one
 * memory for the hosts that map it, so it is never a transport.  The type
 * comes from /proc/self/mountinfo: statfs() of a 9p file reports the
 * server's file system.
 */
static bool fs_is_remote(dev_t dev)
{
	static const char *const remote[] = {
		"nfs",	    "nfs4",   "cifs", "smb3",	   "smbfs", "9p",
		"virtiofs", "ceph",   "fuse", "fuseblk",   "ocfs2", "gfs2",
		"gpfs",	    "lustre", "afs",  "glusterfs",
	};
	char line[4096], fstype[64];
	unsigned maj, min;
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2 || !sep ||
		    maj != major(dev) || min != minor(dev) ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		for (unsigned i = 0; i < sizeof(remote) / sizeof(remote[0]);
		     i++)
			if (!strcmp(fstype, remote[i]) ||
			    !strncmp(fstype, "fuse.", 5))
				found = true;
		break;
	}
	fclose(f);
	return found;
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
	int ret;

	if (t->rdonly)
		return -EROFS;
	if ((flags & ~CBDT_F_ALL) || (format_flags & ~CBDT_FORMAT_FORCE))
		return -EINVAL;
	if (cbdt_validate(t) == 0) {
		if (cbdt_inuse_find(t, busy))
			return -EBUSY;
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
