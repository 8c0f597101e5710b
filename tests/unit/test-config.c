/* Description: cbd.ini parsing: defaults, every key, relative paths, and
 * every refused config (unknown section or key, bad numbers, handlers and
 * poll_us out of range, duplicate id/name/path/key, missing or unusable
 * paths, a transport too small, syntax) reported as "FILE:LINE: key:
 * reason". */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cbdt.h"
#include "config.h"

struct fixture {
	char dir[64];
	char ini[128];
	char disk0[128];
	char disk1[128];
	char transport[128];
	char msg[1024];
	char want[1024];
};

static void file_make(const char *path, off_t size)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(truncate(path, size), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/dev/shm/cbd-test-config-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->ini, sizeof(f->ini), "%s/cbd.ini", f->dir);
	snprintf(f->disk0, sizeof(f->disk0), "%s/disk0.img", f->dir);
	snprintf(f->disk1, sizeof(f->disk1), "%s/disk1.img", f->dir);
	snprintf(f->transport, sizeof(f->transport), "%s/transport", f->dir);
	file_make(f->disk0, 1 << 20);
	file_make(f->disk1, 2 << 20);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

__attribute__((format(printf, 2, 3))) static void
ini_write(struct fixture *f, const char *fmt, ...)
{
	va_list ap;
	FILE *out = fopen(f->ini, "w");

	assert_non_null(out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	assert_int_equal(fclose(out), 0);
}

/* A [transport] section that is valid in the fixture: lines 1-3. */
#define TRANSPORT_OK "[transport]\npath = %s\nsize = 64M\n"

static struct config *load_ok(struct fixture *f)
{
	struct config *cfg = NULL;
	int ret = config_load(f->ini, CONFIG_CHECK_FILES, &cfg, f->msg,
			      sizeof(f->msg));

	if (ret)
		fail_msg("unexpected error %d: %s", ret, f->msg);
	assert_non_null(cfg);
	return cfg;
}

/* The load fails with exactly "INI:LINE: KEY: " followed by @reason. */
static void load_fails(struct fixture *f, int line, const char *key,
		       const char *why)
{
	char reason[512];
	struct config *cfg = NULL;
	int ret;

	/* @why may be f->want itself. */
	snprintf(reason, sizeof(reason), "%s", why);
	ret = config_load(f->ini, CONFIG_CHECK_FILES, &cfg, f->msg,
			  sizeof(f->msg));
	if (!ret)
		fail_msg("config accepted; expected %s:%d: %s: %s", f->ini,
			 line, key, reason);
	assert_true(ret < 0);
	assert_null(cfg);
	if (line)
		snprintf(f->want, sizeof(f->want), "%s:%d: %s: %s", f->ini,
			 line, key, reason);
	else
		snprintf(f->want, sizeof(f->want), "%s: %s: %s", f->ini, key,
			 reason);
	if (strncmp(f->msg, f->want, strlen(f->want)))
		fail_msg("got  '%s'\nwant '%s...'", f->msg, f->want);
}

static void test_minimal_gets_defaults(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;
	char host[256] = "";

	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\n", f->transport,
		  f->disk0);
	cfg = load_ok(f);
	assert_string_equal(cfg->path, f->transport);
	assert_int_equal(cfg->size, 64 << 20);
	assert_int_equal(cfg->format, CONFIG_FORMAT_NEVER);
	assert_int_equal(cfg->hb_interval_ms, CONFIG_HB_INTERVAL_DEFAULT);
	assert_int_equal(cfg->hb_timeout_ms, CONFIG_HB_TIMEOUT_DEFAULT);
	gethostname(host, sizeof(host) - 1);
	assert_string_equal(cfg->hostname, host);
	assert_int_equal(cfg->nr_backends, 1);
	assert_string_equal(cfg->backends[0].name, "disk0");
	assert_string_equal(cfg->backends[0].path, f->disk0);
	assert_int_equal(cfg->backends[0].id, -1);
	assert_int_equal(cfg->backends[0].handlers, CONFIG_HANDLERS_DEFAULT);
	assert_false(cfg->backends[0].readonly);
	assert_int_equal(cfg->backends[0].line, 4);
	config_free(cfg);
}

