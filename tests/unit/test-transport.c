/* Description: mapping, validating and formatting transports: distinct
 * errors for missing, too small, blank, garbage, bad magic, bad crc, bad
 * version and truncated files; single-copy corruption falls back to the
 * other copy; re-format needs force; read-only mappings; info_check on
 * mutated images never reads outside its buffer. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cbdt.h"

#define MiB (1ULL << 20)

struct fixture {
	char path[64];
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	if (!f)
		return -1;
	strcpy(f->path, "/dev/shm/cbdt-test-XXXXXX");
	fd = mkstemp(f->path);
	if (fd < 0) {
		free(f);
		return -1;
	}
	close(fd);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	free(f);
	return 0;
}

static void file_resize(const char *path, uint64_t size)
{
	assert_int_equal(truncate(path, (off_t)size), 0);
}

static void file_pwrite(const char *path, const void *buf, size_t len,
			uint64_t off)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void file_pread(const char *path, void *buf, size_t len, uint64_t off)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* Size @path to @size and (re)format it. */
static void file_format(const char *path, uint64_t size, uint16_t flags)
{
	struct cbdt *t;

	file_resize(path, size);
	assert_int_equal(cbdt_map(path, 0, &t), 0);
	assert_int_equal(cbdt_format(t, flags, CBDT_FORMAT_FORCE, NULL), 0);
	cbdt_close(t);
}

static int file_open_err(const char *path)
{
	struct cbdt *t = NULL;
	int ret = cbdt_open(path, 0, &t);

	if (!ret) {
		assert_non_null(t);
		cbdt_close(t);
	}
	return ret;
}

static void info_get(const char *path, uint32_t off, struct cbdt_info *in)
{
	file_pread(path, in, sizeof(*in), off);
}

/* Write an info copy back with a recomputed crc (a "valid" lie). */
static void info_put(const char *path, uint32_t off, struct cbdt_info *in)
{
	in->crc = cbdt_crc32c(0, (uint8_t *)in + 4, sizeof(*in) - 4);
	file_pwrite(path, in, sizeof(*in), off);
}

static void test_open_missing_is_enoent(void **state)
{
	struct fixture *f = *state;
	struct cbdt *t;

	unlink(f->path);
	assert_int_equal(cbdt_open(f->path, 0, &t), -ENOENT);
	assert_int_equal(cbdt_map(f->path, CBDT_MAP_RDONLY, &t), -ENOENT);
}

static void test_file_create(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	unlink(f->path);
	assert_int_equal(cbdt_file_create(f->path, 64 * MiB), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 64 * MiB);
	assert_true((uint64_t)st.st_blocks * 512 < MiB); /* sparse */
	assert_int_equal(cbdt_file_create(f->path, 64 * MiB), -EEXIST);
	assert_int_equal(cbdt_file_create("/dev/shm/no-such-dir/x", MiB),
			 -ENOENT);
	assert_int_equal(file_open_err(f->path), -ENODATA);
}

static void test_too_small_is_enospc(void **state)
{
	struct fixture *f = *state;
	struct cbdt *t;

	/* Empty: must be refused before libpmem2 sees it. */
	assert_int_equal(file_open_err(f->path), -ENOSPC);
	assert_int_equal(cbdt_map(f->path, 0, &t), -ENOSPC);
	file_resize(f->path, 4096);
	assert_int_equal(file_open_err(f->path), -ENOSPC);
	file_resize(f->path, CBDT_META_OFF - 1);
	assert_int_equal(file_open_err(f->path), -ENOSPC);

	/* Big enough to map and look at, too small to format. */
	file_resize(f->path, cbdt_min_size() - 4096);
	assert_int_equal(cbdt_map(f->path, 0, &t), 0);
	assert_int_equal(cbdt_format(t, 0, 0, NULL), -ENOSPC);
	assert_true(cbdt_is_blank(t));
	cbdt_close(t);
	assert_int_equal(file_open_err(f->path), -ENODATA);

	/* Exactly the minimum works. */
	file_format(f->path, cbdt_min_size(), 0);
	assert_int_equal(file_open_err(f->path), 0);
}

static void test_not_a_file_is_enodev(void **state)
{
	struct cbdt *t;

	(void)state;
	assert_int_equal(cbdt_map("/dev/null", 0, &t), -ENODEV);
	assert_int_equal(cbdt_open("/dev/shm", CBDT_MAP_RDONLY, &t), -ENODEV);
}

