/* Description: pcache key sets (transport/kset.c): encode and read back,
 * every field corrupted (with the crc fixed up where the check behind it
 * is the point) giving the error a replay acts on, torn ksets, keys of a
 * reused segment's former generation, the link to the next segment; and
 * a recorded log cut at every sector boundary: a scan accepts exactly
 * the ksets written whole before the cut, in order, and stops at the
 * first torn one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cbdt-cache.h"
#include "cbdt.h"

#define IDENT	0xabcdef0123456789ULL
#define NSEGS	4U
#define SEG_GEN 9U /* of the segment the ksets are in */

static uint32_t gens[NSEGS] = {1, 7, 3, 2};
static const struct cbdt_kset_ctx ctx0 = {
	.seq = 10,
	.backend_ident = IDENT,
	.backend_size = 1ULL << 30,
	.nsegs = NSEGS,
	.seg_data_size = 16U << 20,
	.gens = gens,
	.seg_gen = SEG_GEN,
};

/* Encode @n @keys as kset @seq of our backend, in a segment of SEG_GEN. */
static int enc(void *at, uint64_t seq, const struct cbdt_cache_key *keys,
	       unsigned n)
{
	struct cbdt_kset_hdr h = {
		.seq = seq, .backend_ident = IDENT, .seg_gen = SEG_GEN};

	return cbdt_kset_encode(at, &h, keys, n);
}

static struct cbdt_cache_key key(uint64_t off, uint32_t len, uint32_t seg,
				 uint32_t seg_off)
{
	return (struct cbdt_cache_key){.off = off,
				       .len = len,
				       .seg = seg,
				       .seg_off = seg_off,
				       .seg_gen = gens[seg]};
}

/* 4096 bytes, aligned for the struct */
static union {
	struct cbdt_cache_kset k;
	uint8_t b[4096];
} buf, out;

static void encode3(uint64_t seq)
{
	struct cbdt_cache_key keys[3] = {
		key(0, 4096, 0, 0),
		key(1 << 20, 512, 1, 8192),
		{.off = 4096, .len = 8192, .flags = CBDT_KEY_DISCARD},
	};

	assert_int_equal(enc(buf.b, seq, keys, 3), 0);
}

/* Recompute the crc after a change: the check behind it is tested. */
static void fix_crc(void)
{
	size_t len = sizeof(buf.k) + buf.k.nkeys * sizeof(buf.k.keys[0]);

	buf.k.crc = cbdt_crc32c(0, buf.b + 4, len - 4);
}

static ssize_t rd(const struct cbdt_kset_ctx *c)
{
	return cbdt_kset_read(buf.b, sizeof(buf), c, &out.k);
}

static void test_round_trip(void **state)
{
	encode3(10);
	assert_int_equal(cbdt_kset_size(3), 512);
	assert_int_equal(cbdt_kset_size(0), 512);
	assert_int_equal(cbdt_kset_size(CBDT_KSET_KEYS_MAX), 4096);
	assert_int_equal(rd(&ctx0), 512);
	assert_int_equal(out.k.nkeys, 3);
	assert_int_equal(out.k.keys[1].off, 1 << 20);
	assert_int_equal(out.k.keys[1].seg_gen, 7);
	assert_true(out.k.keys[2].flags & CBDT_KEY_DISCARD);
	/* a full kset, and the limit */
	struct cbdt_cache_key keys[CBDT_KSET_KEYS_MAX + 1];
	for (unsigned i = 0; i <= CBDT_KSET_KEYS_MAX; i++)
		keys[i] = key(i * 4096ULL, 4096, i % NSEGS, i * 4096);
	struct cbdt_kset_hdr h = {.seq = 10,
				  .backend_ident = IDENT,
				  .seg_gen = SEG_GEN,
				  .next = true,
				  .next_seg = 2,
				  .next_gen = 3};
	assert_int_equal(cbdt_kset_encode(buf.b, &h, keys, CBDT_KSET_KEYS_MAX),
			 0);
	assert_int_equal(rd(&ctx0), 4096);
	assert_int_equal(out.k.next_seg, 2);
	assert_int_equal(out.k.seg_gen, SEG_GEN);
	assert_int_equal(enc(buf.b, 10, keys, CBDT_KSET_KEYS_MAX + 1), -EINVAL);
}

static void test_end_of_log_and_torn(void **state)
{
	memset(buf.b, 0, sizeof(buf));
	assert_int_equal(rd(&ctx0), -ENODATA); /* zeroes: nothing here */
	assert_int_equal(cbdt_kset_read(buf.b, 0, &ctx0, &out.k), -ENODATA);
	encode3(10);
	/* not enough room for it: torn at the end of an area */
	assert_int_equal(cbdt_kset_read(buf.b, 63, &ctx0, &out.k), -ERANGE);
	assert_int_equal(cbdt_kset_read(buf.b, 511, &ctx0, &out.k), -ERANGE);
	assert_int_equal(cbdt_kset_read(buf.b, 512, &ctx0, &out.k), 512);
	/* every byte of header and keys, flipped: the crc says so */
	for (size_t i = 4; i < 64 + 3 * 32; i++) {
		encode3(10);
		buf.b[i] ^= 0x10;
		ssize_t r = rd(&ctx0);
		if (i >= 4 && i < 8)
			assert_int_equal(r, -ENODATA); /* the magic */
		else
			assert_int_equal(r, -EBADMSG);
	}
	encode3(10);
	buf.k.crc ^= 1;
	assert_int_equal(rd(&ctx0), -EBADMSG);
	/* more keys than fit: never trusted for a length */
	encode3(10);
	buf.k.nkeys = CBDT_KSET_KEYS_MAX + 1;
	assert_int_equal(rd(&ctx0), -EBADMSG);
}