static void test_every_key_and_comments(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;

	ini_write(f,
		  "; cbd.ini\n"
		  "# another comment\n"
		  "[transport]\n"
		  "path = transport          ; relative to the config file\n"
		  "size = 1G\n"
		  "format = if-empty\n"
		  "hostname = node-b\n"
		  "heartbeat_interval_ms = 250\n"
		  "heartbeat_timeout_ms = 3000\n"
		  "\n"
		  "[backend disk0]\n"
		  "path = disk0.img\n"
		  "id = 7\n"
		  "handlers = 128\n"
		  "poll_us = 1000\n"
		  "poll_max_us = 1000\n"
		  "readonly = yes\n"
		  "[backend d-1.x_y]\n"
		  "path = %s\n"
		  "handlers = 1\n"
		  "readonly = false\n",
		  f->disk1);
	cfg = load_ok(f);
	assert_string_equal(cfg->path, f->transport);
	assert_int_equal(cfg->size, 1ULL << 30);
	assert_int_equal(cfg->format, CONFIG_FORMAT_IF_EMPTY);
	assert_string_equal(cfg->hostname, "node-b");
	assert_int_equal(cfg->hb_interval_ms, 250);
	assert_int_equal(cfg->hb_timeout_ms, 3000);
	assert_string_equal(cfg->file, f->ini);
	assert_int_equal(cfg->nr_backends, 2);
	assert_string_equal(cfg->backends[0].path, f->disk0);
	assert_int_equal(cfg->backends[0].id, 7);
	assert_int_equal(cfg->backends[0].handlers, 128);
	assert_int_equal(cfg->backends[0].poll_us, 1000);
	assert_int_equal(cfg->backends[0].poll_max_us, 1000);
	assert_true(cfg->backends[0].readonly);
	assert_string_equal(cfg->backends[1].name, "d-1.x_y");
	assert_int_equal(cfg->backends[1].handlers, 1);
	assert_int_equal(cfg->backends[1].poll_us, CONFIG_POLL_US_DEFAULT);
	assert_int_equal(cfg->backends[1].poll_max_us,
			 CONFIG_POLL_MAX_US_DEFAULT);
	assert_false(cfg->backends[1].readonly);
	assert_ptr_equal(config_backend_find(cfg, "d-1.x_y"),
			 &cfg->backends[1]);
	assert_null(config_backend_find(cfg, "disk2"));
	config_free(cfg);
}

static void test_no_backend_is_valid(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK, f->transport);
	config_free(load_ok(f));
}

static void test_existing_transport_needs_no_size(void **state)
{
	struct fixture *f = *state;

	file_make(f->transport, 64 << 20);
	ini_write(f, "[transport]\npath = %s\n", f->transport);
	config_free(load_ok(f));
}

static void test_unknown_section(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "\n[backends disk0]\npath = %s\n",
		  f->transport, f->disk0);
	load_fails(f, 5, "backends disk0", "unknown section");
}

static void test_empty_unknown_section(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "[cache]\n", f->transport);
	load_fails(f, 4, "cache", "unknown section");
}

static void test_unknown_key(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\nhandler = 4\n",
		  f->transport, f->disk0);
	load_fails(f, 6, "handler", "unknown key in [backend disk0]");
}

static void test_unknown_transport_key(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "heartbeat_ms = 10\n", f->transport);
	load_fails(f, 4, "heartbeat_ms", "unknown key in [transport]");
}

static void test_bad_number(void **state)
{
	struct fixture *f = *state;

	ini_write(f,
		  TRANSPORT_OK "[backend disk0]\npath = %s\nhandlers = four\n",
		  f->transport, f->disk0);
	load_fails(f, 6, "handlers", "not a number: 'four'");
	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\nid = -1\n",
		  f->transport, f->disk0);
	load_fails(f, 6, "id", "not a number: '-1'");
	ini_write(f, TRANSPORT_OK "heartbeat_interval_ms = 100ms\n",
		  f->transport);
	load_fails(f, 4, "heartbeat_interval_ms", "not a number: '100ms'");
}