static void test_format_and_open(void **state)
{
	struct fixture *f = *state;
	struct cbdt_info a, b;
	const struct cbdt_info *in;
	struct cbdt *t;
	static const uint8_t zero_uuid[16];

	file_resize(f->path, 64 * MiB);
	assert_int_equal(cbdt_map(f->path, 0, &t), 0);
	assert_true(cbdt_is_blank(t));
	assert_int_equal(cbdt_map_size(t), 64 * MiB);
	assert_string_equal(cbdt_path(t), f->path);
	/* Unvalidated: no slot can be reached. */
	assert_int_equal(cbdt_slot_count(t, CBDT_OBJ_HOST), 0);
	assert_null(cbdt_slot_get(t, CBDT_OBJ_HOST, 0));
	assert_int_equal(cbdt_format(t, CBDT_F_ENTRY_CRC, 0, NULL), 0);
	assert_false(cbdt_is_blank(t));
	in = cbdt_get_info(t);
	assert_int_equal(in->flags, CBDT_F_ENTRY_CRC);
	assert_int_equal(in->size, 64 * MiB);
	assert_int_equal(in->segments.count, 3);
	assert_int_equal(cbdt_slot_count(t, CBDT_OBJ_HOST), CBDT_HOSTS_NR);
	assert_memory_not_equal(in->uuid, zero_uuid, 16);
	assert_int_equal(in->uuid[6] >> 4, 4);
	cbdt_close(t);

	info_get(f->path, CBDT_INFO_A_OFF, &a);
	info_get(f->path, CBDT_INFO_B_OFF, &b);
	assert_int_equal(a.seq, 1);
	assert_int_equal(b.seq, 2);
	assert_int_equal(a.crc,
			 cbdt_crc32c(0, (uint8_t *)&a + 4, sizeof(a) - 4));
	assert_memory_equal(a.uuid, b.uuid, 16);

	assert_int_equal(cbdt_open(f->path, 0, &t), 0);
	in = cbdt_get_info(t);
	assert_int_equal(in->seq, 2);
	assert_memory_equal(in->uuid, a.uuid, 16);
	assert_int_equal(in->flags, CBDT_F_ENTRY_CRC);
	cbdt_close(t);
}

static void test_unaligned_file_size(void **state)
{
	struct fixture *f = *state;
	struct cbdt *t;

	file_format(f->path, 64 * MiB + 100, 0);
	assert_int_equal(cbdt_open(f->path, 0, &t), 0);
	assert_int_equal(cbdt_map_size(t), 64 * MiB);
	assert_int_equal(cbdt_get_info(t)->size, 64 * MiB);
	cbdt_close(t);
}

static void test_reformat_needs_force(void **state)
{
	struct fixture *f = *state;
	struct cbdt_info before, after;
	uint8_t junk[CBDT_CTRL_SIZE];
	struct cbdt *t;
	uint64_t owner;

	file_format(f->path, 64 * MiB, 0);
	info_get(f->path, CBDT_INFO_B_OFF, &before);

	assert_int_equal(cbdt_map(f->path, 0, &t), 0);
	assert_int_equal(cbdt_format(t, 0, 0, NULL), -EEXIST);
	/* Refused means untouched. */
	info_get(f->path, CBDT_INFO_B_OFF, &after);
	assert_memory_equal(&before, &after, sizeof(before));

	/* Leave state behind that format must wipe. */
	assert_int_equal(cbdt_validate(t), 0);
	assert_int_equal(cbdt_slot_claim(t, CBDT_OBJ_BACKEND, 5, 1, &owner), 5);
	assert_int_equal(cbdt_record_write(t, CBDT_OBJ_BACKEND, 5, "x", 1), 0);
	cbdt_slot_heartbeat(t, CBDT_OBJ_BACKEND, 5);
	memset(junk, 0xa5, sizeof(junk));
	memcpy((uint8_t *)cbdt_base(t) + cbdt_get_info(t)->seg_data_off +
		       2 * CBDT_SEG_SIZE,
	       junk, sizeof(junk));
	*(uint64_t *)((uint8_t *)cbdt_base(t) + CBDT_GLOBAL_OFF) = 77;

	assert_int_equal(cbdt_format(t, CBDT_F_ALL, CBDT_FORMAT_FORCE, NULL),
			 0);
	assert_int_equal(cbdt_slot_owner(t, CBDT_OBJ_BACKEND, 5), 0);
	assert_int_equal(cbdt_slot_heartbeat_read(t, CBDT_OBJ_BACKEND, 5), 0);
	assert_int_equal(cbdt_record_read(t, CBDT_OBJ_BACKEND, 5, junk, 1,
					  NULL),
			 -ENODATA);
	assert_int_equal(
		*(uint64_t *)((uint8_t *)cbdt_base(t) + CBDT_GLOBAL_OFF), 0);
	for (size_t i = 0; i < CBDT_CTRL_SIZE; i++)
		assert_int_equal(((uint8_t *)cbdt_base(
					 t))[cbdt_get_info(t)->seg_data_off +
					     2 * CBDT_SEG_SIZE + i],
				 0);
	cbdt_close(t);

	/* The seq continues, the uuid is new. */
	info_get(f->path, CBDT_INFO_A_OFF, &after);
	assert_int_equal(after.seq, before.seq + 1);
	info_get(f->path, CBDT_INFO_B_OFF, &after);
	assert_int_equal(after.seq, before.seq + 2);
	assert_int_equal(after.flags, CBDT_F_ALL);
	assert_memory_not_equal(after.uuid, before.uuid, 16);
	assert_int_equal(file_open_err(f->path), 0);
}