static void test_stale(void **state)
{
	struct cbdt_kset_ctx c = ctx0;
	uint32_t g[NSEGS];

	encode3(10);
	c.seq = 11; /* an older kset where a newer one was expected */
	assert_int_equal(rd(&c), -ESTALE);
	c = ctx0;
	c.backend_ident = IDENT + 1; /* another backend's cache */
	assert_int_equal(rd(&c), -ESTALE);
	c = ctx0;
	c.seg_gen = SEG_GEN + 1; /* the segment was reused: its old log */
	assert_int_equal(rd(&c), -ESTALE);
	/* segment 1 was reused by GC since: its key is of the former life */
	memcpy(g, gens, sizeof(g));
	g[1]++;
	c = ctx0;
	c.gens = g;
	assert_int_equal(rd(&c), -ESTALE);
}

/* Case @i of test_bad_fields on buf: its name, or NULL past the last. */
static const char *corrupt(unsigned i)
{
	struct cbdt_cache_key *k0 = &buf.k.keys[0], *k2 = &buf.k.keys[2];

	switch (i) {
	case 0:
		buf.k.flags = 2;
		return "unknown kset flag";
	case 1:
		buf.k.reserved[23] = 1;
		return "reserved header byte";
	case 2:
		buf.k.next_seg = 1;
		return "next_seg without NEXT_SEG";
	case 3:
		buf.k.flags = CBDT_KSET_NEXT_SEG;
		buf.k.next_seg = NSEGS;
		return "next_seg out of range";
	case 4:
		k0->flags = 8;
		return "unknown key flag";
	case 5:
		k0->reserved = 1;
		return "key reserved";
	case 6:
		k0->len = 0;
		return "zero length";
	case 7:
		k0->off = 100;
		return "unaligned offset";
	case 8:
		k0->len = 1000;
		return "unaligned length";
	case 9:
		k0->off = 1ULL << 30;
		return "past the backend";
	case 10:
		k0->off = UINT64_MAX - 511;
		return "wrapping the backend";
	case 11:
		k0->seg = NSEGS;
		return "segment out of range";
	case 12:
		k0->seg_off = (16U << 20) - 512;
		return "past the segment";
	case 13:
		k2->seg = 1;
		return "discard with data";
	case 14:
		k2->data_crc = 1;
		return "discard with a crc";
	case 15:
		k0->data_crc = 1;
		return "a crc without KEY_CRC";
	case 16:
		k2->flags |= CBDT_KEY_CRC;
		return "discard with KEY_CRC";
	case 17:
		k0->flags = CBDT_KEY_ZEROES;
		return "zeroes without discard";
	default:
		return NULL;
	}
}

static void test_bad_fields(void **state)
{
	const char *what;

	for (unsigned i = 0;; i++) {
		encode3(10);
		if (!(what = corrupt(i)))
			break;
		fix_crc();
		if (rd(&ctx0) != -EINVAL)
			fail_msg("%s: %zd, not -EINVAL", what, rd(&ctx0));
	}
}

/* A log of ksets of 1..40 keys; returns its length, ends[] where each
 * kset ends. */
#define LOG_KSETS 24
static size_t record_log(uint8_t *log, size_t size, size_t ends[])
{
	size_t at = 0;

	for (unsigned i = 0; i < LOG_KSETS; i++) {
		struct cbdt_cache_key keys[40];
		unsigned n = 1 + (i * 7) % 40; /* 1 to 3 sectors */

		for (unsigned j = 0; j < n; j++)
			keys[j] = key((i * 40 + j) * 4096ULL, 4096, j % NSEGS,
				      (i * 40 + j) * 4096);
		assert_true(at + cbdt_kset_size(n) <= size);
		assert_int_equal(enc(log + at, 100 + i, keys, n), 0);
		at += cbdt_kset_size(n);
		ends[i] = at;
	}
	return at;
}

static void test_every_cut_of_a_log(void **state)
{
	static uint8_t log[64 << 10], disk[64 << 10], old[64 << 10];
	size_t ends[LOG_KSETS], len = record_log(log, sizeof(log), ends);
	struct cbdt_kset_ctx c = ctx0;

	/* what the area held before: an older log (seq 1..) and garbage */
	memset(old, 0xa5, sizeof(old));
	for (size_t at = 0; at + 512 <= sizeof(old); at += 1024) {
		struct cbdt_cache_key k = key(0, 512, 0, 0);

		enc(old + at, 1 + at / 1024, &k, 1);
	}
	for (size_t cut = 0; cut <= len; cut += CBDT_SECTOR_SIZE) {
		unsigned whole = 0, seen = 0;
		size_t at = 0;
		ssize_t r;

		memcpy(disk, old, sizeof(disk));
		memcpy(disk, log,
		       cut); /* the sectors written before the crash */
		while (whole < LOG_KSETS && ends[whole] <= cut)
			whole++;
		c.seq = 100;
		while ((r = cbdt_kset_read(disk + at, sizeof(disk) - at, &c,
					   &out.k)) > 0) {
			assert_int_equal(out.k.seq, c.seq);
			seen++;
			c.seq++;
			at += (size_t)r;
		}
		assert_int_equal(seen, whole);
		assert_true(r == -ENODATA || r == -EBADMSG || r == -ESTALE ||
			    r == -ERANGE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_end_of_log_and_torn),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_every_cut_of_a_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
