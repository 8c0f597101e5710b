/* Description: backing-store I/O on tmpfs and on a disk file system:
 * unaligned reads and writes against a reference copy, zero fill past the
 * end of a shrunk file, discard (a real hole, and the zeroing fallback),
 * write-zeroes through every fallback, read-only refusals, flush; the
 * lock held while open, O_NOATIME where allowed, and the sizes served. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/store.h"

#define MiB	 (1U << 20)
#define DEV_SIZE (8 * MiB)

struct fixture {
	char path[128];
	uint8_t *ref; /* what the file must hold */
	uint8_t *buf;
	bool memory; /* the file system is tmpfs: store_open must say so */
	struct store s;
};

static int setup_in(void **state, const char *dir, bool memory)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int fd;

	if (!f)
		return -1;
	f->memory = memory;
	snprintf(f->path, sizeof(f->path), "%s/cbd-test-store-XXXXXX", dir);
	fd = mkstemp(f->path);
	if (fd < 0 || ftruncate(fd, DEV_SIZE) < 0)
		return -1;
	close(fd);
	/* Page aligned, as the data area is: direct I/O can take them. */
	f->ref = aligned_alloc(4096, DEV_SIZE);
	f->buf = aligned_alloc(4096, DEV_SIZE);
	if (f->ref)
		memset(f->ref, 0, DEV_SIZE);
	if (!f->ref || !f->buf || store_open(&f->s, f->path, 0))
		return -1;
	*state = f;
	return 0;
}

static int setup_tmpfs(void **state)
{
	return setup_in(state, "/dev/shm", true);
}

/* A disk file system (ext4 here), whose fallocate can zero ranges. */
static int setup_disk(void **state)
{
	return setup_in(state, "/var/tmp", false);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(&f->s);
	unlink(f->path);
	free(f->ref);
	free(f->buf);
	free(f);
	return 0;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

/* The whole device, read through the store, equals the reference. */
static void check_all(struct fixture *f)
{
	assert_int_equal(store_read(&f->s, f->buf, 0, DEV_SIZE), 0);
	for (size_t i = 0; i < DEV_SIZE; i++)
		if (f->buf[i] != f->ref[i])
			fail_msg("byte %zu: %#x, want %#x", i, f->buf[i],
				 f->ref[i]);
}

static void write_ref(struct fixture *f, uint64_t off, uint32_t len,
		      unsigned seed)
{
	fill(f->ref + off, len, seed);
	assert_int_equal(store_write(&f->s, f->ref + off, off, len), 0);
}

static uint64_t blocks_of(struct fixture *f)
{
	struct stat st;

	assert_int_equal(fstat(f->s.fd, &st), 0);
	return (uint64_t)st.st_blocks;
}

static void test_open_learns_size(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->s.size, DEV_SIZE);
	assert_false(f->s.blk);
	assert_false(f->s.ro);
	assert_int_equal(f->s.block_size, 512);
	/* memory (tmpfs): its handlers tell clients to pack requests */
	assert_int_equal(f->s.memory, f->memory);
}

static void test_unaligned_read_write(void **state)
{
	struct fixture *f = *state;
	static const struct {
		uint64_t off;
		uint32_t len;
	} io[] = {
		{0, 1},
		{1, 4095},
		{4097, 8191},
		{511, 513},
		{3 * MiB - 7, MiB + 13},
		{DEV_SIZE - 3, 3},
		{12345, 1},
		{65536, 131072},
	};

	for (unsigned i = 0; i < sizeof(io) / sizeof(io[0]); i++)
		write_ref(f, io[i].off, io[i].len, i + 1);
	check_all(f);
	/* Unaligned reads of what is there. */
	for (unsigned i = 0; i < sizeof(io) / sizeof(io[0]); i++) {
		memset(f->buf, 0xee, io[i].len);
		assert_int_equal(store_read(&f->s, f->buf, io[i].off + 1,
					    io[i].len - 1),
				 0);
		assert_memory_equal(f->buf, f->ref + io[i].off + 1,
				    io[i].len - 1);
	}
}

