/* Description: the one format rule (cbdt_inuse_find, cbdt_format): a
 * transport with a live host, backend or blkdev is never formatted, force
 * or not; dead ones (gone pid on this kernel, or a heartbeat still for its
 * host's timeout) do not block; a non-blank non-transport needs force. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "barrier.h"
#include "cbdt.h"
#include "fixture.h"

#define MiB (1ULL << 20)

struct fixture {
	char path[TFX_PATH_LEN];
	struct cbdt *t;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || tfx_transport_new(f->path, &f->t, 64 * MiB, 0)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tfx_transport_free(f->path, &f->t);
	free(f);
	return 0;
}

/* Register a host whose record says @pid on boot @boot (NULL: ours). */
static uint32_t host_add(struct fixture *f, uint32_t pid, const uint8_t *boot,
			 uint32_t timeout_ms)
{
	struct cbdt_host_rec r;
	uint64_t owner;
	uint32_t id;

	memset(&r, 0, sizeof(r));
	snprintf(r.hostname, sizeof(r.hostname), "inuse-%u", pid);
	if (boot)
		memcpy(r.boot_id, boot, sizeof(r.boot_id));
	else
		assert_int_equal(cbdt_boot_id(r.boot_id), 0);
	r.pid = pid;
	r.role = CBDT_ROLE_BACKEND;
	r.hb_interval_ms = 20;
	r.hb_timeout_ms = timeout_ms;
	assert_int_equal(cbdt_host_register(f->t, &r, false, &id, &owner), 0);
	return id;
}

/* A pid that existed and is gone now. */
static uint32_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return (uint32_t)pid;
}

static const uint8_t other_boot[16] = {0xb0, 0x07};

static void test_empty_transport_is_not_in_use(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cbdt_inuse_find(f->t, NULL), 0);
	assert_int_equal(cbdt_format(f->t, 0, CBDT_FORMAT_FORCE, NULL), 0);
}

struct beater {
	struct cbdt *t;
	enum cbdt_obj type;
	uint32_t id;
	int stop;
};

static void *beat_main(void *arg)
{
	struct beater *b = arg;

	while (!smp_load_acquire(&b->stop)) {
		cbdt_slot_heartbeat(b->t, b->type, b->id);
		usleep(10000);
	}
	return NULL;
}

static void test_live_host_blocks_format_even_forced(void **state)
{
	struct fixture *f = *state;
	uint32_t id = host_add(f, (uint32_t)getpid(), NULL, 60000);
	struct cbdt_inuse who = {CBDT_OBJ_NR, 99};
	const uint8_t *uuid = cbdt_get_info(f->t)->uuid;
	uint8_t before[16];
	char buf[256];

	struct beater b = {.t = f->t, .type = CBDT_OBJ_HOST, .id = id};
	pthread_t th;

	memcpy(before, uuid, sizeof(before));
	/* Our own pid exists, so the moving heartbeat decides, as the
	 * owner's heartbeat thread would move it. */
	assert_int_equal(pthread_create(&th, NULL, beat_main, &b), 0);
	assert_int_equal(cbdt_format(f->t, 0, CBDT_FORMAT_FORCE, &who), -EBUSY);
	smp_store_release(&b.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(who.type, CBDT_OBJ_HOST);
	assert_int_equal(who.id, id);
	assert_memory_equal(cbdt_get_info(f->t)->uuid, before, sizeof(before));
	cbdt_obj_describe(f->t, who.type, who.id, buf, sizeof(buf));
	assert_non_null(strstr(buf, "host 0 (inuse-"));
	assert_non_null(strstr(buf, ", backend, pid "));
}

/* A host of another kernel: only its heartbeat can tell. */
static void test_beating_backend_of_other_kernel_blocks(void **state)
{
	struct fixture *f = *state;
	uint32_t h = host_add(f, 1, other_boot, 60000);
	struct beater b = {.t = f->t, .type = CBDT_OBJ_BACKEND};
	struct cbdt_inuse who;
	uint64_t owner;
	pthread_t th;
	int id;

	id = cbdt_slot_claim(f->t, CBDT_OBJ_BACKEND, 3, (uint16_t)h, &owner);
	assert_int_equal(id, 3);
	b.id = (uint32_t)id;
	assert_int_equal(pthread_create(&th, NULL, beat_main, &b), 0);
	/* The host itself is still (60 s timeout), the backend beats: the
	 * backend is found first, long before the host's timeout. */
	assert_int_equal(cbdt_inuse_find(f->t, &who), 1);
	assert_int_equal(who.type, CBDT_OBJ_BACKEND);
	assert_int_equal(who.id, 3);
	assert_int_equal(cbdt_format(f->t, 0, CBDT_FORMAT_FORCE, NULL), -EBUSY);
	smp_store_release(&b.stop, 1);
	pthread_join(th, NULL);
}

static void test_gone_process_of_this_kernel_does_not_block(void **state)
{
	struct fixture *f = *state;
	uint32_t h = host_add(f, dead_pid(), NULL, 60000);
	uint64_t owner;

	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BLKDEV, -1, (uint16_t)h,
					 &owner),
			 0);
	/* Decided at once from the pid: no 60 s wait. */
	assert_int_equal(cbdt_inuse_find(f->t, NULL), 0);
	assert_int_equal(cbdt_format(f->t, 0, 0, NULL), -EEXIST);
	assert_int_equal(cbdt_format(f->t, 0, CBDT_FORMAT_FORCE, NULL), 0);
	assert_int_equal(
		CBDT_OWNER_STATE(cbdt_slot_owner(f->t, CBDT_OBJ_HOST, h)),
		CBDT_SLOT_FREE);
}

