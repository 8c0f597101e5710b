/* Description: on-media layout: struct offsets, layout computation for many
 * sizes (segment count maximal, areas in order, 2 MiB aligned data), owner
 * word and lease encodings, backend identity hash. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cbdt.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void test_fixed_offsets_do_not_overlap(void **state)
{
	(void)state;
	assert_true(CBDT_INFO_A_OFF + sizeof(struct cbdt_info) <=
		    CBDT_INFO_B_OFF);
	assert_true(CBDT_INFO_B_OFF + CBDT_INFO_SIZE <= CBDT_GLOBAL_OFF);
	assert_int_equal(CBDT_GLOBAL_OFF + sizeof(struct cbdt_global),
			 CBDT_META_OFF);
	assert_int_equal(sizeof(struct cbdt_slot), CBDT_SLOT_SIZE);
	/* Owner word and heartbeat share the first cache line of a slot;
	 * the records start on the next one. */
	assert_int_equal(offsetof(struct cbdt_slot, hdr.owner), 0);
	assert_int_equal(offsetof(struct cbdt_slot, hdr.heartbeat), 8);
	assert_int_equal(offsetof(struct cbdt_slot, hdr.lock), 16);
	assert_int_equal(offsetof(struct cbdt_slot, rec[0]), 64);
	assert_int_equal(offsetof(struct cbdt_slot, rec[1]), 64 + 480);
	assert_int_equal(offsetof(struct cbdt_rec, payload), 16);
}

static void test_record_payloads_fit(void **state)
{
	(void)state;
	assert_true(sizeof(struct cbdt_host_rec) <= CBDT_REC_PAYLOAD);
	assert_true(sizeof(struct cbdt_backend_rec) <= CBDT_REC_PAYLOAD);
	assert_true(sizeof(struct cbdt_blkdev_rec) <= CBDT_REC_PAYLOAD);
	assert_true(sizeof(struct cbdt_segment_rec) <= CBDT_REC_PAYLOAD);
	assert_int_equal(offsetof(struct cbdt_channel_ctrl, sq_head) % 64, 0);
	assert_int_equal(offsetof(struct cbdt_channel_ctrl, sq_tail) % 64, 0);
	assert_int_equal(offsetof(struct cbdt_channel_ctrl, cq_sleep) % 64, 0);
}

/* Every invariant a computed layout must satisfy for @size. */
static void check_layout(uint64_t size, const struct cbdt_info *in)
{
	uint64_t meta_end, n = in->segments.count;

	assert_int_equal(in->magic, CBDT_MAGIC);
	assert_int_equal(in->format_version, CBDT_FORMAT_VERSION);
	assert_int_equal(in->hdr_version, CBDT_INFO_HDR_VERSION);
	assert_int_equal(in->endian, CBDT_ENDIAN_MARK);
	assert_int_equal(in->size, size);
	assert_int_equal(in->seg_size, CBDT_SEG_SIZE);

	assert_int_equal(in->hosts.off, CBDT_META_OFF);
	assert_int_equal(in->hosts.count, CBDT_HOSTS_NR);
	assert_int_equal(in->backends.count, CBDT_BACKENDS_NR);
	assert_int_equal(in->blkdevs.count, CBDT_BLKDEVS_NR);
	assert_int_equal(in->hosts.entry_size, CBDT_SLOT_SIZE);
	assert_int_equal(in->backends.entry_size, CBDT_SLOT_SIZE);
	assert_int_equal(in->blkdevs.entry_size, CBDT_SLOT_SIZE);
	assert_int_equal(in->segments.entry_size, CBDT_SLOT_SIZE);
	/* Areas back to back in order. */
	assert_int_equal(in->backends.off,
			 in->hosts.off + CBDT_HOSTS_NR * CBDT_SLOT_SIZE);
	assert_int_equal(in->blkdevs.off,
			 in->backends.off + CBDT_BACKENDS_NR * CBDT_SLOT_SIZE);
	assert_int_equal(in->segments.off,
			 in->blkdevs.off + CBDT_BLKDEVS_NR * CBDT_SLOT_SIZE);
	meta_end = in->segments.off + n * CBDT_SLOT_SIZE;

	assert_true(n >= 1 && n <= CBDT_SEGMENTS_MAX);
	assert_int_equal(in->seg_data_off % CBDT_SEG_ALIGN, 0);
	assert_true(in->seg_data_off >= meta_end);
	assert_true(in->seg_data_off - meta_end < CBDT_SEG_ALIGN);
	assert_true(in->seg_data_off + n * CBDT_SEG_SIZE <= size);

	/* Maximal: one more segment (and its metadata) would not fit. */
	if (n < CBDT_SEGMENTS_MAX) {
		uint64_t meta1 = meta_end + CBDT_SLOT_SIZE;
		uint64_t off1 = (meta1 + CBDT_SEG_ALIGN - 1) / CBDT_SEG_ALIGN *
				CBDT_SEG_ALIGN;

		assert_true(off1 + (n + 1) * CBDT_SEG_SIZE > size);
	}
}

