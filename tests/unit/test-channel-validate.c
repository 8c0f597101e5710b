/* Description: the pure validators a handler relies on: every malformed
 * channel control area (magic, version, flags, counts, rings and data area
 * outside the segment, overlapping, misaligned, overflowing) and every
 * malformed submission entry (op, flags, lengths, device range, data
 * extent, overflows) is refused; good ones and exact fits pass. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cbdt.h"

#define SEG	 CBDT_SEG_SIZE
#define DEV_SIZE (1ULL << 30)

static struct cbdt_channel_ctrl good_ctrl(void)
{
	struct cbdt_channel_ctrl c;

	memset(&c, 0, sizeof(c));
	c.magic = CBDT_CHANNEL_MAGIC;
	c.version = CBDT_CHANNEL_VERSION;
	c.se_off = 4096;
	c.se_count = 256;
	c.ce_off = 4096 + 256 * 64;
	c.ce_count = 256;
	c.data_off = 64 << 10;
	c.data_size = SEG - (64 << 10);
	return c;
}

static void test_ctrl_validate_rejects_every_bad_area(void **state)
{
	static const struct {
		const char *what;
		int field; /* index into the cases below */
		uint64_t v;
		uint32_t seg_size;
	} bad[] = {
		{"magic", 0, 0x1234, SEG},
		{"version 0", 1, 0, SEG},
		{"version 2", 1, 2, SEG},
		{"unknown flag", 2, 1U << 7, SEG},
		{"se_count 0", 3, 0, SEG},
		{"se_count 3", 3, 3, SEG},
		{"se_count 384", 3, 384, SEG},
		{"ce_count 0", 4, 0, SEG},
		{"ce_count 6", 4, 6, SEG},
		{"se ring in ctrl", 5, 0, SEG},
		{"se ring in ctrl 2", 5, 2048, SEG},
		{"se_off misaligned", 5, 4096 + 8, SEG},
		{"ce_off misaligned", 6, 4096 + 256 * 64 + 16, SEG},
		{"ce ring in ctrl", 6, 64, SEG},
		{"se ring past end", 5, SEG - 64, SEG},
		{"se ring wraps u32", 5, 0xffffffc0U, SEG},
		{"ce ring past end", 6, SEG - 32, SEG},
		{"se overlaps ce", 6, 4096 + 64, SEG},
		{"ce overlaps data", 6, (64 << 10) - 32, SEG},
		{"se overlaps data", 5, (64 << 10) - 64, SEG},
		{"data in ctrl", 7, 0, SEG},
		{"data overlaps se", 7, 4096, SEG},
		{"data_off misaligned", 7, (64 << 10) + 512, SEG},
		{"data past end", 7, 128 << 10, SEG},
		{"data_size 0", 8, 0, SEG},
		{"data_size odd", 8, 4097, SEG},
		{"data_size huge", 8, 0xfffff000U, SEG},
		{"segment smaller", 9, 0, 1 << 20},
		{"segment tiny", 9, 0, 100},
		{"segment 0", 9, 0, 0},
	};
	struct cbdt_channel_geom g;
	struct cbdt_channel_ctrl c = good_ctrl();

	assert_int_equal(cbdt_channel_ctrl_validate(&c, SEG, &g), 0);
	assert_int_equal(g.se_off, 4096);
	assert_int_equal(g.ce_count, 256);
	assert_int_equal(g.data_size, SEG - (64 << 10));
	/* Control area of a single-entry channel, data ending exactly at
	 * the segment end: still good. */
	c.se_count = 1;
	c.ce_count = 1;
	c.ce_off = 4096 + 64;
	c.data_off = 8192;
	c.data_size = SEG - 8192;
	assert_int_equal(cbdt_channel_ctrl_validate(&c, SEG, &g), 0);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = good_ctrl();
		switch (bad[i].field) {
		case 0:
			c.magic = bad[i].v;
			break;
		case 1:
			c.version = (uint32_t)bad[i].v;
			break;
		case 2:
			c.flags = (uint32_t)bad[i].v;
			break;
		case 3:
			c.se_count = (uint32_t)bad[i].v;
			break;
		case 4:
			c.ce_count = (uint32_t)bad[i].v;
			break;
		case 5:
			c.se_off = (uint32_t)bad[i].v;
			break;
		case 6:
			c.ce_off = (uint32_t)bad[i].v;
			break;
		case 7:
			c.data_off = (uint32_t)bad[i].v;
			break;
		case 8:
			c.data_size = (uint32_t)bad[i].v;
			break;
		default:
			break;
		}
		if (cbdt_channel_ctrl_validate(&c, bad[i].seg_size, &g) == 0)
			fail_msg("accepted a control area with %s",
				 bad[i].what);
	}
}

static struct cbdt_se good_se(uint16_t op)
{
	struct cbdt_se se;

	memset(&se, 0, sizeof(se));
	se.op = op;
	if (op == CBDT_OP_FLUSH)
		return se;
	se.offset = 8192;
	se.len = 4096;
	if (op == CBDT_OP_READ || op == CBDT_OP_WRITE) {
		se.data_off = 4096;
		se.data_len = 4096;
	}
	return se;
}

