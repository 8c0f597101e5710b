/* SPDX-License-Identifier: MIT */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82f63b78), zlib-style API:
 * start with 0, chain by passing the previous result.  The SSE4.2 crc32
 * instruction when the CPU has it, else slicing-by-8 tables.  Pure
 * functions over private state; the tables are built once (thread-safe).
 */
#include <pthread.h>
#include <string.h>

#include "barrier.h"
#include "cbdt.h"

#define CRC32C_POLY 0x82f63b78U

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

static void crc32c_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0U - (c & 1)));
		crc32c_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32c_table[t][i] =
				(crc32c_table[t - 1][i] >> 8) ^
				crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
}

static uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	pthread_once(&crc32c_table_once, crc32c_table_init);
	while (len && ((uintptr_t)p & 7)) {
		c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= c;
		c = crc32c_table[7][w & 0xff] ^
		    crc32c_table[6][(w >> 8) & 0xff] ^
		    crc32c_table[5][(w >> 16) & 0xff] ^
		    crc32c_table[4][(w >> 24) & 0xff] ^
		    crc32c_table[3][(w >> 32) & 0xff] ^
		    crc32c_table[2][(w >> 40) & 0xff] ^
		    crc32c_table[1][(w >> 48) & 0xff] ^
		    crc32c_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = crc32c_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

#if defined(__x86_64__)
#define CRC32C_HAVE_HW 1

/*
 * The crc32 instruction has a latency of three cycles and a throughput of
 * one, so three independent streams over consecutive blocks run about three
 * times faster than one.  The CRC register update is linear: running a
 * block from register r equals running it from 0, xored with r pushed
 * through the block's length of zero bytes.  crc32c_zeros[][] does that push
 * for CRC32C_BLOCK bytes, one table per byte of the register.
 */
#define CRC32C_BLOCK 512U
static uint32_t crc32c_zeros[4][256];

static uint32_t crc32c_zeros_slow(uint32_t c)
{
	for (unsigned i = 0; i < CRC32C_BLOCK; i++)
		c = crc32c_table[0][c & 0xff] ^ (c >> 8);
	return c;
}

static void crc32c_zeros_init(void)
{
	uint32_t bit[32];

	pthread_once(&crc32c_table_once, crc32c_table_init);
	for (int i = 0; i < 32; i++)
		bit[i] = crc32c_zeros_slow(1U << i);
	for (int k = 0; k < 4; k++)
		for (unsigned v = 0; v < 256; v++) {
			uint32_t x = 0;

			for (int j = 0; j < 8; j++)
				if (v & (1U << j))
					x ^= bit[8 * k + j];
			crc32c_zeros[k][v] = x;
		}
}

static pthread_once_t crc32c_zeros_once = PTHREAD_ONCE_INIT;

static uint32_t crc32c_shift(uint32_t c)
{
	return crc32c_zeros[0][c & 0xff] ^ crc32c_zeros[1][(c >> 8) & 0xff] ^
	       crc32c_zeros[2][(c >> 16) & 0xff] ^ crc32c_zeros[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * CRC32C_BLOCK)
		pthread_once(&crc32c_zeros_once, crc32c_zeros_init);
	while (len >= 3 * CRC32C_BLOCK) {
		uint64_t c1 = 0, c2 = 0;

		for (unsigned i = 0; i < CRC32C_BLOCK; i += 8) {
			uint64_t w0, w1, w2;

			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + CRC32C_BLOCK + i, 8);
			memcpy(&w2, p + 2 * CRC32C_BLOCK + i, 8);
			c = __builtin_ia32_crc32di(c, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		c = crc32c_shift(crc32c_shift((uint32_t)c) ^ (uint32_t)c1) ^
		    (uint32_t)c2;
		p += 3 * CRC32C_BLOCK;
		len -= 3 * CRC32C_BLOCK;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static bool crc32c_hw_available(void)
{
	/* Computed once; a racing first call computes the same answer, so
	 * no ordering is needed (process-private word). */
	static int cached = -1;
	int v = READ_ONCE(cached);

	if (v < 0) {
		__builtin_cpu_init();
		v = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		WRITE_ONCE(cached, v);
	}
	return v;
}
#else
#define CRC32C_HAVE_HW 0

static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_sw(crc, buf, len);
}

static bool crc32c_hw_available(void)
{
	return false;
}
#endif

uint32_t cbdt_crc32c(uint32_t crc, const void *buf, size_t len)
{
	if (crc32c_hw_available())
		return crc32c_hw(crc, buf, len);
	return crc32c_sw(crc, buf, len);
}
