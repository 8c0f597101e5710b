/* Description: host registration: fresh claims, adoption of a dead
 * predecessor's slot (same boot: pid gone; other boot: heartbeat still),
 * refusal while the predecessor lives, roles and names kept apart,
 * exhaustion, unregister. */
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
	char path[64];
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

static struct cbdt_host_rec host_rec(const char *name, uint16_t role,
				     uint32_t pid, uint8_t boot)
{
	struct cbdt_host_rec r;

	memset(&r, 0, sizeof(r));
	snprintf(r.hostname, sizeof(r.hostname), "%s", name);
	memset(r.boot_id, boot, sizeof(r.boot_id));
	r.pid = pid;
	r.role = role;
	r.hb_interval_ms = 20;
	r.hb_timeout_ms = 200;
	return r;
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

static void test_fresh_hosts_get_distinct_ids(void **state)
{
	struct fixture *f = *state;
	struct cbdt_host_rec a = host_rec("node-a", CBDT_ROLE_BACKEND, 1, 1);
	struct cbdt_host_rec b = host_rec("node-b", CBDT_ROLE_BACKEND, 1, 1);
	struct cbdt_host_rec got;
	uint32_t ia, ib;
	uint64_t oa, ob;

	assert_int_equal(cbdt_host_register(f->t, &a, true, &ia, &oa), 0);
	assert_int_equal(cbdt_host_register(f->t, &b, true, &ib, &ob), 0);
	assert_int_equal(ia, 0);
	assert_int_equal(ib, 1);
	assert_int_equal(CBDT_OWNER_STATE(oa), CBDT_SLOT_ACTIVE);
	assert_int_equal(CBDT_OWNER_HOST(oa), ia);
	assert_int_equal(cbdt_slot_owner(f->t, CBDT_OBJ_HOST, ib), ob);
	assert_int_equal(cbdt_host_read(f->t, ib, &got), 0);
	assert_string_equal(got.hostname, "node-b");
	assert_int_equal(got.role, CBDT_ROLE_BACKEND);
	/* Registered hosts beat at once. */
	assert_true(cbdt_slot_heartbeat_read(f->t, CBDT_OBJ_HOST, ia) > 0);
}

static void test_live_twin_is_refused(void **state)
{
	struct fixture *f = *state;
	/* Our parent is alive and is not us. */
	struct cbdt_host_rec old =
		host_rec("node-a", CBDT_ROLE_BACKEND, (uint32_t)getppid(), 1);
	struct cbdt_host_rec me =
		host_rec("node-a", CBDT_ROLE_BACKEND, (uint32_t)getpid(), 1);
	uint32_t id;
	uint64_t o;

	assert_int_equal(cbdt_host_register(f->t, &old, true, &id, &o), 0);
	assert_int_equal(cbdt_host_register(f->t, &me, true, &id, &o), -EEXIST);
	/* Without adoption (a client) there is no such check. */
	assert_int_equal(cbdt_host_register(f->t, &me, false, &id, &o), 0);
	assert_int_equal(id, 1);
}

static void test_dead_predecessor_same_boot_is_adopted(void **state)
{
	struct fixture *f = *state;
	struct cbdt_host_rec other =
		host_rec("node-x", CBDT_ROLE_BACKEND, 1, 1);
	struct cbdt_host_rec old =
		host_rec("node-a", CBDT_ROLE_BACKEND, dead_pid(), 1);
	struct cbdt_host_rec me =
		host_rec("node-a", CBDT_ROLE_BACKEND, (uint32_t)getpid(), 1);
	struct cbdt_host_rec got;
	uint32_t id0, id, idx;
	uint64_t o0, o, ox;

	assert_int_equal(cbdt_host_register(f->t, &other, true, &idx, &ox), 0);
	assert_int_equal(cbdt_host_register(f->t, &old, true, &id0, &o0), 0);
	assert_int_equal(cbdt_host_register(f->t, &me, true, &id, &o), 0);
	assert_int_equal(id, id0);
	assert_int_equal(CBDT_OWNER_GEN(o), CBDT_OWNER_GEN(o0) + 1);
	assert_int_equal(cbdt_host_read(f->t, id, &got), 0);
	assert_int_equal(got.pid, (uint32_t)getpid());
	/* The unrelated host was not touched. */
	assert_int_equal(cbdt_slot_owner(f->t, CBDT_OBJ_HOST, idx), ox);
	/* The old owner word is stale now. */
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_HOST, id, o0),
			 -ESTALE);
}