static void test_se_validate_accepts_good_entries(void **state)
{
	struct cbdt_channel_ctrl c = good_ctrl();
	struct cbdt_channel_geom g;
	struct cbdt_se se;

	assert_int_equal(cbdt_channel_ctrl_validate(&c, SEG, &g), 0);
	for (uint16_t op = CBDT_OP_READ; op <= CBDT_OP_MAX; op++) {
		se = good_se(op);
		assert_int_equal(cbdt_se_validate(&se, &g, DEV_SIZE), 0);
	}
	se = good_se(CBDT_OP_WRITE);
	se.flags = CBDT_SE_FUA;
	assert_int_equal(cbdt_se_validate(&se, &g, DEV_SIZE), 0);
	se = good_se(CBDT_OP_WRITE_ZEROES);
	se.flags = CBDT_SE_FUA;
	assert_int_equal(cbdt_se_validate(&se, &g, DEV_SIZE), 0);
	/* exact fits at both ends */
	se = good_se(CBDT_OP_READ);
	se.offset = DEV_SIZE - 4096;
	se.data_off = g.data_size - 4096;
	assert_int_equal(cbdt_se_validate(&se, &g, DEV_SIZE), 0);
	se = good_se(CBDT_OP_DISCARD);
	se.offset = 0;
	se.len = (uint32_t)DEV_SIZE;
	assert_int_equal(cbdt_se_validate(&se, &g, DEV_SIZE), 0);
	/* unaligned byte ranges are the backend's business, not an error */
	se = good_se(CBDT_OP_WRITE);
	se.offset = 3;
	se.len = se.data_len = 5;
	assert_int_equal(cbdt_se_validate(&se, &g, DEV_SIZE), 0);
}

static void test_se_validate_rejects_every_bad_entry(void **state)
{
	static const struct {
		const char *what;
		uint16_t op;
		int field;
		uint64_t v;
	} bad[] = {
		{"op 0", CBDT_OP_READ, 0, 0},
		{"op MAX+1", CBDT_OP_READ, 0, CBDT_OP_MAX + 1},
		{"op 0xffff", CBDT_OP_READ, 0, 0xffff},
		{"unknown flag", CBDT_OP_WRITE, 1, 1U << 1},
		{"high flag", CBDT_OP_WRITE, 1, 0x8000},
		{"FUA on READ", CBDT_OP_READ, 1, CBDT_SE_FUA},
		{"FUA on FLUSH", CBDT_OP_FLUSH, 1, CBDT_SE_FUA},
		{"READ len 0", CBDT_OP_READ, 2, 0},
		{"WRITE len 0", CBDT_OP_WRITE, 2, 0},
		{"DISCARD len 0", CBDT_OP_DISCARD, 2, 0},
		{"WRITE_ZEROES len 0", CBDT_OP_WRITE_ZEROES, 2, 0},
		{"FLUSH len", CBDT_OP_FLUSH, 2, 4096},
		{"READ past end", CBDT_OP_READ, 3, DEV_SIZE - 4095},
		{"WRITE past end", CBDT_OP_WRITE, 3, DEV_SIZE},
		{"DISCARD past end", CBDT_OP_DISCARD, 3, DEV_SIZE - 1},
		{"WRITE_ZEROES past end", CBDT_OP_WRITE_ZEROES, 3,
		 DEV_SIZE + 4096},
		{"offset+len overflow", CBDT_OP_WRITE, 3, UINT64_MAX - 100},
		{"offset max", CBDT_OP_DISCARD, 3, UINT64_MAX},
		{"data past area", CBDT_OP_READ, 4, SEG - (64 << 10) - 4095},
		{"data_off overflow", CBDT_OP_WRITE, 4, 0xfffff800U},
		{"data_off max", CBDT_OP_READ, 4, 0xffffffffU},
		{"READ data_len short", CBDT_OP_READ, 5, 4095},
		{"WRITE data_len long", CBDT_OP_WRITE, 5, 8192},
		{"WRITE data_len 0", CBDT_OP_WRITE, 5, 0},
		{"FLUSH data_len", CBDT_OP_FLUSH, 5, 4096},
		{"DISCARD data_len", CBDT_OP_DISCARD, 5, 4096},
		{"WRITE_ZEROES data_len", CBDT_OP_WRITE_ZEROES, 5, 1},
	};
	struct cbdt_channel_ctrl c = good_ctrl();
	struct cbdt_channel_geom g;
	struct cbdt_se se;

	assert_int_equal(cbdt_channel_ctrl_validate(&c, SEG, &g), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		se = good_se(bad[i].op);
		switch (bad[i].field) {
		case 0:
			se.op = (uint16_t)bad[i].v;
			break;
		case 1:
			se.flags = (uint16_t)bad[i].v;
			break;
		case 2:
			se.len = (uint32_t)bad[i].v;
			se.data_len = se.data_len ? se.len : 0;
			break;
		case 3:
			se.offset = bad[i].v;
			break;
		case 4:
			se.data_off = (uint32_t)bad[i].v;
			break;
		case 5:
			se.data_len = (uint32_t)bad[i].v;
			break;
		default:
			break;
		}
		if (cbdt_se_validate(&se, &g, DEV_SIZE) != -EINVAL)
			fail_msg("accepted an entry with %s", bad[i].what);
	}
	/* a zero-sized device takes nothing but flushes */
	se = good_se(CBDT_OP_READ);
	se.offset = 0;
	assert_int_equal(cbdt_se_validate(&se, &g, 0), -EINVAL);
	se = good_se(CBDT_OP_FLUSH);
	assert_int_equal(cbdt_se_validate(&se, &g, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctrl_validate_rejects_every_bad_area),
		cmocka_unit_test(test_se_validate_accepts_good_entries),
		cmocka_unit_test(test_se_validate_rejects_every_bad_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