/* [backend disk0] with its path and the one line @kv (line 6): refused
 * on that line, for @key, with @why. */
static void backend_key_fails(struct fixture *f, const char *kv,
			      const char *key, const char *why)
{
	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\n%s\n",
		  f->transport, f->disk0, kv);
	load_fails(f, 6, key, why);
}

static void test_handlers_poll_out_of_range(void **state)
{
	struct fixture *f = *state;

	backend_key_fails(f, "handlers = 0", "handlers",
			  "out of range: '0' (expected 1 to 128)");
	backend_key_fails(f, "handlers = 129", "handlers",
			  "out of range: '129' (expected 1 to 128)");
	backend_key_fails(f, "poll_us = 0", "poll_us",
			  "out of range: '0' (expected 1 to 1000)");
	backend_key_fails(f, "poll_us = 1001", "poll_us",
			  "out of range: '1001' (expected 1 to 1000)");
	backend_key_fails(f, "poll_max_us = 1001", "poll_max_us",
			  "out of range: '1001' (expected 0 to 1000)");
	/* below poll_us (3 by default), other than 0 (off) */
	backend_key_fails(f, "poll_max_us = 2", "poll_max_us",
			  "2 is less than poll_us (3): 0 turns adapting off");
}

/* A poll_us above the default poll_max_us is no error: the handler's
 * adaptive poll is then poll_us long, as poll_max_us = poll_us says. */
static void test_poll_us_above_the_default_max(void **state)
{
	struct fixture *f = *state;
	struct config *cfg;

	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\npoll_us = %u\n",
		  f->transport, f->disk0, CONFIG_POLL_MAX_US_DEFAULT + 1);
	cfg = load_ok(f);
	assert_int_equal(cfg->backends[0].poll_us,
			 CONFIG_POLL_MAX_US_DEFAULT + 1);
	assert_int_equal(cfg->backends[0].poll_max_us,
			 CONFIG_POLL_MAX_US_DEFAULT);
	config_free(cfg);
}

static void test_id_out_of_range(void **state)
{
	struct fixture *f = *state;

	backend_key_fails(f, "id = 128", "id",
			  "out of range: '128' (expected 0 to 127)");
}

static void test_duplicate_id(void **state)
{
	struct fixture *f = *state;

	ini_write(f,
		  TRANSPORT_OK "[backend disk0]\npath = %s\nid = 3\n"
			       "[backend disk1]\nid = 3\npath = %s\n",
		  f->transport, f->disk0, f->disk1);
	load_fails(f, 8, "id", "duplicate id 3 (also backend disk0)");
}

static void test_duplicate_name(void **state)
{
	struct fixture *f = *state;

	ini_write(f,
		  TRANSPORT_OK "[backend disk0]\npath = %s\n"
			       "[backend disk0]\npath = %s\n",
		  f->transport, f->disk0, f->disk1);
	load_fails(f, 6, "backend disk0",
		   "duplicate backend name (first at line 4)");
}

static void test_duplicate_transport(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "[transport]\n", f->transport);
	load_fails(f, 4, "[transport]", "duplicate section (first at line 1)");
}

static void test_duplicate_key(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "size = 128M\n", f->transport);
	load_fails(f, 4, "size", "given twice (first at line 3)");
}

static void test_duplicate_path(void **state)
{
	struct fixture *f = *state;

	ini_write(f,
		  TRANSPORT_OK "[backend disk0]\npath = %s\n"
			       "[backend disk1]\npath = %s\n",
		  f->transport, f->disk0, f->disk0);
	load_fails(f, 7, "path", "");
	assert_non_null(strstr(f->msg, "also the path of backend disk0"));
}

