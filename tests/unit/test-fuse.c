/* Description: cbdfs's own FUSE protocol layer on a real transport, with a
 * SOCK_SEQPACKET socket pair in place of /dev/fuse (one message per
 * request and per reply, as /dev/fuse has): what the kernel side can send
 * that is wrong (unknown opcodes → ENOSYS, short in-structs → EINVAL,
 * short or inconsistent headers → dropped, unterminated names), the
 * namespace (LOOKUP, GETATTR, READLINK, READDIR of / and by-name/, OPEN
 * of what is not a file, STATFS), the requests that take no reply, and
 * the session: INIT negotiation, a worker serving requests, io_uring=on
 * refused when the kernel does not offer it, and the end of the session
 * when the device goes away. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "cbdfs/cbdfs.h"
#include "janitor-fixture.h"
#include "util.h"

#define REPLY_MAX 8192

struct tf {
	struct jf *f;
	struct cbdfs fs;
	int sv[2]; /* [0]: cbdfs's "/dev/fuse", [1]: the kernel's side */
	uint64_t unique;
	uint32_t backend; /* "alpha", 64 MiB */
	/* a session run in its own thread */
	pthread_t runner;
	bool running;
	enum cbdfs_uring_mode mode;
	int run_ret;
};

struct reply {
	struct fuse_out_header h;
	char data[REPLY_MAX];
};

static int tf_setup(void **state)
{
	struct tf *w = calloc(1, sizeof(*w));
	struct cbdt_host_rec h = {.role = CBDT_ROLE_BACKEND};
	uint32_t host;
	uint64_t owner;

	if (!w || !(w->f = jf_new()))
		return -1;
	/* a long timeout: a stalled test never sees the backend die */
	snprintf(h.hostname, sizeof(h.hostname), "node-b");
	h.pid = (uint32_t)getpid();
	h.hb_interval_ms = 100;
	h.hb_timeout_ms = 3600U * 1000U;
	if (cbdt_host_register(w->f->t, &h, false, &host, &owner))
		return -1;
	w->backend = jf_backend(w->f, host, "alpha", 2, false, NULL);
	if (w->backend == UINT32_MAX)
		return -1;
	w->fs.t = w->f->t;
	w->fs.uid = getuid();
	w->fs.gid = getgid();
	if (cbdfs_state_init(&w->fs) || cbdfs_session_init(&w->fs))
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, w->sv))
		return -1;
	w->fs.sess.fd = w->sv[0];
	*state = w;
	return 0;
}

static int tf_teardown(void **state)
{
	struct tf *w = *state;

	if (w->running) {
		cbdfs_session_stop(&w->fs);
		pthread_join(w->runner, NULL);
	}
	cbdfs_session_end(&w->fs);
	cbdfs_session_destroy(&w->fs);
	cbdfs_state_destroy(&w->fs);
	for (int i = 0; i < 2; i++)
		if (w->sv[i] >= 0)
			close(w->sv[i]);
	jf_free(w->f);
	free(w);
	return 0;
}

/* Bytes of a request: header, in-struct @arg, payload @pay. */
static size_t req_build(struct tf *w, char *buf, uint32_t opcode,
			uint64_t nodeid, const void *arg, size_t arglen,
			const void *pay, size_t paylen)
{
	struct fuse_in_header h = {
		.opcode = opcode,
		.unique = ++w->unique,
		.nodeid = nodeid,
		.uid = 0,
	};

	h.len = (uint32_t)(sizeof(h) + arglen + paylen);
	memcpy(buf, &h, sizeof(h));
	if (arglen)
		memcpy(buf + sizeof(h), arg, arglen);
	if (paylen)
		memcpy(buf + sizeof(h) + arglen, pay, paylen);
	return h.len;
}

/* Hand a request straight to cbdfs, as a worker would after read(2). */
static void req(struct tf *w, uint32_t opcode, uint64_t nodeid, const void *arg,
		size_t arglen, const void *pay, size_t paylen)
{
	static char buf[REPLY_MAX];

	cbdfs_session_request(&w->fs.sess, buf,
			      req_build(w, buf, opcode, nodeid, arg, arglen,
					pay, paylen));
}

/* Send a request over the socket, for a running session. */
static void req_send(struct tf *w, uint32_t opcode, uint64_t nodeid,
		     const void *arg, size_t arglen)
{
	char buf[REPLY_MAX];
	size_t n = req_build(w, buf, opcode, nodeid, arg, arglen, NULL, 0);

	assert_int_equal(write(w->sv[1], buf, n), (ssize_t)n);
}