static void test_format_bad_flags(void **state)
{
	struct fixture *f = *state;
	struct cbdt *t;

	file_resize(f->path, 64 * MiB);
	assert_int_equal(cbdt_map(f->path, 0, &t), 0);
	assert_int_equal(cbdt_format(t, 1U << 7, 0, NULL), -EINVAL);
	assert_int_equal(cbdt_format(t, 0, 1U << 4, NULL), -EINVAL);
	assert_true(cbdt_is_blank(t));
	cbdt_close(t);
}

static void test_truncated_is_erange(void **state)
{
	struct fixture *f = *state;

	file_format(f->path, 64 * MiB, 0);
	file_resize(f->path, 40 * MiB);
	assert_int_equal(file_open_err(f->path), -ERANGE);
	/* Growing the file back makes the old layout fit again. */
	file_resize(f->path, 80 * MiB);
	assert_int_equal(file_open_err(f->path), 0);
}

static void test_zeroed_is_enodata(void **state)
{
	struct fixture *f = *state;
	uint8_t zero[2 * CBDT_INFO_SIZE] = {0};

	file_format(f->path, 64 * MiB, 0);
	file_pwrite(f->path, zero, sizeof(zero), 0);
	assert_int_equal(file_open_err(f->path), -ENODATA);
}

static void test_garbage_is_emediumtype(void **state)
{
	struct fixture *f = *state;
	uint8_t *junk = malloc(MiB);
	uint64_t x = 88172645463325252ULL;

	assert_non_null(junk);
	for (size_t i = 0; i < MiB; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		junk[i] = (uint8_t)x;
	}
	file_resize(f->path, 64 * MiB);
	file_pwrite(f->path, junk, MiB, 0);
	free(junk);
	assert_int_equal(file_open_err(f->path), -EMEDIUMTYPE);
}

static void test_bad_magic_is_emediumtype(void **state)
{
	struct fixture *f = *state;
	struct cbdt_info in;

	file_format(f->path, 64 * MiB, 0);
	for (uint32_t off = 0; off <= CBDT_INFO_B_OFF; off += CBDT_INFO_B_OFF) {
		info_get(f->path, off, &in);
		in.magic ^= 1;
		info_put(f->path, off, &in);
	}
	assert_int_equal(file_open_err(f->path), -EMEDIUMTYPE);
}

static void test_both_copies_corrupt_is_ebadmsg(void **state)
{
	struct fixture *f = *state;
	struct cbdt_info in;

	file_format(f->path, 64 * MiB, 0);
	for (uint32_t off = 0; off <= CBDT_INFO_B_OFF; off += CBDT_INFO_B_OFF) {
		info_get(f->path, off, &in);
		in.segments.count++; /* crc no longer matches */
		file_pwrite(f->path, &in, sizeof(in), off);
	}
	assert_int_equal(file_open_err(f->path), -EBADMSG);
}

/* Corrupt one copy in place (no crc fix-up). */
static void info_corrupt(const char *path, uint32_t off, size_t byte)
{
	uint8_t b;

	file_pread(path, &b, 1, off + byte);
	b ^= 0x10;
	file_pwrite(path, &b, 1, off + byte);
}

