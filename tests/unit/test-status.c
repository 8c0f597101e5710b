/* Description: cbd-status snapshot, JSON and tables on transports built
 * here with libcbdt: empty, one of each object alive, dead objects (not
 * bumped), --all listing free slots, full slots, unwritten and corrupt
 * records, orphaned segments, writer locks, the default liveness window,
 * read-only mappings and interruption.  JSON types and keys are checked
 * field by field; tables for content and column alignment. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "barrier.h"
#include "cbdt.h"
#include "fixture.h"
#include "tools/status.h"

#define MiB	       (1ULL << 20)
#define TRANSPORT_SIZE (96 * MiB) /* a handful of segments */
#define WINDOW_MS      120U

struct fx {
	char path[64];
	struct cbdt *t;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (tfx_transport_new(f->path, &f->t, TRANSPORT_SIZE,
			      CBDT_F_ENTRY_CRC) ||
	    cbdt_validate(f->t)) {
		tfx_transport_free(f->path, &f->t);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	tfx_transport_free(f->path, &f->t);
	free(f);
	return 0;
}

/* ---- building objects ---------------------------------------------- */

static uint32_t host_add(struct cbdt *t, const char *name, uint16_t role,
			 uint32_t pid, uint32_t interval_ms)
{
	struct cbdt_host_rec r = {.pid = pid,
				  .role = role,
				  .hb_interval_ms = interval_ms,
				  .hb_timeout_ms = interval_ms * 10};
	uint64_t owner;
	uint32_t id;

	strncpy(r.hostname, name, sizeof(r.hostname) - 1);
	assert_int_equal(cbdt_host_register(t, &r, false, &id, &owner), 0);
	return id;
}

static uint32_t backend_add(struct cbdt *t, uint32_t host, const char *name,
			    const char *path, uint64_t size, uint16_t handlers,
			    bool ro)
{
	struct cbdt_backend_rec r = {.host_id = (uint16_t)host,
				     .handlers = handlers,
				     .flags = ro ? CBDT_BACKEND_RO : 0,
				     .size = size,
				     .block_size = 512};
	uint64_t owner;
	int id;

	strncpy(r.name, name, sizeof(r.name) - 1);
	strncpy(r.path, path, sizeof(r.path) - 1);
	id = cbdt_slot_claim(t, CBDT_OBJ_BACKEND, -1, (uint16_t)host, &owner);
	assert_true(id >= 0);
	assert_int_equal(cbdt_record_write(t, CBDT_OBJ_BACKEND, (uint32_t)id,
					   &r, sizeof(r)),
			 0);
	return (uint32_t)id;
}

/* A blkdev with @queues initialised channels (no handler attached). */
static uint32_t blkdev_add(struct cbdt *t, uint32_t host, uint32_t backend,
			   unsigned queues, bool ro, uint32_t *segs)
{
	struct cbdt_blkdev_rec r = {.host_id = (uint16_t)host,
				    .backend_id = (uint16_t)backend,
				    .queues = (uint16_t)queues,
				    .flags = ro ? CBDT_BLKDEV_RO : 0};
	uint64_t owner, seg_owner;
	int id;

	id = cbdt_slot_claim(t, CBDT_OBJ_BLKDEV, -1, (uint16_t)host, &owner);
	assert_true(id >= 0);
	r.backend_owner = cbdt_slot_owner(t, CBDT_OBJ_BACKEND, backend);
	for (unsigned q = 0; q < queues; q++) {
		struct cbdt_channel_params p = {
			.se_count = 16,
			.backend_id = (uint16_t)backend,
			.blkdev_id = (uint16_t)id,
			.queue = (uint16_t)q,
			.blkdev_owner = owner,
		};
		int seg = cbdt_slot_claim(t, CBDT_OBJ_SEGMENT, -1,
					  (uint16_t)host, &seg_owner);

		assert_true(seg >= 0);
		assert_int_equal(cbdt_channel_init(t, (uint32_t)seg, &p), 0);
		r.segs[q] = (uint32_t)seg;
		if (segs)
			segs[q] = (uint32_t)seg;
	}
	assert_int_equal(cbdt_record_write(t, CBDT_OBJ_BLKDEV, (uint32_t)id, &r,
					   sizeof(r)),
			 0);
	return (uint32_t)id;
}

/* ---- a heartbeat thread, like the daemons' ---------------------------- */

struct bumper {
	struct cbdt *t;
	struct {
		enum cbdt_obj type;
		uint32_t id;
	} obj[8];
	unsigned n;
	int stop; /* written by the test, read by the thread */
	pthread_t thr;
};

static void *bumper_main(void *arg)
{
	struct bumper *b = arg;
	struct timespec ts = {0, 5 * 1000000L};

	while (!smp_load_acquire(&b->stop)) {
		for (unsigned i = 0; i < b->n; i++)
			cbdt_slot_heartbeat(b->t, b->obj[i].type, b->obj[i].id);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void bumper_add(struct bumper *b, enum cbdt_obj type, uint32_t id)
{
	assert_true(b->n < 8);
	b->obj[b->n].type = type;
	b->obj[b->n++].id = id;
}

static void bumper_start(struct bumper *b, struct cbdt *t)
{
	b->t = t;
	assert_int_equal(pthread_create(&b->thr, NULL, bumper_main, b), 0);
}

static void bumper_stop(struct bumper *b)
{
	smp_store_release(&b->stop, 1);
	pthread_join(b->thr, NULL);
}

/* ---- helpers on the outputs ------------------------------------------- */

static struct status_snap *collect(struct cbdt *t, uint32_t window_ms)
{
	struct status_opts o = {.window_ms = window_ms, .poll_ms = 5};
	struct status_snap *s = NULL;

	assert_int_equal(status_collect(t, &o, NULL, &s), 0);
	assert_non_null(s);
	return s;
}

static const struct status_slot *snap_slot(const struct status_snap *s,
					   enum cbdt_obj type, uint32_t id)
{
	if (type == CBDT_OBJ_HOST)
		return &s->hosts[id].s;
	if (type == CBDT_OBJ_BACKEND)
		return &s->backends[id].s;
	return &s->blkdevs[id].s;
}

/*
 * collect() while @b beats its objects.  A window shows them alive only if
 * the bumper thread got the CPU during it, which a busy machine may not
 * grant: collect again until they all are (the test's assertions judge
 * the last snapshot if that never happens within TFX_DEADLINE_MS).
 */
static struct status_snap *collect_beating(struct cbdt *t, struct bumper *b,
					   uint32_t window_ms)
{
	uint64_t t0 = cbdt_now_ms();

	for (;;) {
		struct status_snap *s = collect(t, window_ms);
		unsigned i = 0;

		while (i < b->n &&
		       snap_slot(s, b->obj[i].type, b->obj[i].id)->alive)
			i++;
		if (i == b->n || cbdt_now_ms() - t0 >= TFX_DEADLINE_MS)
			return s;
		printf("a beating object looked still in a %u ms window: again\n",
		       window_ms);
		status_snap_free(s);
	}
}

static json_t *to_json(const struct status_snap *s, bool all)
{
	json_t *j = status_json(s, all);
	char *text;
	json_error_t e;
	json_t *back;

	assert_non_null(j);
	/* it must survive a round trip through text, as a script reads it */
	text = json_dumps(j, JSON_INDENT(2));
	assert_non_null(text);
	back = json_loads(text, 0, &e);
	assert_non_null(back);
	free(text);
	json_decref(j);
	return back;
}

static char *to_table(const struct status_snap *s, bool all)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(status_table_print(f, s, all), 0);
	fclose(f);
	return buf;
}

static json_t *get(json_t *o, const char *key, json_type type)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		fail_msg("key '%s' missing", key);
	if (json_typeof(v) != type)
		fail_msg("key '%s' has type %d, want %d", key, json_typeof(v),
			 type);
	return v;
}

static long long get_int(json_t *o, const char *key)
{
	return json_integer_value(get(o, key, JSON_INTEGER));
}

static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(get(o, key, JSON_STRING));
}