/* The next reply (waiting up to the deadline): its length, or -1. */
static ssize_t reply_get(struct tf *w, struct reply *r)
{
	struct pollfd p = {.fd = w->sv[1], .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, (int)TFX_DEADLINE_MS) != 1)
		return -1;
	n = read(w->sv[1], r, sizeof(*r));
	if (n >= (ssize_t)sizeof(r->h))
		assert_int_equal(r->h.len, n);
	return n;
}

/* True if a reply is waiting (direct requests answer before returning). */
static bool reply_pending(struct tf *w)
{
	struct pollfd p = {.fd = w->sv[1], .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/* The reply to the last request: error @err, and @len bytes of data. */
static void reply_expect(struct tf *w, struct reply *r, int err, size_t len)
{
	assert_int_equal(reply_get(w, r), (ssize_t)(sizeof(r->h) + len));
	assert_int_equal(r->h.unique, w->unique);
	assert_int_equal(r->h.error, -err);
}

static void lookup(struct tf *w, uint64_t parent, const char *name)
{
	req(w, FUSE_LOOKUP, parent, NULL, 0, name, strlen(name) + 1);
}

/* ---- bad requests ----------------------------------------------------- */

static void test_unknown_opcode_is_enosys(void **state)
{
	struct tf *w = *state;
	struct reply r;
	uint32_t codes[] = {FUSE_SYMLINK, FUSE_MKNOD, FUSE_RENAME2, 4096,
			    UINT32_MAX};

	for (unsigned i = 0; i < ARRAY_SIZE(codes); i++) {
		req(w, codes[i], CBDFS_ROOT_INO, NULL, 0, "x", 2);
		reply_expect(w, &r, ENOSYS, 0);
	}
}

static void test_short_in_struct_is_einval(void **state)
{
	struct tf *w = *state;
	struct fuse_read_in ri = {.size = 4096};
	struct reply r;

	req(w, FUSE_GETATTR, CBDFS_ROOT_INO, NULL, 0, NULL, 0);
	reply_expect(w, &r, EINVAL, 0);
	req(w, FUSE_READ, CBDFS_INO(w->backend), &ri, sizeof(ri) - 1, NULL, 0);
	reply_expect(w, &r, EINVAL, 0);
	req(w, FUSE_OPEN, CBDFS_INO(w->backend), NULL, 0, NULL, 0);
	reply_expect(w, &r, EINVAL, 0);
	/* a WRITE whose data is shorter than it says */
	struct fuse_write_in wi = {.size = 4096};
	req(w, FUSE_WRITE, CBDFS_INO(w->backend), &wi, sizeof(wi), "abc", 3);
	reply_expect(w, &r, EINVAL, 0);
	/* no reply for a short FORGET either: it never takes one */
	req(w, FUSE_FORGET, CBDFS_ROOT_INO, NULL, 0, NULL, 0);
	assert_false(reply_pending(w));
}

static void test_bad_header_is_dropped(void **state)
{
	struct tf *w = *state;
	char buf[256];
	struct fuse_in_header *h = (void *)buf;
	size_t n = req_build(w, buf, FUSE_GETATTR, CBDFS_ROOT_INO, NULL, 0,
			     NULL, 0);

	/* shorter than a header: nothing to answer */
	cbdfs_session_request(&w->fs.sess, buf, sizeof(*h) - 1);
	cbdfs_session_request(&w->fs.sess, buf, 0);
	/* a length that disagrees with what was read */
	h->len = (uint32_t)n + 16;
	cbdfs_session_request(&w->fs.sess, buf, n);
	h->len = 8;
	cbdfs_session_request(&w->fs.sess, buf, n);
	assert_false(reply_pending(w));
}

static void test_lookup_needs_a_terminated_name(void **state)
{
	struct tf *w = *state;
	struct reply r;

	req(w, FUSE_LOOKUP, CBDFS_ROOT_INO, NULL, 0, "backend0", 8);
	reply_expect(w, &r, EINVAL, 0);
	req(w, FUSE_LOOKUP, CBDFS_ROOT_INO, NULL, 0, NULL, 0);
	reply_expect(w, &r, EINVAL, 0);
}

static void test_no_reply_requests(void **state)
{
	struct tf *w = *state;
	struct fuse_forget_in fo = {.nlookup = 1};
	struct fuse_interrupt_in ii = {.unique = 1};
	struct fuse_batch_forget_in bf = {.count = 0};
	struct reply r;

	req(w, FUSE_FORGET, CBDFS_INO(w->backend), &fo, sizeof(fo), NULL, 0);
	req(w, FUSE_INTERRUPT, 0, &ii, sizeof(ii), NULL, 0);
	req(w, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, 0);
	assert_false(reply_pending(w));
	req(w, FUSE_DESTROY, 0, NULL, 0, NULL, 0);
	reply_expect(w, &r, 0, 0);
}

/* ---- the namespace ---------------------------------------------------- */

static void test_lookup(void **state)
{
	struct tf *w = *state;
	struct fuse_entry_out *e;
	struct reply r;
	char name[32];

	snprintf(name, sizeof(name), "backend%u", w->backend);
	lookup(w, CBDFS_ROOT_INO, name);
	reply_expect(w, &r, 0, sizeof(*e));
	e = (void *)r.data;
	assert_int_equal(e->nodeid, CBDFS_INO(w->backend));
	assert_int_equal(e->attr.size, 64ULL << 20);
	assert_true(S_ISREG(e->attr.mode));

	lookup(w, CBDFS_ROOT_INO, CBDFS_BYNAME);
	reply_expect(w, &r, 0, sizeof(*e));
	assert_int_equal(e->nodeid, CBDFS_BYNAME_INO);
	assert_true(S_ISDIR(e->attr.mode));

	lookup(w, CBDFS_BYNAME_INO, "alpha");
	reply_expect(w, &r, 0, sizeof(*e));
	assert_int_equal(e->nodeid, CBDFS_LINK_INO(w->backend));
	assert_true(S_ISLNK(e->attr.mode));

	/* not there, not canonical, not in that directory */
	const char *missing[] = {"backend99", "backend01", "backend",
				 "alpha",     "..",	   ""};
	for (unsigned i = 0; i < ARRAY_SIZE(missing); i++) {
		lookup(w, CBDFS_ROOT_INO, missing[i]);
		reply_expect(w, &r, ENOENT, 0);
	}
	lookup(w, CBDFS_BYNAME_INO, "beta");
	reply_expect(w, &r, ENOENT, 0);
	lookup(w, CBDFS_INO(w->backend), "alpha");
	reply_expect(w, &r, ENOENT, 0);
}

static void test_getattr_and_readlink(void **state)
{
	struct tf *w = *state;
	struct fuse_getattr_in gi = {0};
	struct fuse_attr_out *a;
	struct reply r;
	char target[32];

	req(w, FUSE_GETATTR, CBDFS_ROOT_INO, &gi, sizeof(gi), NULL, 0);
	reply_expect(w, &r, 0, sizeof(*a));
	a = (void *)r.data;
	assert_true(S_ISDIR(a->attr.mode));
	assert_int_equal(a->attr.nlink, 3);
	assert_int_equal(a->attr.ino, CBDFS_ROOT_INO);

	req(w, FUSE_GETATTR, CBDFS_INO(w->backend + 1), &gi, sizeof(gi), NULL,
	    0);
	reply_expect(w, &r, ENOENT, 0);

	snprintf(target, sizeof(target), "../backend%u", w->backend);
	req(w, FUSE_READLINK, CBDFS_LINK_INO(w->backend), NULL, 0, NULL, 0);
	reply_expect(w, &r, 0, strlen(target));
	assert_memory_equal(r.data, target, strlen(target));
	req(w, FUSE_READLINK, CBDFS_ROOT_INO, NULL, 0, NULL, 0);
	reply_expect(w, &r, EINVAL, 0);
}

/* READDIR of @ino from offset 0 in pieces of @size: names joined by ' '. */
static void readdir_all(struct tf *w, uint64_t ino, uint32_t size, char *out,
			size_t outsize)
{
	struct fuse_open_in oi = {0};
	struct fuse_read_in ri = {.size = size};
	struct fuse_release_in rel = {0};
	struct reply r;
	ssize_t n;

	req(w, FUSE_OPENDIR, ino, &oi, sizeof(oi), NULL, 0);
	reply_expect(w, &r, 0, sizeof(struct fuse_open_out));
	ri.fh = rel.fh = ((struct fuse_open_out *)r.data)->fh;
	out[0] = '\0';
	for (;;) {
		size_t pos = 0, progress = 0;

		req(w, FUSE_READDIR, ino, &ri, sizeof(ri), NULL, 0);
		n = reply_get(w, &r);
		assert_true(n >= (ssize_t)sizeof(r.h));
		assert_int_equal(r.h.error, 0);
		n -= (ssize_t)sizeof(r.h);
		assert_true(n <= (ssize_t)size);
		if (!n)
			break;
		/* whole records only count; a cut one is asked for again */
		while (pos + FUSE_NAME_OFFSET <= (size_t)n) {
			struct fuse_dirent *de = (void *)(r.data + pos);
			size_t len = FUSE_DIRENT_SIZE(de);

			if (pos + len > (size_t)n)
				break;
			strncat(out, de->name, de->namelen);
			strncat(out, " ", outsize - strlen(out) - 1);
			ri.offset = de->off;
			pos += len;
			progress++;
		}
		assert_true(progress > 0);
	}
	req(w, FUSE_RELEASEDIR, ino, &rel, sizeof(rel), NULL, 0);
	reply_expect(w, &r, 0, 0);
}

static void test_readdir(void **state)
{
	struct tf *w = *state;
	char names[512], want[128];

	snprintf(want, sizeof(want), ". .. by-name backend%u ", w->backend);
	readdir_all(w, CBDFS_ROOT_INO, 4096, names, sizeof(names));
	assert_string_equal(names, want);
	/* pieces smaller than a record each: the same listing */
	readdir_all(w, CBDFS_ROOT_INO, 40, names, sizeof(names));
	assert_string_equal(names, want);
	readdir_all(w, CBDFS_BYNAME_INO, 4096, names, sizeof(names));
	assert_string_equal(names, ". .. alpha ");
}

static void test_open_of_what_is_not_a_file(void **state)
{
	struct tf *w = *state;
	struct fuse_open_in oi = {.flags = 2 /* O_RDWR */};
	struct reply r;

	req(w, FUSE_OPEN, CBDFS_ROOT_INO, &oi, sizeof(oi), NULL, 0);
	reply_expect(w, &r, EISDIR, 0);
	req(w, FUSE_OPEN, CBDFS_BYNAME_INO, &oi, sizeof(oi), NULL, 0);
	reply_expect(w, &r, EISDIR, 0);
	req(w, FUSE_OPEN, CBDFS_LINK_INO(w->backend), &oi, sizeof(oi), NULL, 0);
	reply_expect(w, &r, ELOOP, 0);
	req(w, FUSE_OPEN, 0x7fffffff, &oi, sizeof(oi), NULL, 0);
	reply_expect(w, &r, ENOENT, 0);
	req(w, FUSE_OPENDIR, CBDFS_INO(w->backend), &oi, sizeof(oi), NULL, 0);
	reply_expect(w, &r, ENOTDIR, 0);
}

static void test_statfs(void **state)
{
	struct tf *w = *state;
	struct fuse_statfs_out *s;
	struct reply r;

	req(w, FUSE_STATFS, CBDFS_ROOT_INO, NULL, 0, NULL, 0);
	reply_expect(w, &r, 0, sizeof(*s));
	s = (void *)r.data;
	assert_int_equal(s->st.bsize, 4096);
	assert_int_equal(s->st.files, 3); /* /, by-name/ and alpha */
	assert_true(s->st.blocks > 0);
}

/* ---- the session ------------------------------------------------------ */

static void *runner(void *arg)
{
	struct tf *w = arg;

	w->run_ret = cbdfs_session_run(&w->fs, w->sv[0], 2, w->mode);
	return NULL;
}

static void run_start(struct tf *w, enum cbdfs_uring_mode mode)
{
	w->mode = mode;
	assert_int_equal(pthread_create(&w->runner, NULL, runner, w), 0);
	w->running = true;
}

static int run_join(struct tf *w)
{
	pthread_join(w->runner, NULL);
	w->running = false;
	return w->run_ret;
}

static void send_init(struct tf *w, uint32_t major, uint32_t minor,
		      uint64_t flags)
{
	struct fuse_init_in in = {
		.major = major,
		.minor = minor,
		.max_readahead = 128 * 1024,
		.flags = (uint32_t)flags | FUSE_INIT_EXT,
		.flags2 = (uint32_t)(flags >> 32),
	};

	req_send(w, FUSE_INIT, 0, &in, sizeof(in));
}

static void test_session_init_and_serve(void **state)
{
	struct tf *w = *state;
	struct fuse_getattr_in gi = {0};
	struct fuse_init_out *o;
	struct reply r;
	uint64_t flags;

	run_start(w, CBDFS_URING_OFF);
	/* a newer kernel: we answer with the minor we implement */
	send_init(w, FUSE_KERNEL_VERSION, CBDFS_FUSE_MINOR + 3,
		  FUSE_ASYNC_READ | FUSE_MAX_PAGES | FUSE_OVER_IO_URING |
			  FUSE_POSIX_ACL);
	assert_int_equal(reply_get(w, &r), sizeof(r.h) + sizeof(*o));
	assert_int_equal(r.h.error, 0);
	o = (void *)r.data;
	flags = o->flags | (uint64_t)o->flags2 << 32;
	assert_int_equal(o->major, FUSE_KERNEL_VERSION);
	assert_int_equal(o->minor, CBDFS_FUSE_MINOR);
	assert_int_equal(o->max_write, CBDFS_MAX_IO);
	assert_int_equal(o->max_pages, CBDFS_MAX_IO / 4096);
	assert_int_equal(o->max_readahead, 128 * 1024);
	/* what we want of what was offered, nothing else */
	assert_true(flags & FUSE_ASYNC_READ);
	assert_true(flags & FUSE_MAX_PAGES);
	assert_false(flags & FUSE_OVER_IO_URING); /* io_uring=off */
	assert_false(flags & FUSE_POSIX_ACL);
	assert_false(flags & FUSE_ASYNC_DIO); /* not offered */

	/* the workers serve what comes next, in any order */
	for (int i = 0; i < 8; i++)
		req_send(w, FUSE_GETATTR, CBDFS_ROOT_INO, &gi, sizeof(gi));
	for (int i = 0; i < 8; i++) {
		assert_int_equal(reply_get(w, &r),
				 sizeof(r.h) + sizeof(struct fuse_attr_out));
		assert_int_equal(r.h.error, 0);
		assert_true(r.h.unique > w->unique - 8);
	}
	cbdfs_session_stop(&w->fs);
	assert_int_equal(run_join(w), 0);
}

static void test_session_old_kernel_is_refused(void **state)
{
	struct tf *w = *state;
	struct reply r;

	run_start(w, CBDFS_URING_OFF);
	send_init(w, FUSE_KERNEL_VERSION, CBDFS_FUSE_MINOR_MIN - 1, 0);
	assert_int_equal(reply_get(w, &r), sizeof(r.h));
	assert_int_equal(r.h.error, -EPROTO);
	assert_int_equal(run_join(w), -EPROTO);
}

static void test_session_wants_init_first(void **state)
{
	struct tf *w = *state;
	struct fuse_getattr_in gi = {0};

	run_start(w, CBDFS_URING_OFF);
	req_send(w, FUSE_GETATTR, CBDFS_ROOT_INO, &gi, sizeof(gi));
	assert_int_equal(run_join(w), -EPROTO);
	assert_false(reply_pending(w));
}

/* io_uring=on and a kernel that does not offer it: a clear refusal. */
static void test_session_uring_on_needs_the_kernel(void **state)
{
	struct tf *w = *state;

	run_start(w, CBDFS_URING_ON);
	if (cbdfs_uring_enabled())
		/* the module would; this INIT does not offer it */
		send_init(w, FUSE_KERNEL_VERSION, CBDFS_FUSE_MINOR,
			  FUSE_ASYNC_READ);
	assert_int_equal(run_join(w), -EOPNOTSUPP);
}

/* The device going away (unmount: ENODEV; here EOF) ends the session. */
static void test_session_ends_with_the_device(void **state)
{
	struct tf *w = *state;
	struct reply r;

	run_start(w, CBDFS_URING_OFF);
	send_init(w, FUSE_KERNEL_VERSION, CBDFS_FUSE_MINOR, FUSE_ASYNC_READ);
	assert_int_equal(reply_get(w, &r),
			 sizeof(r.h) + sizeof(struct fuse_init_out));
	shutdown(w->sv[1], SHUT_WR);
	assert_int_equal(run_join(w), 0);
	assert_true(cbdfs_session_exiting(&w->fs));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, tf_setup, tf_teardown)
	const struct CMUnitTest tests[] = {
		T(test_unknown_opcode_is_enosys),
		T(test_short_in_struct_is_einval),
		T(test_bad_header_is_dropped),
		T(test_lookup_needs_a_terminated_name),
		T(test_no_reply_requests),
		T(test_lookup),
		T(test_getattr_and_readlink),
		T(test_readdir),
		T(test_open_of_what_is_not_a_file),
		T(test_statfs),
		T(test_session_init_and_serve),
		T(test_session_old_kernel_is_refused),
		T(test_session_wants_init_first),
		T(test_session_uring_on_needs_the_kernel),
		T(test_session_ends_with_the_device),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