static void test_read_past_shrunk_end_is_zero(void **state)
{
	struct fixture *f = *state;

	write_ref(f, DEV_SIZE - MiB, MiB, 9);
	/* Someone truncates the image under us: the recorded size stays. */
	assert_int_equal(truncate(f->path, DEV_SIZE - MiB / 2 - 100), 0);
	memset(f->ref + DEV_SIZE - MiB / 2 - 100, 0, MiB / 2 + 100);
	memset(f->buf, 0xee, MiB);
	assert_int_equal(store_read(&f->s, f->buf, DEV_SIZE - MiB, MiB), 0);
	assert_memory_equal(f->buf, f->ref + DEV_SIZE - MiB, MiB);
}

static void test_discard_punches_a_hole(void **state)
{
	struct fixture *f = *state;
	uint64_t before;

	write_ref(f, 0, 4 * MiB, 3);
	assert_int_equal(store_flush(&f->s), 0);
	before = blocks_of(f);
	assert_int_equal(store_discard(&f->s, MiB, 2 * MiB), 0);
	memset(f->ref + MiB, 0, 2 * MiB);
	check_all(f);
	/* A real hole: 2 MiB (4096 sectors) less allocated. */
	assert_true(blocks_of(f) + 4096 <= before);
	/* Unaligned edges are zeroed too (the file system zeroes them). */
	assert_int_equal(store_discard(&f->s, 100, 5000), 0);
	memset(f->ref + 100, 0, 5000);
	check_all(f);
}

static void test_discard_fallback_zeroes(void **state)
{
	struct fixture *f = *state;
	uint64_t before;

	write_ref(f, 0, 4 * MiB, 4);
	store_caps_clear(&f->s, STORE_CAN_ALL);
	before = blocks_of(f);
	assert_int_equal(store_discard(&f->s, MiB + 3, 2 * MiB + 5), 0);
	memset(f->ref + MiB + 3, 0, 2 * MiB + 5);
	check_all(f);
	/* Written, not punched. */
	assert_true(blocks_of(f) >= before);
}

static void test_write_zeroes(void **state)
{
	struct fixture *f = *state;

	write_ref(f, 0, DEV_SIZE, 5);
	assert_int_equal(store_write_zeroes(&f->s, 4096, 3 * MiB), 0);
	memset(f->ref + 4096, 0, 3 * MiB);
	assert_int_equal(store_write_zeroes(&f->s, 5 * MiB + 1, 77), 0);
	memset(f->ref + 5 * MiB + 1, 0, 77);
	check_all(f);
}

static void test_write_zeroes_without_zero_range(void **state)
{
	struct fixture *f = *state;

	write_ref(f, 0, DEV_SIZE, 6);
	store_caps_clear(&f->s, STORE_CAN_ZERO);
	assert_int_equal(store_write_zeroes(&f->s, 7, 2 * MiB), 0);
	memset(f->ref + 7, 0, 2 * MiB);
	check_all(f);
}

static void test_write_zeroes_by_writing(void **state)
{
	struct fixture *f = *state;

	write_ref(f, 0, DEV_SIZE, 7);
	store_caps_clear(&f->s, STORE_CAN_ALL);
	/* Longer than the zero buffer: the write loop goes round. */
	assert_int_equal(store_write_zeroes(&f->s, 999, 3 * MiB + 17), 0);
	memset(f->ref + 999, 0, 3 * MiB + 17);
	check_all(f);
	assert_int_equal(f->s.caps, 0);
}

static void test_zero_length_ops(void **state)
{
	struct fixture *f = *state;

	write_ref(f, 0, MiB, 8);
	assert_int_equal(store_discard(&f->s, 100, 0), 0);
	assert_int_equal(store_write_zeroes(&f->s, 100, 0), 0);
	check_all(f);
}