static void test_same_file_by_another_name(void **state)
{
	struct fixture *f = *state;
	char link[160];

	snprintf(link, sizeof(link), "%s/link.img", f->dir);
	assert_int_equal(symlink(f->disk0, link), 0);
	ini_write(f,
		  TRANSPORT_OK "[backend disk0]\npath = %s\n"
			       "[backend disk1]\npath = %s\n",
		  f->transport, f->disk0, link);
	load_fails(f, 7, "path", link);
	assert_non_null(strstr(f->msg, "the same file as backend disk0"));
}

static void test_backend_path_missing_key(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "[backend disk0]\nhandlers = 2\n",
		  f->transport);
	load_fails(f, 4, "path", "missing in [backend disk0]");
}

static void test_backend_path_does_not_exist(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = nothere.img\n",
		  f->transport);
	snprintf(f->want, sizeof(f->want), "%s/nothere.img: %s", f->dir,
		 strerror(ENOENT));
	load_fails(f, 5, "path", f->want);
}

static void test_backend_path_not_a_file(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\nreadonly = 1\n",
		  f->transport, f->dir);
	load_fails(f, 5, "path", f->dir);
	assert_non_null(strstr(f->msg, "not a regular file or a block device"));
	/* Writable: the directory does not even open. */
	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\n", f->transport,
		  f->dir);
	snprintf(f->want, sizeof(f->want), "%s: %s", f->dir, strerror(EISDIR));
	load_fails(f, 5, "path", f->want);
}

static void test_backend_too_small(void **state)
{
	struct fixture *f = *state;
	static const unsigned sizes[] = {0, 1000, 4095};

	for (unsigned i = 0; i < 3; i++) {
		file_make(f->disk1, sizes[i]);
		ini_write(f, TRANSPORT_OK "[backend disk1]\npath = %s\n",
			  f->transport, f->disk1);
		snprintf(
			f->want, sizeof(f->want),
			"%s: %u bytes: smaller than 4096 bytes, too small to serve",
			f->disk1, sizes[i]);
		load_fails(f, 5, "path", f->want);
	}
}

static void test_backend_is_transport(void **state)
{
	struct fixture *f = *state;

	file_make(f->transport, 64 << 20);
	ini_write(f, TRANSPORT_OK "[backend t]\npath = %s\n", f->transport,
		  f->transport);
	snprintf(f->want, sizeof(f->want), "%s: is the transport",
		 f->transport);
	load_fails(f, 5, "path", f->want);
}

static void test_bad_backend_name(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "[backend a/b]\npath = %s\n", f->transport,
		  f->disk0);
	load_fails(f, 4, "backend a/b", "bad backend name");
	ini_write(f, TRANSPORT_OK "[backend]\npath = %s\n", f->transport,
		  f->disk0);
	load_fails(f, 4, "backend", "unknown section");
	/* 42 characters: one more than inih keeps of a section name. */
	ini_write(f, TRANSPORT_OK "[backend %s]\npath = %s\n", f->transport,
		  "abcdefghijabcdefghijabcdefghijabcdefghij12", f->disk0);
	load_fails(f, 4, "backend abcdefghijabcdefghijabcdefghijabcdefghij12",
		   "bad backend name");
}

static void test_size_too_small(void **state)
{
	struct fixture *f = *state;

	ini_write(f, "[transport]\npath = %s\nsize = 16M\n", f->transport);
	load_fails(f, 3, "size", "transport too small: 16.0 MiB (at least ");
	ini_write(f, "[transport]\npath = %s\nsize = lots\n", f->transport);
	load_fails(f, 3, "size", "not a size: 'lots'");
}

static void test_existing_transport_too_small(void **state)
{
	struct fixture *f = *state;

	file_make(f->transport, cbdt_min_size() - 4096);
	ini_write(f, TRANSPORT_OK, f->transport);
	snprintf(f->want, sizeof(f->want), "%s: transport too small",
		 f->transport);
	load_fails(f, 2, "path", f->want);
}