static bool get_bool(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!v || !json_is_boolean(v))
		fail_msg("key '%s' missing or not a boolean", key);
	return json_is_true(v);
}

/* Element of array @key whose "id" is @id. */
static json_t *find_id(json_t *root, const char *key, long long id)
{
	json_t *arr = get(root, key, JSON_ARRAY), *el;
	size_t i;

	json_array_foreach(arr, i, el) if (get_int(el, "id") == id) return el;
	fail_msg("%s: no id %lld", key, id);
	return NULL;
}

/* The keys and types every listed object must have, whatever its state. */
static void check_types(json_t *root)
{
	json_t *tr = get(root, "transport", JSON_OBJECT), *el, *slots, *flags;
	size_t i;

	get_str(tr, "path");
	get_int(tr, "size");
	get_int(tr, "version");
	flags = get(tr, "flags", JSON_OBJECT);
	get_bool(flags, "entry_crc");
	get_bool(flags, "data_crc");
	assert_int_equal(strlen(get_str(tr, "uuid")), 36);
	slots = get(tr, "slots", JSON_OBJECT);
	get_int(slots, "hosts");
	get_int(slots, "backends");
	get_int(slots, "blkdevs");
	get_int(slots, "segments");
	get_int(tr, "segments_used");
	get_int(tr, "segments_free");
	get_int(root, "window_ms");

	json_array_foreach(get(root, "hosts", JSON_ARRAY), i, el)
	{
		get_int(el, "id");
		get_bool(el, "alive");
		get_int(el, "heartbeat_age_ms");
		get_str(el, "state");
		if (!strcmp(get_str(el, "record"), "valid")) {
			get_str(el, "hostname");
			get_str(el, "role");
			get_int(el, "pid");
		}
	}
	json_array_foreach(get(root, "backends", JSON_ARRAY), i, el)
	{
		get_int(el, "id");
		get_bool(el, "alive");
		if (!strcmp(get_str(el, "record"), "valid")) {
			get_int(el, "host_id");
			get_str(el, "name");
			get_str(el, "path");
			get_int(el, "size");
			get_bool(el, "readonly");
			get_int(el, "handlers");
		}
	}
	json_array_foreach(get(root, "blkdevs", JSON_ARRAY), i, el)
	{
		get_int(el, "id");
		get_bool(el, "alive");
		if (!strcmp(get_str(el, "record"), "valid")) {
			json_t *ch = get(el, "channels", JSON_ARRAY), *c;
			size_t k;

			get_int(el, "host_id");
			get_int(el, "backend_id");
			get_bool(el, "readonly");
			assert_int_equal(json_array_size(ch),
					 get_int(el, "queues"));
			json_array_foreach(ch, k, c)
				assert_true(json_is_integer(c));
		}
	}
	json_array_foreach(get(root, "segments", JSON_ARRAY), i, el)
	{
		get_int(el, "id");
		get_str(el, "state");
		get_str(el, "handler");
		get_bool(el, "orphaned");
	}
}