static void test_single_copy_corrupt_falls_back(void **state)
{
	static const uint8_t zero[sizeof(struct cbdt_info)];
	struct fixture *f = *state;
	struct cbdt_info b;
	struct cbdt *t;

	file_format(f->path, 64 * MiB, 0);
	/* B (seq 2) is the newest: breaking it falls back to A (seq 1). */
	info_corrupt(f->path, CBDT_INFO_B_OFF, 100);
	assert_int_equal(cbdt_open(f->path, 0, &t), 0);
	assert_int_equal(cbdt_get_info(t)->seq, 1);
	assert_int_equal(cbdt_get_info(t)->segments.count, 3);
	cbdt_close(t);

	/* A half-written format: A zeroed, B intact. */
	file_format(f->path, 64 * MiB, 0);
	info_get(f->path, CBDT_INFO_B_OFF, &b);
	file_pwrite(f->path, zero, sizeof(zero), CBDT_INFO_A_OFF);
	assert_int_equal(cbdt_open(f->path, 0, &t), 0);
	assert_int_equal(cbdt_get_info(t)->seq, b.seq);
	cbdt_close(t);

	/* A corrupt crc field itself. */
	file_format(f->path, 64 * MiB, 0);
	info_corrupt(f->path, CBDT_INFO_A_OFF, 0);
	assert_int_equal(file_open_err(f->path), 0);
	info_corrupt(f->path, CBDT_INFO_B_OFF, 0);
	assert_int_equal(file_open_err(f->path), -EBADMSG);
}

static void test_newest_copy_wins(void **state)
{
	struct fixture *f = *state;
	struct cbdt_info a, b;
	struct cbdt *t;

	file_format(f->path, 64 * MiB, 0);
	info_get(f->path, CBDT_INFO_A_OFF, &a);
	info_get(f->path, CBDT_INFO_B_OFF, &b);
	/* A made newer than B, with a layout that differs in flags. */
	a.seq = 10;
	a.flags = CBDT_F_DATA_CRC;
	info_put(f->path, CBDT_INFO_A_OFF, &a);
	assert_int_equal(cbdt_open(f->path, 0, &t), 0);
	assert_int_equal(cbdt_get_info(t)->seq, 10);
	assert_int_equal(cbdt_get_info(t)->flags, CBDT_F_DATA_CRC);
	cbdt_close(t);

	/* Wrap-safe: seq 3 is newer than 2^64 - 2. */
	a.seq = UINT64_MAX - 1;
	info_put(f->path, CBDT_INFO_A_OFF, &a);
	b.seq = 3;
	info_put(f->path, CBDT_INFO_B_OFF, &b);
	assert_int_equal(cbdt_open(f->path, 0, &t), 0);
	assert_int_equal(cbdt_get_info(t)->seq, 3);
	assert_int_equal(cbdt_get_info(t)->flags, 0);
	cbdt_close(t);
}

/* Mutate the newest copy (and re-crc it): the named error, no fallback. */
static void expect_info_error(const char *path, int err,
			      void (*mutate)(struct cbdt_info *))
{
	struct cbdt_info in;

	file_format(path, 64 * MiB, 0);
	info_get(path, CBDT_INFO_B_OFF, &in);
	mutate(&in);
	info_put(path, CBDT_INFO_B_OFF, &in);
	assert_int_equal(file_open_err(path), err);
}

static void mut_format_version(struct cbdt_info *in)
{
	in->format_version = 2;
}
static void mut_hdr_version(struct cbdt_info *in)
{
	in->hdr_version = 9;
}
static void mut_endian(struct cbdt_info *in)
{
	in->endian = 0x04030201;
}
static void mut_flags(struct cbdt_info *in)
{
	in->flags |= 1U << 9;
}

static void test_unsupported_version_is_eprotonosupport(void **state)
{
	struct fixture *f = *state;

	expect_info_error(f->path, -EPROTONOSUPPORT, mut_format_version);
	expect_info_error(f->path, -EPROTONOSUPPORT, mut_hdr_version);
	expect_info_error(f->path, -EPROTONOSUPPORT, mut_endian);
	expect_info_error(f->path, -EPROTONOSUPPORT, mut_flags);
}