static void
test_still_host_of_other_kernel_is_dead_after_its_timeout(void **state)
{
	struct fixture *f = *state;
	uint64_t start;

	host_add(f, 1, other_boot, 300);
	start = cbdt_now_ms();
	assert_int_equal(cbdt_inuse_find(f->t, NULL), 0);
	/* Never sooner than the timeout its host applies. */
	assert_true(cbdt_now_ms() - start >= 300);
	assert_int_equal(cbdt_format(f->t, 0, CBDT_FORMAT_FORCE, NULL), 0);
}

struct taker {
	struct cbdt *t;
	uint32_t id;
};

static void *take_main(void *arg)
{
	struct taker *k = arg;
	uint64_t owner = cbdt_slot_owner(k->t, CBDT_OBJ_HOST, k->id), o2;

	usleep(100000); /* the probe runs for 60 s: any time works */
	assert_int_equal(cbdt_slot_takeover(k->t, CBDT_OBJ_HOST, k->id, owner,
					    0, &o2),
			 0);
	return NULL;
}

/* Taken over while watched (a restart), heartbeat unchanged: alive. */
static void test_new_owner_during_probe_is_alive(void **state)
{
	struct fixture *f = *state;
	struct taker k = {.t = f->t, .id = host_add(f, 1, other_boot, 60000)};
	struct cbdt_inuse who;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, take_main, &k), 0);
	assert_int_equal(cbdt_inuse_find(f->t, &who), 1);
	assert_int_equal(who.type, CBDT_OBJ_HOST);
	pthread_join(th, NULL);
}

static void test_garbage_needs_force(void **state)
{
	struct fixture *f = *state;
	uint8_t *base = cbdt_base(f->t);

	memset(base, 0xa5, 8192); /* both info copies */
	assert_int_not_equal(cbdt_validate(f->t), 0);
	assert_int_equal(cbdt_format(f->t, 0, 0, NULL), -ENOTEMPTY);
	assert_int_equal(base[0], 0xa5);
	assert_int_equal(cbdt_format(f->t, 0, CBDT_FORMAT_FORCE, NULL), 0);
	memset(base, 0, 8192);
	assert_int_not_equal(cbdt_validate(f->t), 0);
	/* Blank (both copies zero): no force needed. */
	assert_int_equal(cbdt_format(f->t, 0, 0, NULL), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_empty_transport_is_not_in_use),
		T(test_live_host_blocks_format_even_forced),
		T(test_beating_backend_of_other_kernel_blocks),
		T(test_gone_process_of_this_kernel_does_not_block),
		T(test_still_host_of_other_kernel_is_dead_after_its_timeout),
		T(test_new_owner_during_probe_is_alive),
		T(test_garbage_needs_force),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