/* Line of @table that starts a table row containing @needle, after @title. */
static const char *table_line(const char *table, const char *title,
			      const char *needle)
{
	const char *p = strstr(table, title);

	assert_non_null(p);
	for (p = strchr(p, '\n'); p && p[1] == ' '; p = strchr(p + 1, '\n')) {
		const char *eol = strchr(p + 1, '\n');
		const char *hit = strstr(p + 1, needle);

		if (hit && (!eol || hit < eol))
			return p + 1;
	}
	fail_msg("%s: no row with '%s'", title, needle);
	return NULL;
}

/* Column of @word in @line (header) must be where @value sits in @row. */
static void assert_aligned(const char *header, const char *hword,
			   const char *row, const char *value)
{
	const char *h = strstr(header, hword), *v = strstr(row, value);

	assert_non_null(h);
	assert_non_null(v);
	assert_int_equal(h - header, v - row);
}

/* ---- tests --------------------------------------------------------- */

static void test_empty_transport(void **state)
{
	struct fx *f = *state;
	struct status_snap *s = collect(f->t, 30);
	json_t *j = to_json(s, false), *tr = get(j, "transport", JSON_OBJECT);
	char *tab = to_table(s, false);

	check_types(j);
	assert_string_equal(get_str(tr, "path"), f->path);
	assert_int_equal(get_int(tr, "size"), TRANSPORT_SIZE);
	assert_int_equal(get_int(tr, "version"), CBDT_FORMAT_VERSION);
	assert_true(get_bool(get(tr, "flags", JSON_OBJECT), "entry_crc"));
	assert_false(get_bool(get(tr, "flags", JSON_OBJECT), "data_crc"));
	assert_int_equal(get_int(get(tr, "slots", JSON_OBJECT), "hosts"),
			 CBDT_HOSTS_NR);
	assert_int_equal(get_int(tr, "segments_used"), 0);
	assert_int_equal(get_int(tr, "segments_free"),
			 cbdt_slot_count(f->t, CBDT_OBJ_SEGMENT));
	assert_int_equal(json_array_size(get(j, "hosts", JSON_ARRAY)), 0);
	assert_int_equal(json_array_size(get(j, "backends", JSON_ARRAY)), 0);
	assert_int_equal(json_array_size(get(j, "blkdevs", JSON_ARRAY)), 0);
	assert_int_equal(json_array_size(get(j, "segments", JSON_ARRAY)), 0);
	assert_int_equal(get_int(j, "window_ms"), 30);

	assert_non_null(strstr(tab, f->path));
	assert_non_null(strstr(tab, "HOSTS: none"));
	assert_non_null(strstr(tab, "BACKENDS: none"));
	assert_non_null(strstr(tab, "BLKDEVS: none"));
	assert_non_null(strstr(tab, "96.0 MiB"));
	free(tab);
	json_decref(j);
	status_snap_free(s);
}

/* Two hosts, a backend, a blkdev with two channels (one with a handler). */
struct world {
	uint32_t srv, cli, be, bd, segs[2];
	struct cbdt_channel *handler;
};