static void test_readonly_refuses_changes(void **state)
{
	struct fixture *f = *state;
	struct store ro;

	write_ref(f, 0, MiB, 10);
	/* Nobody reads what a writer holds: close the writer first. */
	assert_int_equal(store_open(&ro, f->path, STORE_RO), -EBUSY);
	store_close(&f->s);
	assert_int_equal(store_open(&ro, f->path, STORE_RO), 0);
	assert_true(ro.ro);
	assert_int_equal(store_write(&ro, f->ref, 0, 4096), -EROFS);
	assert_int_equal(store_discard(&ro, 0, 4096), -EROFS);
	assert_int_equal(store_write_zeroes(&ro, 0, 4096), -EROFS);
	assert_int_equal(store_flush(&ro), 0);
	assert_int_equal(store_read(&ro, f->buf, 10, 4000), 0);
	assert_memory_equal(f->buf, f->ref + 10, 4000);
	store_close(&ro);
	assert_int_equal(store_open(&f->s, f->path, 0), 0);
	check_all(f);
}

/* Held while open: one writer, or any number of readers. */
static void test_open_holds_the_file(void **state)
{
	struct fixture *f = *state;
	struct store a, b;

	assert_int_equal(store_open(&a, f->path, 0), -EBUSY);
	assert_int_equal(store_open(&a, f->path, STORE_RO), -EBUSY);
	store_close(&f->s);
	assert_int_equal(store_open(&a, f->path, STORE_RO), 0);
	assert_int_equal(store_open(&b, f->path, STORE_RO), 0);
	assert_int_equal(store_open(&f->s, f->path, 0), -EBUSY);
	store_close(&a);
	store_close(&b);
	assert_int_equal(store_open(&f->s, f->path, 0), 0);
}

static bool fd_noatime(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_NOATIME);
}

/*
 * Reads of an image leave its atime alone (O_NOATIME) where we may ask
 * for it; a user who may not (neither owner nor root) still opens it.
 */
