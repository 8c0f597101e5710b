/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for cbdt_info_check(): the first thing anybody reads of
 * a transport.  Input: mode byte, 8-byte little-endian mapping size, then
 * the image.  Mode bits 0/1 re-seal copy A/B with a correct crc so that
 * mutations reach the content checks.  Whatever the input, the check must
 * not read outside the image, and an accepted info must describe a layout
 * that fits the mapping without overlaps (checked here independently).
 * Single-threaded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbdt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR 9

static void reseal(uint8_t *image, size_t len, size_t off)
{
	struct cbdt_info in;

	if (off > len || len - off < sizeof(in))
		return;
	memcpy(&in, image + off, sizeof(in));
	in.crc = cbdt_crc32c(0, (const uint8_t *)&in + 4, sizeof(in) - 4);
	memcpy(image + off, &in, sizeof(in));
}

static void check_area(const struct cbdt_area *a, uint64_t size)
{
	uint64_t len = (uint64_t)a->count * a->entry_size;

	if (a->entry_size != CBDT_SLOT_SIZE || !a->count ||
	    a->off < CBDT_META_OFF || a->off > size || len > size - a->off)
		__builtin_trap();
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void check_info(const struct cbdt_info *in, uint64_t map_size)
{
	const struct cbdt_area *ar[4] = {&in->hosts, &in->backends,
					 &in->blkdevs, &in->segments};
	uint64_t seg_len = (uint64_t)in->segments.count * in->seg_size;

	if (in->magic != CBDT_MAGIC ||
	    in->format_version != CBDT_FORMAT_VERSION || in->size > map_size ||
	    (in->flags & ~CBDT_F_ALL))
		__builtin_trap();
	for (int i = 0; i < 4; i++)
		check_area(ar[i], in->size);
	if (in->seg_size != CBDT_SEG_SIZE || in->seg_data_off > in->size ||
	    seg_len > in->size - in->seg_data_off)
		__builtin_trap();
	for (int i = 0; i < 4; i++) {
		uint64_t li = (uint64_t)ar[i]->count * ar[i]->entry_size;

		if (overlap(ar[i]->off, li, in->seg_data_off, seg_len))
			__builtin_trap();
		for (int j = i + 1; j < 4; j++)
			if (overlap(ar[i]->off, li, ar[j]->off,
				    (uint64_t)ar[j]->count * ar[j]->entry_size))
				__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cbdt_info out;
	uint64_t map_size;
	uint8_t *image;
	size_t len;
	uint8_t mode;

	if (size < HDR)
		return 0;
	mode = data[0];
	memcpy(&map_size, data + 1, sizeof(map_size));
	len = size - HDR;
	/* An exact-size heap copy: ASan sees any read past the image. */
	image = malloc(len ? len : 1);
	if (!image)
		return 0;
	memcpy(image, data + HDR, len);
	if (mode & 1)
		reseal(image, len, CBDT_INFO_A_OFF);
	if (mode & 2)
		reseal(image, len, CBDT_INFO_B_OFF);
	if (cbdt_info_check(image, len, map_size, &out) == 0)
		check_info(&out, map_size);
	/* The same image as the whole mapping. */
	if (cbdt_info_check(image, len, len, &out) == 0)
		check_info(&out, len);
	free(image);
	return 0;
}