static void world_build(struct cbdt *t, struct world *w)
{
	w->srv = host_add(t, "node-b", CBDT_ROLE_BACKEND, 4242, 100);
	w->cli = host_add(t, "node-a", CBDT_ROLE_CLIENT, 4343, 100);
	w->be = backend_add(t, w->srv, "disk0", "/var/lib/cbd/disk0.img",
			    1ULL << 30, 4, false);
	w->bd = blkdev_add(t, w->cli, w->be, 2, false, w->segs);
	assert_int_equal(
		cbdt_channel_open(t, w->segs[0], CBDT_CHANNEL_HANDLER,
				  cbdt_slot_owner(t, CBDT_OBJ_BACKEND, w->be),
				  &w->handler),
		0);
}

static void test_one_of_each_alive(void **state)
{
	struct fx *f = *state;
	struct bumper b = {0};
	struct world w;
	struct status_snap *s;
	json_t *j, *h, *be, *bd, *seg, *ch;
	char *tab;
	const char *head, *row;

	world_build(f->t, &w);
	bumper_add(&b, CBDT_OBJ_HOST, w.srv);
	bumper_add(&b, CBDT_OBJ_HOST, w.cli);
	bumper_add(&b, CBDT_OBJ_BACKEND, w.be);
	bumper_add(&b, CBDT_OBJ_BLKDEV, w.bd);
	bumper_start(&b, f->t);
	s = collect_beating(f->t, &b, WINDOW_MS);
	bumper_stop(&b);
	j = to_json(s, false);
	check_types(j);

	assert_int_equal(json_array_size(get(j, "hosts", JSON_ARRAY)), 2);
	h = find_id(j, "hosts", w.srv);
	assert_string_equal(get_str(h, "hostname"), "node-b");
	assert_string_equal(get_str(h, "role"), "backend");
	assert_int_equal(get_int(h, "pid"), 4242);
	assert_true(get_bool(h, "alive"));
	h = find_id(j, "hosts", w.cli);
	assert_string_equal(get_str(h, "hostname"), "node-a");
	assert_string_equal(get_str(h, "role"), "client");
	assert_true(get_bool(h, "alive"));

	be = find_id(j, "backends", w.be);
	assert_int_equal(get_int(be, "host_id"), w.srv);
	assert_string_equal(get_str(be, "name"), "disk0");
	assert_string_equal(get_str(be, "path"), "/var/lib/cbd/disk0.img");
	assert_int_equal(get_int(be, "size"), 1LL << 30);
	assert_int_equal(get_int(be, "handlers"), 4);
	assert_false(get_bool(be, "readonly"));
	assert_true(get_bool(be, "alive"));

	bd = find_id(j, "blkdevs", w.bd);
	assert_int_equal(get_int(bd, "host_id"), w.cli);
	assert_int_equal(get_int(bd, "backend_id"), w.be);
	assert_int_equal(get_int(bd, "queues"), 2);
	assert_false(get_bool(bd, "readonly"));
	assert_true(get_bool(bd, "alive"));
	ch = get(bd, "channels", JSON_ARRAY);
	assert_int_equal(json_integer_value(json_array_get(ch, 0)), w.segs[0]);
	assert_int_equal(json_integer_value(json_array_get(ch, 1)), w.segs[1]);

	assert_int_equal(json_array_size(get(j, "segments", JSON_ARRAY)), 2);
	assert_int_equal(
		get_int(get(j, "transport", JSON_OBJECT), "segments_used"), 2);
	seg = find_id(j, "segments", w.segs[0]);
	assert_string_equal(get_str(seg, "type"), "channel");
	assert_string_equal(get_str(seg, "state"), "active");
	assert_int_equal(get_int(seg, "backend_id"), w.be);
	assert_int_equal(get_int(seg, "blkdev_id"), w.bd);
	assert_int_equal(get_int(seg, "queue"), 0);
	assert_string_equal(get_str(seg, "handler"), "attached");
	assert_string_equal(get_str(seg, "client"), "open");
	assert_false(get_bool(seg, "orphaned"));
	seg = find_id(j, "segments", w.segs[1]);
	assert_int_equal(get_int(seg, "queue"), 1);
	assert_string_equal(get_str(seg, "handler"), "none");

	tab = to_table(s, false);
	head = table_line(tab, "HOSTS", "HOSTNAME");
	row = table_line(tab, "HOSTS", "node-b");
	assert_aligned(head, "HOSTNAME", row, "node-b");
	assert_aligned(head, "ROLE", row, "backend");
	assert_aligned(head, "ALIVE", row, "yes");
	head = table_line(tab, "BACKENDS", "PATH");
	row = table_line(tab, "BACKENDS", "disk0");
	assert_aligned(head, "PATH", row, "/var/lib/cbd/disk0.img");
	assert_aligned(head, "HOST ", row, "node-b (0)");
	assert_non_null(strstr(row, "1.0 GiB"));
	row = table_line(tab, "BLKDEVS", "node-a");
	assert_non_null(strstr(row, "disk0 (0)"));
	assert_non_null(strstr(tab, "SEGMENTS (2 used,"));
	row = table_line(tab, "SEGMENTS", "attached");
	assert_non_null(strstr(row, "channel"));
	/* without --all there is no STATE column */
	assert_null(strstr(tab, "STATE"));
	free(tab);

	cbdt_channel_close(w.handler);
	json_decref(j);
	status_snap_free(s);
}