static void test_transport_missing_without_size(void **state)
{
	struct fixture *f = *state;

	ini_write(f, "[transport]\npath = %s\n", f->transport);
	snprintf(f->want, sizeof(f->want),
		 "%s: does not exist and no size is set to create it",
		 f->transport);
	load_fails(f, 2, "path", f->want);
	ini_write(f, "[transport]\npath = %s/no/such/dir/t\nsize = 64M\n",
		  f->dir);
	load_fails(f, 2, "path", "");
	assert_non_null(strstr(f->msg, "cannot be created: no directory"));
}

static void test_transport_section_missing(void **state)
{
	struct fixture *f = *state;

	ini_write(f, "[backend disk0]\npath = %s\n", f->disk0);
	load_fails(f, 0, "[transport]", "section missing");
	ini_write(f, "[transport]\nsize = 64M\n");
	load_fails(f, 1, "path", "missing in [transport]");
}

static void test_bad_values(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "format = always\n", f->transport);
	load_fails(f, 4, "format",
		   "bad value 'always' (expected never or if-empty)");
	ini_write(f,
		  TRANSPORT_OK "[backend disk0]\npath = %s\nreadonly = maybe\n",
		  f->transport, f->disk0);
	load_fails(f, 6, "readonly",
		   "bad value 'maybe' (expected true or false)");
	ini_write(f, TRANSPORT_OK "hostname = two words\n", f->transport);
	load_fails(f, 4, "hostname", "bad host name 'two words'");
	ini_write(f, TRANSPORT_OK "heartbeat_interval_ms = 5\n", f->transport);
	load_fails(f, 4, "heartbeat_interval_ms", "out of range: '5'");
	ini_write(f, TRANSPORT_OK "path2 = \n", f->transport);
	load_fails(f, 4, "path2", "unknown key");
}

static void test_timeout_shorter_than_two_intervals(void **state)
{
	struct fixture *f = *state;

	ini_write(f,
		  TRANSPORT_OK "heartbeat_interval_ms = 1000\n"
			       "heartbeat_timeout_ms = 1500\n",
		  f->transport);
	load_fails(
		f, 5, "heartbeat_timeout_ms",
		"heartbeat_timeout_ms (1500) must be at least twice heartbeat_interval_ms (1000)");
}

static void test_syntax_error(void **state)
{
	struct fixture *f = *state;

	ini_write(f, TRANSPORT_OK "this line has no equals sign\n",
		  f->transport);
	load_fails(f, 4, "syntax", "expected 'key = value' or '[section]'");
	ini_write(f, TRANSPORT_OK "[backend disk0\npath = %s\n", f->transport,
		  f->disk0);
	load_fails(f, 4, "syntax", "");
}

static void test_key_outside_section(void **state)
{
	struct fixture *f = *state;

	ini_write(f, "path = %s\n" TRANSPORT_OK, f->transport, f->transport);
	load_fails(f, 1, "path", "key outside of any section");
}

static void test_line_too_long(void **state)
{
	struct fixture *f = *state;
	char lng[400];

	memset(lng, 'a', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\n", f->transport,
		  lng);
	load_fails(f, 5, "line", "too long");
}

static void test_earliest_error_wins(void **state)
{
	struct fixture *f = *state;

	/* A key error on line 3 comes before the syntax error of line 4,
	 * although inih reports the syntax error only at the end. */
	ini_write(f, "[transport]\npath = %s\nsize = 1x\nnonsense\n",
		  f->transport);
	load_fails(f, 3, "size", "not a size");
	/* And the other way round. */
	ini_write(f, "[transport]\nnonsense\npath = %s\nsize = 1x\n",
		  f->transport);
	load_fails(f, 2, "syntax", "");
}

static void test_config_file_missing(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = NULL;

	assert_int_equal(config_load(f->ini, CONFIG_CHECK_FILES, &cfg, f->msg,
				     sizeof(f->msg)),
			 -ENOENT);
	snprintf(f->want, sizeof(f->want), "%s: %s", f->ini, strerror(ENOENT));
	assert_string_equal(f->msg, f->want);
	assert_null(cfg);
}