static void test_min_size_is_one_segment(void **state)
{
	struct cbdt_info in;
	uint64_t min = cbdt_min_size();

	(void)state;
	/* 300 KiB of slots round up to one 2 MiB alignment unit. */
	assert_int_equal(min, 2 * MiB + CBDT_SEG_SIZE);
	assert_int_equal(cbdt_layout_compute(min, 0, &in), 0);
	assert_int_equal(in.segments.count, 1);
	assert_int_equal(in.seg_data_off, 2 * MiB);
	check_layout(min, &in);

	assert_int_equal(cbdt_layout_compute(min - 1, 0, &in), -ENOSPC);
	assert_int_equal(cbdt_layout_compute(CBDT_SEG_SIZE, 0, &in), -ENOSPC);
	assert_int_equal(cbdt_layout_compute(CBDT_META_OFF, 0, &in), -ENOSPC);
	assert_int_equal(cbdt_layout_compute(0, 0, &in), -ENOSPC);
}

static void test_layout_known_sizes(void **state)
{
	struct cbdt_info in;

	(void)state;
	assert_int_equal(cbdt_layout_compute(GiB, 0, &in), 0);
	assert_int_equal(in.segments.count, 63); /* 2 MiB + 63 x 16 MiB */
	check_layout(GiB, &in);

	assert_int_equal(cbdt_layout_compute(64 * MiB, 0, &in), 0);
	assert_int_equal(in.segments.count, 3);
	check_layout(64 * MiB, &in);
}

static void test_layout_metadata_growth_steps_down(void **state)
{
	struct cbdt_info in;
	/* 1749 segment slots push the metadata past 2 MiB, so the data
	 * moves to 4 MiB and only 1748 segments fit in this size. */
	uint64_t size = 2 * MiB + 1749ULL * CBDT_SEG_SIZE;

	(void)state;
	assert_int_equal(cbdt_layout_compute(size, 0, &in), 0);
	assert_int_equal(in.segments.count, 1748);
	assert_int_equal(in.seg_data_off, 2 * MiB);
	check_layout(size, &in);

	size = 4 * MiB + 1749ULL * CBDT_SEG_SIZE;
	assert_int_equal(cbdt_layout_compute(size, 0, &in), 0);
	assert_int_equal(in.segments.count, 1749);
	assert_int_equal(in.seg_data_off, 4 * MiB);
	check_layout(size, &in);
}

static void test_layout_capped_at_max_segments(void **state)
{
	struct cbdt_info in;
	uint64_t size = 4096 * GiB;

	(void)state;
	assert_int_equal(cbdt_layout_compute(size, 0, &in), 0);
	assert_int_equal(in.segments.count, CBDT_SEGMENTS_MAX);
	check_layout(size, &in);
}

static void test_layout_many_sizes(void **state)
{
	struct cbdt_info in;
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	(void)state;
	for (int i = 0; i < 2000; i++) {
		uint64_t size;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size = cbdt_min_size() + x % (2048 * GiB);
		assert_int_equal(cbdt_layout_compute(size, 0, &in), 0);
		check_layout(size, &in);
	}
}