static void test_dead_objects(void **state)
{
	struct fx *f = *state;
	struct bumper b = {0};
	struct world w;
	struct status_snap *s;
	json_t *j, *el;
	char *tab;
	size_t i;

	world_build(f->t, &w);
	/* only the server host keeps beating; everything else is dead */
	bumper_add(&b, CBDT_OBJ_HOST, w.srv);
	bumper_start(&b, f->t);
	s = collect_beating(f->t, &b, WINDOW_MS);
	bumper_stop(&b);
	j = to_json(s, false);
	check_types(j);

	assert_true(get_bool(find_id(j, "hosts", w.srv), "alive"));
	el = find_id(j, "hosts", w.cli);
	assert_false(get_bool(el, "alive"));
	assert_true(get_int(el, "heartbeat_age_ms") >= (long long)WINDOW_MS);
	/* A moving counter's age counts from its last move, seen at least a
	 * poll after the window began: younger than a still one's. */
	assert_true(get_int(find_id(j, "hosts", w.srv), "heartbeat_age_ms") <
		    get_int(el, "heartbeat_age_ms"));
	assert_false(get_bool(find_id(j, "backends", w.be), "alive"));
	assert_false(get_bool(find_id(j, "blkdevs", w.bd), "alive"));
	/* dead objects are still listed while their slot is active */
	json_array_foreach(get(j, "blkdevs", JSON_ARRAY), i, el)
		assert_string_equal(get_str(el, "state"), "active");

	tab = to_table(s, false);
	assert_non_null(strstr(table_line(tab, "HOSTS", "node-a"), " no "));
	assert_non_null(strstr(table_line(tab, "HOSTS", "node-a"), ">= "));
	assert_non_null(strstr(table_line(tab, "HOSTS", "node-b"), " yes "));
	assert_non_null(strstr(table_line(tab, "BACKENDS", "disk0"), " no "));
	free(tab);
	cbdt_channel_close(w.handler);
	json_decref(j);
	status_snap_free(s);
}

static void test_all_lists_free_slots(void **state)
{
	struct fx *f = *state;
	uint32_t nseg = cbdt_slot_count(f->t, CBDT_OBJ_SEGMENT);
	struct status_snap *s;
	json_t *j, *el;
	uint32_t host;
	char *tab;

	host = host_add(f->t, "node-c", CBDT_ROLE_BACKEND, 1, 100);
	s = collect(f->t, 20);
	j = to_json(s, true);
	check_types(j);
	assert_int_equal(json_array_size(get(j, "hosts", JSON_ARRAY)),
			 CBDT_HOSTS_NR);
	assert_int_equal(json_array_size(get(j, "backends", JSON_ARRAY)),
			 CBDT_BACKENDS_NR);
	assert_int_equal(json_array_size(get(j, "blkdevs", JSON_ARRAY)),
			 CBDT_BLKDEVS_NR);
	assert_int_equal(json_array_size(get(j, "segments", JSON_ARRAY)), nseg);
	assert_string_equal(get_str(find_id(j, "hosts", host), "state"),
			    "active");
	el = find_id(j, "hosts", host + 1);
	assert_string_equal(get_str(el, "state"), "free");
	assert_false(get_bool(el, "alive"));
	assert_string_equal(get_str(el, "record"), "unwritten");
	assert_true(json_is_null(json_object_get(el, "hostname")));
	json_decref(j);

	/* without --all only the active host */
	j = to_json(s, false);
	assert_int_equal(json_array_size(get(j, "hosts", JSON_ARRAY)), 1);
	assert_int_equal(json_array_size(get(j, "segments", JSON_ARRAY)), 0);

	tab = to_table(s, true);
	assert_non_null(strstr(tab, "STATE"));
	assert_non_null(strstr(table_line(tab, "HOSTS", "node-c"), "active"));
	assert_non_null(table_line(tab, "BACKENDS", "free"));
	assert_non_null(table_line(tab, "SEGMENTS", "free"));
	free(tab);
	json_decref(j);
	status_snap_free(s);
}

