/* SPDX-License-Identifier: MIT */
/*
 * The info block, without a mapping: the layout a size gets
 * (cbdt_layout_compute), and the checks of an image's two info copies
 * (cbdt_info_check), pure functions of the bytes they are given so that
 * they can be fuzzed (tests/fuzz/fuzz-info.c).  Thread-safe.
 */
#include <errno.h>
#include <string.h>

#include "cbdt.h"
#include "internal.h"

#define ALIGN_UP64(x, a) \
	(((x) + (uint64_t)(a)-1) / (uint64_t)(a) * (uint64_t)(a))

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

uint32_t info_crc(const struct cbdt_info *in)
{
	return cbdt_crc32c(0, (const uint8_t *)in + 4, sizeof(*in) - 4);
}

bool bytes_zero(const void *p, size_t len)
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
int info_pick(const void *image, size_t len, struct cbdt_info *out)
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