static void test_open_noatime(void **state)
{
	struct fixture *f = *state;
	struct store ro;
	pid_t pid;
	int status;

	assert_true(fd_noatime(f->s.fd));
	assert_true(fd_noatime(f->s.fd_buf));
	if (geteuid() != 0)
		skip(); /* another user's file: only root can make one */
	store_close(&f->s);
	assert_int_equal(chmod(f->path, 0644), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* nobody: may read the file, may not ask for O_NOATIME */
		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(2);
		if (store_open(&ro, f->path, STORE_RO))
			_exit(3);
		_exit(fd_noatime(ro.fd) || fd_noatime(ro.fd_buf) ? 4 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(store_open(&f->s, f->path, 0), 0);
}

/* Below 4 KiB: -EFBIG; else whole 512-byte sectors, the rest cut off. */
static void test_open_sizes(void **state)
{
	struct fixture *f = *state;
	static const struct {
		off_t file;
		uint64_t served;
	} c[] = {
		{0, 0},
		{1000, 0},
		{4095, 0},
		{4096, 4096},
		{4097, 4096},
		{10 * MiB + 100, 10 * MiB},
		{10 * MiB + 511, 10 * MiB},
		{10 * MiB + 512, 10 * MiB + 512},
	};

	store_close(&f->s);
	for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		assert_int_equal(truncate(f->path, c[i].file), 0);
		if (!c[i].served) {
			assert_int_equal(store_open(&f->s, f->path, 0), -EFBIG);
			continue;
		}
		assert_int_equal(store_open(&f->s, f->path, 0), 0);
		assert_int_equal(f->s.size, c[i].served);
		assert_int_equal(f->s.tail, (uint64_t)c[i].file - c[i].served);
		store_close(&f->s);
	}
	assert_int_equal(truncate(f->path, DEV_SIZE), 0);
	assert_int_equal(store_open(&f->s, f->path, 0), 0);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct store s;

	(void)f;
	assert_int_equal(store_open(&s, "/nonexistent/cbd-test", 0), -ENOENT);
	assert_int_equal(store_open(&s, "/dev/shm", STORE_RO), -EINVAL);
	assert_int_equal(store_open(&s, "/dev/shm", 0), -EINVAL);
}

static void test_io_error_is_errno(void **state)
{
	struct fixture *f = *state;
	int fd = f->s.fd, fd_buf = f->s.fd_buf;

	/* Descriptors that cannot read or write: errors come back as
	 * -errno, not as a crash or a short success. */
	f->s.fd = f->s.fd_buf = open("/dev/null", O_WRONLY);
	assert_true(f->s.fd >= 0);
	assert_int_equal(store_read(&f->s, f->buf, 0, 512), -EBADF);
	close(f->s.fd);
	f->s.fd = f->s.fd_buf = open("/dev/null", O_RDONLY);
	assert_int_equal(store_write(&f->s, f->buf, 0, 512), -EBADF);
	close(f->s.fd);
	f->s.fd = fd;
	f->s.fd_buf = fd_buf;
}

/*
 * Durable by default: direct I/O where the file system has it, O_DSYNC
 * for the rest; every request shape gives the same bytes either way, and
 * writeback mode is one buffered descriptor.
 */
static void test_sync_and_writeback_modes(void **state)
{
	struct fixture *f = *state;
	struct store wb;
	int fl;

	fl = fcntl(f->s.fd_buf, F_GETFL);
	assert_true(fl & O_DSYNC);
	assert_int_not_equal(f->s.fd_buf, f->s.fd);
	if (f->s.direct) {
		assert_true(fcntl(f->s.fd, F_GETFL) & O_DIRECT);
		assert_true(f->s.dio_align >= 512);
	}
	/* Aligned (direct), unaligned (buffered), then read across both. */
	write_ref(f, 0, 64 * 1024, 1);
	write_ref(f, 4096 + 7, 10000, 2);
	check_all(f);
	store_close(&f->s);
	assert_int_equal(store_open(&wb, f->path, STORE_WRITEBACK), 0);
	assert_int_equal(wb.fd, wb.fd_buf);
	assert_false(wb.direct);
	assert_false(fcntl(wb.fd, F_GETFL) & (O_DSYNC | O_DIRECT));
	f->s = wb;
	write_ref(f, 8192, 4096, 3);
	check_all(f);
}

#define STORE_TESTS(setup)                                                     \
	cmocka_unit_test_setup_teardown(test_open_learns_size, setup,          \
					teardown),                             \
		cmocka_unit_test_setup_teardown(test_unaligned_read_write,     \
						setup, teardown),              \
		cmocka_unit_test_setup_teardown(                               \
			test_read_past_shrunk_end_is_zero, setup, teardown),   \
		cmocka_unit_test_setup_teardown(test_discard_punches_a_hole,   \
						setup, teardown),              \
		cmocka_unit_test_setup_teardown(test_discard_fallback_zeroes,  \
						setup, teardown),              \
		cmocka_unit_test_setup_teardown(test_write_zeroes, setup,      \
						teardown),                     \
		cmocka_unit_test_setup_teardown(                               \
			test_write_zeroes_without_zero_range, setup,           \
			teardown),                                             \
		cmocka_unit_test_setup_teardown(test_write_zeroes_by_writing,  \
						setup, teardown),              \
		cmocka_unit_test_setup_teardown(test_zero_length_ops, setup,   \
						teardown),                     \
		cmocka_unit_test_setup_teardown(test_readonly_refuses_changes, \
						setup, teardown),              \
		cmocka_unit_test_setup_teardown(test_open_holds_the_file,      \
						setup, teardown),              \
		cmocka_unit_test_setup_teardown(test_open_noatime, setup,      \
						teardown),                     \
		cmocka_unit_test_setup_teardown(test_open_sizes, setup,        \
						teardown),                     \
		cmocka_unit_test_setup_teardown(test_sync_and_writeback_modes, \
						setup, teardown),              \
		cmocka_unit_test_setup_teardown(test_open_errors, setup,       \
						teardown),                     \
		cmocka_unit_test_setup_teardown(test_io_error_is_errno, setup, \
						teardown)

int main(void)
{
	const struct CMUnitTest tmpfs[] = {STORE_TESTS(setup_tmpfs)};
	const struct CMUnitTest disk[] = {STORE_TESTS(setup_disk)};
	int failed;

	failed = cmocka_run_group_tests_name("store on tmpfs", tmpfs, NULL,
					     NULL);
	failed += cmocka_run_group_tests_name("store on a disk file system",
					      disk, NULL, NULL);
	return failed ? 1 : 0;
}