static void test_full_slots(void **state)
{
	struct fx *f = *state;
	uint32_t nseg = cbdt_slot_count(f->t, CBDT_OBJ_SEGMENT), be;
	struct status_snap *s;
	char name[32], *tab, title[64];
	uint64_t owner;
	json_t *j, *tr;

	for (unsigned i = 0; i < CBDT_HOSTS_NR; i++) {
		snprintf(name, sizeof(name), "host-%02u", i);
		host_add(f->t, name, CBDT_ROLE_CLIENT, 1000 + i, 100);
	}
	for (unsigned i = 0; i < CBDT_BACKENDS_NR; i++) {
		snprintf(name, sizeof(name), "disk%u", i);
		be = backend_add(f->t, 0, name, "/dev/null", 4096, 1, i & 1);
		assert_int_equal(be, i);
	}
	for (unsigned i = 0; i < CBDT_BLKDEVS_NR; i++)
		assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_BLKDEV, -1, 1,
						 &owner),
				 (int)i);
	for (unsigned i = 0; i < nseg; i++)
		assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_SEGMENT, -1, 1,
						 &owner),
				 (int)i);
	assert_int_equal(cbdt_slot_claim(f->t, CBDT_OBJ_HOST, -1, 0, &owner),
			 -ENOSPC);

	s = collect(f->t, 20);
	j = to_json(s, false);
	check_types(j);
	tr = get(j, "transport", JSON_OBJECT);
	assert_int_equal(json_array_size(get(j, "hosts", JSON_ARRAY)),
			 CBDT_HOSTS_NR);
	assert_int_equal(json_array_size(get(j, "backends", JSON_ARRAY)),
			 CBDT_BACKENDS_NR);
	assert_int_equal(json_array_size(get(j, "blkdevs", JSON_ARRAY)),
			 CBDT_BLKDEVS_NR);
	assert_int_equal(get_int(tr, "segments_used"), nseg);
	assert_int_equal(get_int(tr, "segments_free"), 0);
	assert_true(get_bool(find_id(j, "backends", 7), "readonly"));
	assert_false(get_bool(find_id(j, "backends", 8), "readonly"));
	/* claimed, never written: listed with a null record */
	assert_string_equal(get_str(find_id(j, "blkdevs", 5), "record"),
			    "unwritten");
	assert_true(json_is_null(
		json_object_get(find_id(j, "blkdevs", 5), "backend_id")));

	tab = to_table(s, false);
	snprintf(title, sizeof(title), "SEGMENTS (%u used, 0 free)", nseg);
	assert_non_null(strstr(tab, title));
	assert_non_null(table_line(tab, "HOSTS", "host-31"));
	assert_non_null(table_line(tab, "BACKENDS", "disk127"));
	assert_non_null(table_line(tab, "BLKDEVS", "(unwritten)"));
	assert_non_null(strstr(tab, "hosts 32/32"));
	free(tab);
	json_decref(j);
	status_snap_free(s);
}

static void test_corrupt_record(void **state)
{
	struct fx *f = *state;
	uint32_t host = host_add(f->t, "node-x", CBDT_ROLE_CLIENT, 7, 100);
	struct cbdt_slot *slot = cbdt_slot_get(f->t, CBDT_OBJ_HOST, host);
	struct status_snap *s;
	json_t *j, *h;
	char *tab;

	/* flip a payload byte in both copies: no valid copy remains */
	slot->rec[0].payload[0] ^= 0xff;
	slot->rec[1].payload[0] ^= 0xff;
	s = collect(f->t, 20);
	j = to_json(s, false);
	check_types(j);
	h = find_id(j, "hosts", host);
	assert_string_equal(get_str(h, "record"), "corrupt");
	assert_true(json_is_null(json_object_get(h, "hostname")));
	assert_true(json_is_null(json_object_get(h, "pid")));
	tab = to_table(s, false);
	assert_non_null(table_line(tab, "HOSTS", "(corrupt)"));
	free(tab);
	json_decref(j);
	status_snap_free(s);
}

static void test_orphaned_segment_and_writer_lock(void **state)
{
	struct fx *f = *state;
	uint32_t srv = host_add(f->t, "node-b", CBDT_ROLE_BACKEND, 1, 100);
	uint32_t be = backend_add(f->t, srv, "disk0", "/x", 1 << 20, 2, false);
	uint32_t segs[1], bd = blkdev_add(f->t, srv, be, 1, false, segs);
	uint64_t bd_owner = cbdt_slot_owner(f->t, CBDT_OBJ_BLKDEV, bd);
	struct status_snap *s;
	json_t *j;
	char *tab;

	assert_int_equal(cbdt_backend_lock(f->t, be, bd, bd_owner), 0);
	s = collect(f->t, 20);
	j = to_json(s, false);
	assert_int_equal(get_int(find_id(j, "backends", be), "writer_blkdev"),
			 bd);
	assert_false(get_bool(find_id(j, "segments", segs[0]), "orphaned"));
	tab = to_table(s, false);
	assert_non_null(
		strstr(table_line(tab, "BACKENDS", "disk0"), "blkdev 0"));
	free(tab);
	json_decref(j);
	status_snap_free(s);

	/* the blkdev goes away without its segment: the segment is orphaned */
	cbdt_backend_unlock(f->t, be, bd, bd_owner);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_BLKDEV, bd, bd_owner),
			 0);
	s = collect(f->t, 20);
	j = to_json(s, false);
	assert_true(json_is_null(
		json_object_get(find_id(j, "backends", be), "writer_blkdev")));
	assert_true(get_bool(find_id(j, "segments", segs[0]), "orphaned"));
	assert_int_equal(json_array_size(get(j, "blkdevs", JSON_ARRAY)), 0);
	tab = to_table(s, false);
	assert_non_null(table_line(tab, "SEGMENTS", "(orphaned)"));
	free(tab);
	json_decref(j);
	status_snap_free(s);
}