static void mut_size_big(struct cbdt_info *in)
{
	in->size = 128 * MiB;
}
static void mut_entry_size(struct cbdt_info *in)
{
	in->backends.entry_size = 512;
}
static void mut_count_zero(struct cbdt_info *in)
{
	in->hosts.count = 0;
}
static void mut_host_count(struct cbdt_info *in)
{
	in->hosts.count = 0xffff;
}
static void mut_seg_max(struct cbdt_info *in)
{
	in->segments.count = CBDT_SEGMENTS_MAX + 1;
}
static void mut_overlap(struct cbdt_info *in)
{
	in->blkdevs.off -= CBDT_SLOT_SIZE;
}
static void mut_in_header(struct cbdt_info *in)
{
	in->hosts.off = 4096;
}
static void mut_unaligned_area(struct cbdt_info *in)
{
	in->segments.off += 8;
}
static void mut_seg_size(struct cbdt_info *in)
{
	in->seg_size = 8 << 20;
}
static void mut_seg_unaligned(struct cbdt_info *in)
{
	in->seg_data_off += 4096;
}
static void mut_seg_overlap(struct cbdt_info *in)
{
	in->seg_data_off = 0;
}
static void mut_too_many_segs(struct cbdt_info *in)
{
	in->segments.count = 4;
}
static void mut_area_past_end(struct cbdt_info *in)
{
	in->blkdevs.off = 64 * MiB - 4096;
}
static void mut_huge_off(struct cbdt_info *in)
{
	in->hosts.off = UINT64_MAX - 63;
}
static void mut_huge_seg_off(struct cbdt_info *in)
{
	in->seg_data_off = UINT64_MAX & ~(uint64_t)(CBDT_SEG_ALIGN - 1);
}

static void test_inconsistent_layout_is_erange(void **state)
{
	struct fixture *f = *state;
	void (*muts[])(struct cbdt_info *) = {
		mut_size_big,	   mut_entry_size,     mut_count_zero,
		mut_host_count,	   mut_seg_max,	       mut_overlap,
		mut_in_header,	   mut_unaligned_area, mut_seg_size,
		mut_seg_unaligned, mut_seg_overlap,    mut_too_many_segs,
		mut_area_past_end, mut_huge_off,       mut_huge_seg_off,
	};

	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		print_message("mutation %zu\n", i);
		expect_info_error(f->path, -ERANGE, muts[i]);
	}
}