static void test_layout_flags(void **state)
{
	struct cbdt_info in;

	(void)state;
	assert_int_equal(cbdt_layout_compute(GiB, CBDT_F_ALL, &in), 0);
	assert_int_equal(in.flags, CBDT_F_ALL);
	assert_int_equal(cbdt_layout_compute(GiB, 1U << 5, &in), -EINVAL);
}

static void test_owner_word_encoding(void **state)
{
	uint64_t o = CBDT_OWNER_MAKE(CBDT_SLOT_ACTIVE, 0xabcd, CBDT_GEN_MASK);

	(void)state;
	assert_int_equal(CBDT_OWNER_STATE(o), CBDT_SLOT_ACTIVE);
	assert_int_equal(CBDT_OWNER_HOST(o), 0xabcd);
	assert_int_equal(CBDT_OWNER_GEN(o), CBDT_GEN_MASK);
	o = CBDT_OWNER_MAKE(CBDT_SLOT_FREE, 0, 12345);
	assert_int_equal(CBDT_OWNER_STATE(o), CBDT_SLOT_FREE);
	assert_int_equal(CBDT_OWNER_HOST(o), 0);
	assert_int_equal(CBDT_OWNER_GEN(o), 12345);
}

static void test_lease_encoding(void **state)
{
	(void)state;
	for (uint32_t id = 0; id < 0xffff; id += 97) {
		uint64_t gens[] = {0, 1, 0xfffff, CBDT_GEN_MASK};

		for (size_t g = 0; g < 4; g++) {
			uint64_t l = cbdt_lease_make(id, gens[g]);

			assert_int_not_equal(l, 0);
			assert_int_equal(cbdt_lease_id(l), id);
			assert_int_equal(cbdt_lease_gen(l), gens[g]);
		}
	}
	/* The generation is taken mod 2^40, as in the owner word. */
	assert_int_equal(cbdt_lease_gen(cbdt_lease_make(3, CBDT_GEN_MASK + 2)),
			 1);
}

static void test_backend_ident(void **state)
{
	uint64_t a = cbdt_backend_ident("node-b", "disk0", "/var/disk0.img");

	(void)state;
	assert_int_not_equal(a, 0);
	assert_int_equal(a, cbdt_backend_ident("node-b", "disk0",
					       "/var/disk0.img"));
	assert_int_not_equal(a, cbdt_backend_ident("node-c", "disk0",
						   "/var/disk0.img"));
	assert_int_not_equal(a, cbdt_backend_ident("node-b", "disk1",
						   "/var/disk0.img"));
	assert_int_not_equal(a, cbdt_backend_ident("node-b", "disk0",
						   "/var/disk1.img"));
	/* Field boundaries count: moving a character across is different. */
	assert_int_not_equal(cbdt_backend_ident("ab", "c", "p"),
			     cbdt_backend_ident("a", "bc", "p"));
	assert_int_not_equal(cbdt_backend_ident("", "", ""), 0);
	assert_int_equal(cbdt_backend_ident(NULL, "x", NULL),
			 cbdt_backend_ident("", "x", ""));
}

static void test_obj_names(void **state)
{
	(void)state;
	assert_string_equal(cbdt_obj_name(CBDT_OBJ_HOST), "host");
	assert_string_equal(cbdt_obj_name(CBDT_OBJ_BACKEND), "backend");
	assert_string_equal(cbdt_obj_name(CBDT_OBJ_BLKDEV), "blkdev");
	assert_string_equal(cbdt_obj_name(CBDT_OBJ_SEGMENT), "segment");
	assert_string_equal(cbdt_obj_name(CBDT_OBJ_NR), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_offsets_do_not_overlap),
		cmocka_unit_test(test_record_payloads_fit),
		cmocka_unit_test(test_min_size_is_one_segment),
		cmocka_unit_test(test_layout_known_sizes),
		cmocka_unit_test(test_layout_metadata_growth_steps_down),
		cmocka_unit_test(test_layout_capped_at_max_segments),
		cmocka_unit_test(test_layout_many_sizes),
		cmocka_unit_test(test_layout_flags),
		cmocka_unit_test(test_owner_word_encoding),
		cmocka_unit_test(test_lease_encoding),
		cmocka_unit_test(test_backend_ident),
		cmocka_unit_test(test_obj_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