static void test_default_window(void **state)
{
	struct fx *f = *state;
	uint64_t owner;

	assert_int_equal(status_default_window(f->t), STATUS_WINDOW_DEFAULT_MS);
	host_add(f->t, "a", CBDT_ROLE_CLIENT, 1, 100);
	assert_int_equal(status_default_window(f->t), STATUS_WINDOW_MIN_MS);
	host_add(f->t, "b", CBDT_ROLE_CLIENT, 2, 1000);
	assert_int_equal(status_default_window(f->t), 1500);
	host_add(f->t, "c", CBDT_ROLE_CLIENT, 3, 5000);
	assert_int_equal(status_default_window(f->t), STATUS_WINDOW_MAX_MS);
	/* a free slot's stale record does not count */
	owner = cbdt_slot_owner(f->t, CBDT_OBJ_HOST, 2);
	assert_int_equal(cbdt_slot_release(f->t, CBDT_OBJ_HOST, 2, owner), 0);
	assert_int_equal(status_default_window(f->t), 1500);
}

static void test_readonly_mapping(void **state)
{
	struct fx *f = *state;
	struct bumper b = {0};
	struct status_snap *s;
	struct cbdt *ro;
	uint32_t host;
	json_t *j;

	host = host_add(f->t, "node-r", CBDT_ROLE_CLIENT, 9, 100);
	bumper_add(&b, CBDT_OBJ_HOST, host);
	bumper_start(&b, f->t);
	/* PROT_READ: any write by the collector would fault the test */
	assert_int_equal(cbdt_open(f->path, CBDT_MAP_RDONLY, &ro), 0);
	s = collect_beating(ro, &b, WINDOW_MS);
	bumper_stop(&b);
	j = to_json(s, true);
	assert_true(get_bool(find_id(j, "hosts", host), "alive"));
	assert_string_equal(get_str(find_id(j, "hosts", host), "hostname"),
			    "node-r");
	json_decref(j);
	status_snap_free(s);
	cbdt_close(ro);
}

static void test_no_liveness_and_stop(void **state)
{
	struct fx *f = *state;
	struct status_opts o = {.no_liveness = true};
	volatile sig_atomic_t stop = 1;
	struct status_snap *s = NULL;
	uint64_t t0;

	host_add(f->t, "node-q", CBDT_ROLE_CLIENT, 9, 100);
	/* one read, no window watched (window_ms 0 says so) */
	assert_int_equal(status_collect(f->t, &o, NULL, &s), 0);
	assert_int_equal(s->window_ms, 0);
	assert_int_equal(s->hosts_used, 1);
	assert_false(s->hosts[0].s.alive);
	status_snap_free(s);

	/* a set stop flag ends a long window at once: long before its end,
	 * however slow this machine is */
	o = (struct status_opts){.window_ms = 2 * TFX_DEADLINE_MS,
				 .stop = &stop};
	t0 = cbdt_now_ms();
	assert_int_equal(status_collect(f->t, &o, NULL, &s), -EINTR);
	assert_true(cbdt_now_ms() - t0 < TFX_DEADLINE_MS);
}

/*
 * I/O: the channels' counters summed per blkdev and per backend, rates
 * from the two samples (the window's length set by hand: exact), what
 * is in flight, LOST channels, and what --check reports.
 */