static void test_own_pid_counts_as_dead(void **state)
{
	struct fixture *f = *state;
	struct cbdt_host_rec me =
		host_rec("node-a", CBDT_ROLE_BACKEND, (uint32_t)getpid(), 1);
	uint32_t id0, id;
	uint64_t o0, o;

	/* A container restarting its pid 1 reuses the pid of the dead one. */
	assert_int_equal(cbdt_host_register(f->t, &me, true, &id0, &o0), 0);
	assert_int_equal(cbdt_host_register(f->t, &me, true, &id, &o), 0);
	assert_int_equal(id, id0);
	assert_true(o != o0);
}

static void test_other_role_or_name_not_adopted(void **state)
{
	struct fixture *f = *state;
	struct cbdt_host_rec client =
		host_rec("node-a", CBDT_ROLE_CLIENT, dead_pid(), 1);
	struct cbdt_host_rec other =
		host_rec("node-b", CBDT_ROLE_BACKEND, dead_pid(), 1);
	struct cbdt_host_rec me =
		host_rec("node-a", CBDT_ROLE_BACKEND, (uint32_t)getpid(), 1);
	uint32_t ic, io, id;
	uint64_t o;

	assert_int_equal(cbdt_host_register(f->t, &client, false, &ic, &o), 0);
	assert_int_equal(cbdt_host_register(f->t, &other, false, &io, &o), 0);
	assert_int_equal(cbdt_host_register(f->t, &me, true, &id, &o), 0);
	assert_true(id != ic && id != io);
}

struct beater {
	struct cbdt *t;
	uint32_t id;
	int stop;
};

static void *beat(void *arg)
{
	struct beater *b = arg;

	while (!smp_load_acquire(&b->stop)) {
		cbdt_slot_heartbeat(b->t, CBDT_OBJ_HOST, b->id);
		usleep(10000);
	}
	return NULL;
}

static void test_other_boot_adopted_only_when_still(void **state)
{
	struct fixture *f = *state;
	struct cbdt_host_rec old =
		host_rec("node-a", CBDT_ROLE_BACKEND, 4242, 1);
	struct cbdt_host_rec me =
		host_rec("node-a", CBDT_ROLE_BACKEND, (uint32_t)getpid(), 2);
	struct beater b = {.t = f->t};
	pthread_t th;
	uint64_t o0, o, start;
	uint32_t id;

	assert_int_equal(cbdt_host_register(f->t, &old, true, &b.id, &o0), 0);
	/* Alive on its own boot: heartbeats move, we cannot judge its pid. */
	assert_int_equal(pthread_create(&th, NULL, beat, &b), 0);
	/* Probed for a timeout that only a hung beater exceeds: -EEXIST
	 * means it saw the counter move (a timeout would adopt). */
	me.hb_timeout_ms = TFX_DEADLINE_MS;
	assert_int_equal(cbdt_host_register(f->t, &me, true, &id, &o), -EEXIST);
	me.hb_timeout_ms = old.hb_timeout_ms;
	smp_store_release(&b.stop, 1);
	pthread_join(th, NULL);
	/* Still for the timeout: dead, adopted after waiting that long. */
	start = cbdt_now_ms();
	assert_int_equal(cbdt_host_register(f->t, &me, true, &id, &o), 0);
	assert_true(cbdt_now_ms() - start >= me.hb_timeout_ms);
	assert_int_equal(id, b.id);
	assert_int_equal(CBDT_OWNER_GEN(o), CBDT_OWNER_GEN(o0) + 1);
}