static void test_readonly_mapping(void **state)
{
	struct fixture *f = *state;
	struct cbdt_backend_rec r = {.size = 4242}, got;
	struct cbdt *t;
	uint64_t owner;
	int status;
	pid_t pid;

	file_format(f->path, 64 * MiB, 0);
	assert_int_equal(cbdt_open(f->path, 0, &t), 0);
	assert_int_equal(cbdt_slot_claim(t, CBDT_OBJ_BACKEND, 3, 2, &owner), 3);
	strcpy(r.name, "disk0");
	assert_int_equal(
		cbdt_record_write(t, CBDT_OBJ_BACKEND, 3, &r, sizeof(r)), 0);
	cbdt_close(t);

	assert_int_equal(cbdt_open(f->path, CBDT_MAP_RDONLY, &t), 0);
	assert_int_equal(cbdt_slot_owner(t, CBDT_OBJ_BACKEND, 3), owner);
	assert_int_equal(cbdt_backend_read(t, 3, &got), 0);
	assert_int_equal(got.size, 4242);
	assert_string_equal(got.name, "disk0");
	assert_int_equal(cbdt_format(t, 0, CBDT_FORMAT_FORCE, NULL), -EROFS);

	/* The mapping really is read-only: a store faults. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka catches SIGSEGV; the child must die of it. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		*(volatile uint8_t *)cbdt_base(t) = 1;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_true(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
	cbdt_close(t);
	assert_int_equal(file_open_err(f->path), 0);
}

static void test_map_flags_checked(void **state)
{
	struct fixture *f = *state;
	struct cbdt *t;

	file_format(f->path, 64 * MiB, 0);
	assert_int_equal(cbdt_open(f->path, 1U << 3, &t), -EINVAL);
	cbdt_close(NULL);
}

static void test_strerror_is_distinct(void **state)
{
	int errs[] = {ENOENT,  ENOSPC,		ENODATA, EMEDIUMTYPE,
		      EBADMSG, EPROTONOSUPPORT, ERANGE,	 ENODEV};
	size_t n = sizeof(errs) / sizeof(errs[0]);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		const char *s = cbdt_strerror(-errs[i]);

		assert_non_null(s);
		assert_true(strlen(s) > 10);
		assert_string_equal(s, cbdt_strerror(errs[i]));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, cbdt_strerror(-errs[j]));
	}
	assert_string_equal(cbdt_strerror(-EACCES), strerror(EACCES));
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * info_check over mutated images, each in a buffer of exactly its length
 * (ASan catches any read past it).  Accepted infos must describe a layout
 * inside the mapping.
 */
static void test_info_check_mutations(void **state)
{
	struct fixture *f = *state;
	size_t full = CBDT_META_OFF;
	uint8_t *good = malloc(full);
	uint64_t x = 0x853c49e6748fea9bULL;
	int accepted = 0;

	assert_non_null(good);
	file_format(f->path, 64 * MiB, 0);
	file_pread(f->path, good, full, 0);

	for (int iter = 0; iter < 20000; iter++) {
		size_t len;
		uint8_t *img;
		struct cbdt_info in;
		int ret, nflip;

		len = iter % 4 ? full : (size_t)(xorshift(&x) % (full + 1));
		img = malloc(len ? len : 1);
		assert_non_null(img);
		memcpy(img, good, len);
		nflip = (int)(xorshift(&x) % 16);
		for (int k = 0; k < nflip && len; k++) {
			uint64_t r = xorshift(&x);
			size_t pos =
				(r & 1 ? CBDT_INFO_B_OFF : 0) + (r >> 8) % 256;

			if (pos < len)
				img[pos] ^= (uint8_t)(r >> 32) | 1;
		}
		/* Sometimes forge the crc so the contents get checked. */
		if (xorshift(&x) % 4 == 0 && len >= CBDT_INFO_B_OFF + 256) {
			struct cbdt_info *b =
				(struct cbdt_info *)(img + CBDT_INFO_B_OFF);

			b->crc = cbdt_crc32c(0, (uint8_t *)b + 4,
					     sizeof(*b) - 4);
		}
		ret = cbdt_info_check(img, len, 64 * MiB, &in);
		if (ret == 0) {
			accepted++;
			assert_true(in.size <= 64 * MiB);
			assert_true(in.seg_data_off +
					    (uint64_t)in.segments.count *
						    in.seg_size <=
				    in.size);
			assert_true(in.hosts.off + (uint64_t)in.hosts.count *
							   CBDT_SLOT_SIZE <=
				    in.size);
		} else {
			int ok[] = {-ENOSPC,  -ENODATA,		-EMEDIUMTYPE,
				    -EBADMSG, -EPROTONOSUPPORT, -ERANGE};
			bool known = false;

			for (size_t k = 0; k < 6; k++)
				known |= ret == ok[k];
			assert_true(known);
		}
		free(img);
	}
	/* The unmutated cases must have been accepted. */
	assert_true(accepted > 1000);
	free(good);
}

static void test_info_check_short_image(void **state)
{
	struct fixture *f = *state;
	uint8_t img[CBDT_INFO_B_OFF + sizeof(struct cbdt_info)];
	struct cbdt_info in;

	file_format(f->path, 64 * MiB, 0);
	file_pread(f->path, img, sizeof(img), 0);
	assert_int_equal(cbdt_info_check(img, sizeof(img), 64 * MiB, &in), 0);
	assert_int_equal(in.seq, 2);
	/* Only A inside the image. */
	assert_int_equal(cbdt_info_check(img, sizeof(img) - 1, 64 * MiB, &in),
			 0);
	assert_int_equal(in.seq, 1);
	assert_int_equal(cbdt_info_check(img, 100, 64 * MiB, &in), -ENOSPC);
	assert_int_equal(cbdt_info_check(img, 0, 64 * MiB, &in), -ENOSPC);
	assert_int_equal(cbdt_info_check(img, sizeof(img), 4096, &in), -ENOSPC);
	assert_int_equal(cbdt_info_check(img, sizeof(img), 32 * MiB, &in),
			 -ERANGE);
	assert_int_equal(cbdt_info_check(img, sizeof(img), 64 * MiB, NULL), 0);
}

#define T(fn) \
	cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_missing_is_enoent),
		T(test_file_create),
		T(test_too_small_is_enospc),
		T(test_not_a_file_is_enodev),
		T(test_format_and_open),
		T(test_unaligned_file_size),
		T(test_reformat_needs_force),
		T(test_format_bad_flags),
		T(test_truncated_is_erange),
		T(test_zeroed_is_enodata),
		T(test_garbage_is_emediumtype),
		T(test_bad_magic_is_emediumtype),
		T(test_both_copies_corrupt_is_ebadmsg),
		T(test_single_copy_corrupt_falls_back),
		T(test_newest_copy_wins),
		T(test_unsupported_version_is_eprotonosupport),
		T(test_inconsistent_layout_is_erange),
		T(test_readonly_mapping),
		T(test_map_flags_checked),
		T(test_strerror_is_distinct),
		T(test_info_check_mutations),
		T(test_info_check_short_image),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