static void test_io_counters_rates_and_check(void **state)
{
	struct fx *f = *state;
	struct bumper b = {0};
	struct world w;
	struct status_snap *s;
	struct cbdt_channel_ctrl *c0, *c1;
	struct status_io io;
	json_t *j, *jio;
	char *buf = NULL, *tab;
	size_t len = 0;
	FILE *mf;

	world_build(f->t, &w);
	c0 = cbdt_segment_ctrl(f->t, w.segs[0]);
	c1 = cbdt_segment_ctrl(f->t, w.segs[1]);
	c0->stats.ops[CBDT_OP_READ] = 10;
	c0->stats.bytes[CBDT_OP_READ] = 10 * 4096;
	c1->stats.ops[CBDT_OP_WRITE] = 5;
	c1->stats.bytes[CBDT_OP_WRITE] = 5 * MiB;
	c1->stats.errors[CBDT_ERR_EIO] = 2; /* old errors: not a problem */
	c0->stats.lat[3] = 10;
	c1->stats.lat[12] = 5;
	c1->timed_out = 1;
	bumper_add(&b, CBDT_OBJ_HOST, w.srv);
	bumper_add(&b, CBDT_OBJ_HOST, w.cli);
	bumper_add(&b, CBDT_OBJ_BACKEND, w.be);
	bumper_add(&b, CBDT_OBJ_BLKDEV, w.bd);
	bumper_start(&b, f->t);
	s = collect_beating(f->t, &b, WINDOW_MS);
	bumper_stop(&b);

	/* nothing moved in the window: totals, no rates, nothing wrong */
	status_io_blkdev(s, w.bd, &io);
	assert_int_equal(io.channels, 2);
	assert_int_equal(io.ops[CBDT_OP_READ], 10);
	assert_int_equal(io.ops[CBDT_OP_WRITE], 5);
	assert_int_equal(io.bytes[CBDT_OP_WRITE], 5 * MiB);
	assert_int_equal(io.errors, 2);
	assert_int_equal(io.errors_window, 0);
	assert_int_equal(io.timed_out, 1);
	assert_int_equal(io.lat[3], 10);
	assert_int_equal(io.lat[12], 5);
	assert_int_equal(io.inflight, 0);
	assert_false(io.lost);
	assert_true(io.iops == 0 && io.read_mib_s == 0 && io.write_mib_s == 0);
	assert_int_equal(io.qdepth, 16);
	assert_true(io.max_io > 0);
	mf = open_memstream(&buf, &len);
	assert_int_equal(status_check(s, mf), 0);
	fclose(mf);
	free(buf);

	j = to_json(s, false);
	check_types(j);
	jio = get(find_id(j, "blkdevs", w.bd), "io", JSON_OBJECT);
	assert_int_equal(get_int(get(jio, "ops", JSON_OBJECT), "read"), 10);
	assert_int_equal(get_int(get(jio, "bytes", JSON_OBJECT), "write"),
			 5 * MiB);
	assert_int_equal(get_int(jio, "errors"), 2);
	assert_int_equal(get_int(jio, "timed_out"), 1);
	assert_int_equal(
		json_array_size(get(jio, "latency_us_log2", JSON_ARRAY)),
		CBDT_LAT_BUCKETS);
	jio = get(find_id(j, "backends", w.be), "io", JSON_OBJECT);
	assert_int_equal(get_int(get(jio, "ops", JSON_OBJECT), "write"), 5);
	json_decref(j);

	/* a second sample one second later: rates, new errors, LOST */
	status_io_sample(f->t, s, true);
	c0->stats.ops[CBDT_OP_READ] += 100;
	c0->stats.bytes[CBDT_OP_READ] += 100 * 4096;
	c1->stats.ops[CBDT_OP_WRITE] += 3;
	c1->stats.bytes[CBDT_OP_WRITE] += 3 * MiB;
	c1->stats.errors[CBDT_ERR_EBADMSG] += 1;
	c1->handler_flags |= CBDT_HF_LOST;
	status_io_sample(f->t, s, false);
	s->io_ns = 1000000000ULL;
	status_io_backend(s, w.be, &io);
	assert_true(io.iops == 103);
	assert_true(io.read_mib_s == 100 * 4096.0 / MiB);
	assert_true(io.write_mib_s == 3);
	assert_int_equal(io.errors_window, 1);
	assert_true(io.lost);
	mf = open_memstream(&buf, &len);
	assert_int_equal(status_check(s, mf), 4); /* lost, errors: x2 */
	fclose(mf);
	assert_non_null(strstr(buf, "lost: backend 0"));
	assert_non_null(strstr(buf, "errors: blkdev 0: 1 failed requests"));
	free(buf);
	tab = to_table(s, false);
	assert_non_null(strstr(table_line(tab, "I/O", "blkdev 0"), "103"));
	assert_non_null(strstr(table_line(tab, "I/O", "blkdev 0"), "LOST"));
	free(tab);

	cbdt_channel_close(w.handler);
	status_snap_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_empty_transport),
		T(test_one_of_each_alive),
		T(test_dead_objects),
		T(test_all_lists_free_slots),
		T(test_full_slots),
		T(test_corrupt_record),
		T(test_orphaned_segment_and_writer_lock),
		T(test_default_window),
		T(test_readonly_mapping),
		T(test_no_liveness_and_stop),
		T(test_io_counters_rates_and_check),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