static void test_full_and_unregister(void **state)
{
	struct fixture *f = *state;
	uint32_t n = cbdt_slot_count(f->t, CBDT_OBJ_HOST), id;
	uint64_t owners[CBDT_HOSTS_NR], o;
	char name[16];

	assert_int_equal(n, CBDT_HOSTS_NR);
	for (uint32_t i = 0; i < n; i++) {
		struct cbdt_host_rec r;

		snprintf(name, sizeof(name), "h%u", i);
		r = host_rec(name, CBDT_ROLE_CLIENT, 1, 1);
		assert_int_equal(cbdt_host_register(f->t, &r, false, &id,
						    &owners[i]),
				 0);
		assert_int_equal(id, i);
	}
	struct cbdt_host_rec r = host_rec("late", CBDT_ROLE_CLIENT, 1, 1);

	assert_int_equal(cbdt_host_register(f->t, &r, false, &id, &o), -ENOSPC);
	cbdt_host_unregister(f->t, 5, owners[5]);
	assert_int_equal(
		CBDT_OWNER_STATE(cbdt_slot_owner(f->t, CBDT_OBJ_HOST, 5)),
		CBDT_SLOT_FREE);
	assert_int_equal(cbdt_host_register(f->t, &r, false, &id, &o), 0);
	assert_int_equal(id, 5);
	/* Unregistering with a stale word leaves the new owner alone. */
	cbdt_host_unregister(f->t, 5, owners[5]);
	assert_int_equal(cbdt_slot_owner(f->t, CBDT_OBJ_HOST, 5), o);
}

static void test_bad_arguments(void **state)
{
	struct fixture *f = *state;
	struct cbdt_host_rec r = host_rec("", CBDT_ROLE_CLIENT, 1, 1);
	uint32_t id;
	uint64_t o;

	assert_int_equal(cbdt_host_register(f->t, &r, false, &id, &o), -EINVAL);
	memset(r.hostname, 'x', sizeof(r.hostname)); /* unterminated */
	assert_int_equal(cbdt_host_register(f->t, &r, false, &id, &o), -EINVAL);
}

static void test_same_kernel_by_boot_id(void **state)
{
	struct fixture *f = *state;
	struct cbdt_host_rec a = host_rec("node-a", CBDT_ROLE_BACKEND, 1, 7);
	struct cbdt_host_rec b = host_rec("node-b", CBDT_ROLE_CLIENT, 2, 7);
	struct cbdt_host_rec c = host_rec("node-c", CBDT_ROLE_CLIENT, 3, 9);
	struct cbdt_host_rec z = host_rec("node-z", CBDT_ROLE_CLIENT, 4, 0);
	uint32_t ia, ib, ic, iz;
	uint64_t o;

	assert_int_equal(cbdt_host_register(f->t, &a, false, &ia, &o), 0);
	assert_int_equal(cbdt_host_register(f->t, &b, false, &ib, &o), 0);
	assert_int_equal(cbdt_host_register(f->t, &c, false, &ic, &o), 0);
	assert_int_equal(cbdt_host_register(f->t, &z, false, &iz, &o), 0);
	assert_true(cbdt_host_same_kernel(f->t, ia, ib));
	assert_false(cbdt_host_same_kernel(f->t, ia, ic));
	/* An unknown boot id (all zero) never counts as the same kernel. */
	assert_false(cbdt_host_same_kernel(f->t, iz, iz));
	/* Nor does a slot without a record. */
	assert_false(cbdt_host_same_kernel(f->t, ia, 31));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_fresh_hosts_get_distinct_ids),
		T(test_live_twin_is_refused),
		T(test_dead_predecessor_same_boot_is_adopted),
		T(test_own_pid_counts_as_dead),
		T(test_other_role_or_name_not_adopted),
		T(test_other_boot_adopted_only_when_still),
		T(test_full_and_unregister),
		T(test_bad_arguments),
		T(test_same_kernel_by_boot_id),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
