/* Description: crc32c: published check values (RFC 3720), chaining, the
 * SSE4.2 path against the table path and a bitwise reference on random
 * buffers of odd lengths and alignments, single-bit error detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Compiled in, so that the hardware and table paths are reachable one by
 * one; the library's copy is not linked (this object defines the symbol). */
#include "transport/crc32c.c"

#ifndef CRC32C_BLOCK
#define CRC32C_BLOCK 512U /* no hardware path on this arch */
#endif

/* Bit-at-a-time reference, straight from the definition. */
static uint32_t crc32c_ref(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78U & (0U - (crc & 1)));
	}
	return ~crc;
}

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint8_t rnd8(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)(rng >> 24);
}

static void test_check_value(void **state)
{
	(void)state;
	assert_int_equal(cbdt_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c_sw(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c_ref(0, "123456789", 9), 0xe3069283);
	assert_int_equal(cbdt_crc32c(0, "", 0), 0);
	assert_int_equal(cbdt_crc32c(0, "a", 1), 0xc1d04330);
}

/* The iSCSI test patterns of RFC 3720, B.4. */
static void test_rfc3720_vectors(void **state)
{
	uint8_t buf[32];

	(void)state;
	memset(buf, 0, sizeof(buf));
	assert_int_equal(cbdt_crc32c(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(cbdt_crc32c(0, buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(cbdt_crc32c(0, buf, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(cbdt_crc32c(0, buf, 32), 0x113fdb5c);
	assert_int_equal(crc32c_sw(0, buf, 32), 0x113fdb5c);
}

static void test_chaining(void **state)
{
	uint8_t buf[1000];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = rnd8();
	for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
		uint32_t c = cbdt_crc32c(0, buf, cut);

		c = cbdt_crc32c(c, buf + cut, sizeof(buf) - cut);
		assert_int_equal(c, cbdt_crc32c(0, buf, sizeof(buf)));
	}
}

static void test_hw_matches_sw(void **state)
{
	enum {
		MAX = 70000
	};
	uint8_t *buf = malloc(MAX + 16);

	(void)state;
	assert_non_null(buf);
	if (!crc32c_hw_available())
		fprintf(stderr,
			"note: no SSE4.2, comparing sw to reference only\n");
	for (size_t i = 0; i < MAX + 16; i++)
		buf[i] = rnd8();
	for (int iter = 0; iter < 3000; iter++) {
		size_t align = rnd8() % 16;
		size_t len = iter < 300 ? (size_t)iter :
					  ((size_t)rnd8() << 8 | rnd8()) % MAX;
		uint32_t seed = iter & 1 ? (uint32_t)rng : 0;
		uint32_t sw = crc32c_sw(seed, buf + align, len);

		if (crc32c_hw_available())
			assert_int_equal(crc32c_hw(seed, buf + align, len), sw);
		if (len < 4096)
			assert_int_equal(crc32c_ref(seed, buf + align, len),
					 sw);
		assert_int_equal(cbdt_crc32c(seed, buf + align, len), sw);
	}
	free(buf);
}

/* Around the three-stream block size of the hardware path. */
static void test_block_boundaries(void **state)
{
	enum {
		MAX = 8 * CRC32C_BLOCK + 64
	};
	uint8_t *buf = malloc(MAX);

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < MAX; i++)
		buf[i] = rnd8();
	for (size_t n = 1; n <= 5; n++)
		for (size_t len = n * 3 * CRC32C_BLOCK - 9;
		     len <= n * 3 * CRC32C_BLOCK + 9 && len + 7 <= MAX; len++)
			for (size_t align = 0; align < 8; align++) {
				uint32_t sw = crc32c_sw(0, buf + align, len);

				assert_int_equal(
					cbdt_crc32c(0, buf + align, len), sw);
				if (crc32c_hw_available())
					assert_int_equal(
						crc32c_hw(0x1234, buf + align,
							  len),
						crc32c_sw(0x1234, buf + align,
							  len));
			}
	free(buf);
}

static void test_single_bit_flip_detected(void **state)
{
	uint8_t buf[480];
	uint32_t good;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = rnd8();
	good = cbdt_crc32c(0, buf, sizeof(buf));
	for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1U << (bit % 8));
		assert_int_not_equal(cbdt_crc32c(0, buf, sizeof(buf)), good);
		buf[bit / 8] ^= (uint8_t)(1U << (bit % 8));
	}
	assert_int_equal(cbdt_crc32c(0, buf, sizeof(buf)), good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_rfc3720_vectors),
		cmocka_unit_test(test_chaining),
		cmocka_unit_test(test_hw_matches_sw),
		cmocka_unit_test(test_block_boundaries),
		cmocka_unit_test(test_single_bit_flip_detected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