static void test_nothing_is_written(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = NULL;
	struct stat st;

	/* A valid config naming a missing transport: checking creates
	 * nothing (the daemon creates it later). */
	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\n", f->transport,
		  f->disk0);
	cfg = load_ok(f);
	config_free(cfg);
	assert_int_equal(stat(f->transport, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_reload_comparisons(void **state)
{
	struct fixture *f = *state;
	struct config *a, *b;

	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\n", f->transport,
		  f->disk0);
	a = load_ok(f);
	ini_write(f, TRANSPORT_OK "[backend disk0]\npath = %s\nhandlers = 2\n",
		  f->transport, f->disk0);
	b = load_ok(f);
	assert_true(config_transport_same(a, b));
	assert_false(config_backend_same(&a->backends[0], &b->backends[0]));
	assert_true(config_backend_same(&a->backends[0], &a->backends[0]));
	b->hb_interval_ms = 500;
	assert_false(config_transport_same(a, b));
	config_free(a);
	config_free(b);
}

/* The tools read keys and paths, not the files (they may run as nobody). */
static void test_tools_read_without_file_checks(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = NULL;
	char path[CBDT_PATH_LEN], want[CBDT_PATH_LEN + 32];
	uint64_t size;

	ini_write(f, "[transport]\npath = sub/t.img\nsize = 1G\n"
		     "[backend x]\npath = gone.img\n");
	assert_int_not_equal(config_load(f->ini, CONFIG_CHECK_FILES, &cfg,
					 f->msg, sizeof(f->msg)),
			     0);
	assert_int_equal(config_load(f->ini, 0, &cfg, f->msg, sizeof(f->msg)),
			 0);
	config_free(cfg);
	assert_int_equal(config_transport_locate(NULL, f->ini, path,
						 sizeof(path), &size, f->msg,
						 sizeof(f->msg)),
			 0);
	snprintf(want, sizeof(want), "%s/sub/t.img", f->dir);
	assert_string_equal(path, want);
	assert_int_equal(size, 1ULL << 30);
	/* -t wins, and a bad key is the same error as for cbd-backend. */
	assert_int_equal(config_transport_locate("/x", f->ini, path,
						 sizeof(path), &size, f->msg,
						 sizeof(f->msg)),
			 0);
	assert_string_equal(path, "/x");
	assert_int_equal(size, 0);
	ini_write(f, "[transport]\npath = t.img\nfoo = 1\n");
	assert_int_equal(config_transport_locate(NULL, f->ini, path,
						 sizeof(path), &size, f->msg,
						 sizeof(f->msg)),
			 -EINVAL);
	snprintf(want, sizeof(want), "%s:3: foo: unknown key in [transport]",
		 f->ini);
	assert_string_equal(f->msg, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_minimal_gets_defaults),
		T(test_every_key_and_comments),
		T(test_no_backend_is_valid),
		T(test_existing_transport_needs_no_size),
		T(test_unknown_section),
		T(test_empty_unknown_section),
		T(test_unknown_key),
		T(test_unknown_transport_key),
		T(test_bad_number),
		T(test_handlers_poll_out_of_range),
		T(test_poll_us_above_the_default_max),
		T(test_id_out_of_range),
		T(test_duplicate_id),
		T(test_duplicate_name),
		T(test_duplicate_transport),
		T(test_duplicate_key),
		T(test_duplicate_path),
		T(test_same_file_by_another_name),
		T(test_backend_path_missing_key),
		T(test_backend_path_does_not_exist),
		T(test_backend_path_not_a_file),
		T(test_backend_too_small),
		T(test_backend_is_transport),
		T(test_bad_backend_name),
		T(test_size_too_small),
		T(test_existing_transport_too_small),
		T(test_transport_missing_without_size),
		T(test_transport_section_missing),
		T(test_bad_values),
		T(test_timeout_shorter_than_two_intervals),
		T(test_syntax_error),
		T(test_key_outside_section),
		T(test_line_too_long),
		T(test_earliest_error_wins),
		T(test_config_file_missing),
		T(test_nothing_is_written),
		T(test_reload_comparisons),
		T(test_tools_read_without_file_checks),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
