/* SPDX-License-Identifier: MIT */
/*
 * The FUSE session, spoken by cbdfs itself on the /dev/fuse descriptor
 * that libfuse mounted: INIT (with the flags we want, io_uring among
 * them), requests handed to the operations of ops.c, and replies: over
 * io_uring (fuse-uring.c), or writev(2) for the requests that the
 * /dev/fuse workers read (fuse-dev.c).  With io_uring one worker still
 * reads what the kernel never sends over a ring: FORGET, INTERRUPT, and
 * requests queued before the ring was ready.
 *
 * Threads: the main thread negotiates INIT, starts the workers and waits
 * for a stop (a signal, an unmount, cbdfs_session_stop()); replies may be
 * sent from any thread (workers, engine reapers), each with one write.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "barrier.h"
#include "cbdfs.h"
#include "log.h"
#include "util.h"

#define REPLY_IOV_MAX 8

static struct cbdfs_session *signal_session; /* for the signal handler */
static __thread unsigned tl_replies;	     /* sent by this thread */

unsigned cbdfs_session_replies(void)
{
	return tl_replies;
}

bool cbdfs_session_exiting(const struct cbdfs *fs)
{
	return READ_ONCE(fs->sess.exiting);
}

/* Async-signal-safe. */
void cbdfs_session_stop(struct cbdfs *fs)
{
	WRITE_ONCE(fs->sess.exiting, true);
	sem_post(&fs->sess.stop);
}

static void on_stop_signal(int sig)
{
	(void)sig;
	if (signal_session) {
		WRITE_ONCE(signal_session->exiting, true);
		sem_post(&signal_session->stop);
	}
}

/* SIGUSR1 only interrupts a blocked read(2) or io_uring wait. */
static void on_wake_signal(int sig)
{
	(void)sig;
}

static int signals_install(struct cbdfs_session *s)
{
	struct sigaction stop = {.sa_handler = on_stop_signal};
	struct sigaction wake = {.sa_handler = on_wake_signal};
	struct sigaction ign = {.sa_handler = SIG_IGN};

	signal_session = s;
	/* no SA_RESTART: a worker must see that it is to stop */
	sigemptyset(&stop.sa_mask);
	sigemptyset(&wake.sa_mask);
	if (sigaction(SIGINT, &stop, NULL) || sigaction(SIGTERM, &stop, NULL) ||
	    sigaction(SIGHUP, &stop, NULL) || sigaction(SIGUSR1, &wake, NULL) ||
	    sigaction(SIGPIPE, &ign, NULL))
		return -errno;
	return 0;
}

static void signals_remove(void)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	sigaction(SIGINT, &dfl, NULL);
	sigaction(SIGTERM, &dfl, NULL);
	sigaction(SIGHUP, &dfl, NULL);
	signal_session = NULL;
}

/* ---- replies ---------------------------------------------------------- */

static int reply_dev(struct cbdfs_req *r, int err, const struct iovec *iov,
		     int n)
{
	struct cbdfs_session *s = &r->fs->sess;
	struct iovec v[REPLY_IOV_MAX + 1];
	struct fuse_out_header oh = {.error = -err, .unique = r->unique};
	size_t len = sizeof(oh);
	ssize_t w;

	v[0] = (struct iovec){.iov_base = &oh, .iov_len = sizeof(oh)};
	for (int i = 0; i < n && !err; i++) {
		v[i + 1] = iov[i];
		len += iov[i].iov_len;
	}
	oh.len = (uint32_t)len;
	w = writev(s->fd, v, err ? 1 : n + 1);
	tl_replies++;
	if (w < 0) {
		/* ENOENT: the request was interrupted and is gone */
		if (errno != ENOENT && !cbdfs_session_exiting(r->fs))
			log_warn("reply to %s: %m", cbdfs_op_name(r->opcode));
		return -errno;
	}
	return 0;
}

int cbdfs_reply(struct cbdfs_req *r, int err, const struct iovec *iov, int n)
{
	int ret;

	if (n > REPLY_IOV_MAX || err < 0 || err >= 512)
		err = EIO;
	if (r->ent)
		return cbdfs_uring_commit(r, err, iov, n);
	/* before the reply: the next request may come before writev returns,
	 * and must not count this one (QD1 decisions, fuse-dev.c) */
	atomic_sub_return(&r->fs->sess.held, 1);
	ret = reply_dev(r, err, iov, n);
	free(r);
	return ret;
}

int cbdfs_reply_buf(struct cbdfs_req *r, const void *buf, size_t len)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = len};

	return cbdfs_reply(r, 0, &v, len ? 1 : 0);
}

void cbdfs_reply_none(struct cbdfs_req *r)
{
	if (!r->ent) {
		atomic_sub_return(&r->fs->sess.held, 1);
		free(r);
	}
	/* an entry of a ring is always answered: ops never pass here */
}

/* ---- requests --------------------------------------------------------- */

void cbdfs_session_dispatch(struct cbdfs_req *r, const struct fuse_in_header *h,
			    const void *arg, size_t arglen, const void *payload,
			    size_t paylen)
{
	const struct cbdfs_op *op = cbdfs_op_find(h->opcode);
	struct cbdfs_in in = {
		.nodeid = h->nodeid,
		.uid = h->uid,
		.arg = arg,
		.payload = payload,
		.paylen = paylen,
	};

	r->unique = h->unique;
	r->opcode = h->opcode;
	if (!op) {
		log_dbg("unique %llu: opcode %u: not implemented",
			(unsigned long long)h->unique, h->opcode);
		cbdfs_reply_err(r, ENOSYS);
		return;
	}
	if (arglen < op->insize) {
		log_warn("%s: request of %zu bytes, %u expected", op->name,
			 arglen, op->insize);
		if (op->noreply)
			cbdfs_reply_none(r);
		else
			cbdfs_reply_err(r, EINVAL);
		return;
	}
	log_dbg("unique %llu: %s nodeid %llu", (unsigned long long)h->unique,
		op->name, (unsigned long long)h->nodeid);
	op->fn(r, &in);
}

void cbdfs_session_request(struct cbdfs_session *s, char *buf, size_t n)
{
	const struct fuse_in_header *h = (const void *)buf;
	const struct cbdfs_op *op;
	struct cbdfs_req *r;
	size_t arglen, insize;
	unsigned held;

	if (n < sizeof(*h) || h->len != n) {
		log_warn("/dev/fuse: a request of %zu bytes says %u", n,
			 n >= sizeof(*h) ? h->len : 0);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		struct cbdfs_req tmp = {.fs = s->fs, .unique = h->unique};

		reply_dev(&tmp, ENOMEM, NULL, 0);
		return;
	}
	r->fs = s->fs;
	/* Poll for its completion only if it is the one request we hold:
	 * at depth, workers that spin take the cores that the others (and
	 * the backend) need, and the reapers answer in batches anyway. */
	held = atomic_add_release(&s->held, 1);
	cbdfs_engine_poll_enable(held == 1);
	cbdfs_engine_held(held);
	cbdfs_dev_took(h->opcode, held);
	op = cbdfs_op_find(h->opcode);
	arglen = n - sizeof(*h);
	insize = op ? MIN(op->insize, arglen) : 0;
	cbdfs_session_dispatch(r, h, buf + sizeof(*h), arglen,
			       buf + sizeof(*h) + insize, arglen - insize);
}

/* ---- INIT ------------------------------------------------------------- */

/* Flags we take when the kernel offers them. */
#define INIT_WANT                                                              \
	(FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ASYNC_DIO | FUSE_MAX_PAGES | \
	 FUSE_INIT_EXT)

static int init_reply(struct cbdfs_session *s, const struct fuse_in_header *h,
		      const struct fuse_init_in *in, bool *uring)
{
	uint64_t offered = in->flags, want = INIT_WANT;
	struct fuse_init_out out = {0};
	struct cbdfs_req r = {.fs = s->fs, .unique = h->unique};
	struct iovec v = {.iov_base = &out, .iov_len = sizeof(out)};

	if (in->major != FUSE_KERNEL_VERSION ||
	    in->minor < CBDFS_FUSE_MINOR_MIN) {
		log_err("FUSE protocol %u.%u: cbdfs needs 7.%u or newer",
			in->major, in->minor, CBDFS_FUSE_MINOR_MIN);
		reply_dev(&r, EPROTO, NULL, 0);
		return -EPROTO;
	}
	if (offered & FUSE_INIT_EXT)
		offered |= (uint64_t)in->flags2 << 32;
	if (*uring)
		want |= FUSE_OVER_IO_URING;
	want &= offered;
	*uring = want & FUSE_OVER_IO_URING;
	s->minor = MIN(in->minor, (uint32_t)CBDFS_FUSE_MINOR);

	out.major = FUSE_KERNEL_VERSION;
	out.minor = s->minor;
	out.max_readahead = in->max_readahead;
	out.flags = (uint32_t)want;
	out.flags2 = (uint32_t)(want >> 32);
	/* loop's queue depth must reach us: async DIO, many in background */
	out.max_background = 256;
	out.congestion_threshold = 192;
	out.max_write = CBDFS_MAX_IO;
	out.time_gran = 1;
	out.max_pages = CBDFS_MAX_IO / 4096;
	log_dbg("INIT: kernel %u.%u, using 7.%u, flags 0x%llx of 0x%llx%s",
		in->major, in->minor, s->minor, (unsigned long long)want,
		(unsigned long long)offered, *uring ? ", io_uring" : "");
	return reply_dev(&r, 0, &v, 1);
}

/*
 * Read until the kernel's INIT and answer it; @uring in: we want io_uring,
 * out: the kernel agreed.
 */
static int init_negotiate(struct cbdfs_session *s, bool *uring)
{
	char *buf = malloc(CBDFS_DEV_BUF_SIZE);
	const struct fuse_in_header *h = (const void *)buf;
	ssize_t n;
	int ret;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		n = read(s->fd, buf, CBDFS_DEV_BUF_SIZE);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			if (cbdfs_session_exiting(s->fs)) {
				ret = -EINTR;
				break;
			}
			continue;
		}
		if (n < 0) {
			ret = -errno;
			log_err("/dev/fuse: read: %m");
			break;
		}
		if ((size_t)n < sizeof(*h) + sizeof(struct fuse_init_in) ||
		    h->opcode != FUSE_INIT) {
			ret = -EPROTO;
			log_err("/dev/fuse: expected INIT, got opcode %u",
				(size_t)n >= sizeof(*h) ? h->opcode : 0);
			break;
		}
		ret = init_reply(s, h, (const void *)(buf + sizeof(*h)), uring);
		break;
	}
	free(buf);
	return ret;
}

/* ---- the session ------------------------------------------------------ */

void cbdfs_thread_stop(pthread_t t)
{
	struct timespec ts;

	/* a signal just before a blocking call is missed: repeat it */
	for (;;) {
		pthread_kill(t, SIGUSR1);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(t, NULL, &ts) == 0)
			return;
	}
}

int cbdfs_session_run(struct cbdfs *fs, int fd, unsigned threads,
		      enum cbdfs_uring_mode mode)
{
	struct cbdfs_session *s = &fs->sess;
	bool uring = mode != CBDFS_URING_OFF;
	int ret;

	s->fd = fd;
	if (uring && !cbdfs_uring_enabled()) {
		if (mode == CBDFS_URING_ON) {
			log_err("io_uring=on: the kernel does not offer FUSE over io_uring (as root: echo Y > /sys/module/fuse/parameters/enable_uring)");
			ret = -EOPNOTSUPP;
			return ret;
		}
		uring = false;
	}
	ret = init_negotiate(s, &uring);
	if (ret)
		return ret;
	if (!uring && mode == CBDFS_URING_ON) {
		log_err("io_uring=on: the kernel did not agree to FUSE over io_uring");
		ret = -EOPNOTSUPP;
		return ret;
	}
	if (uring) {
		ret = cbdfs_uring_start(fs);
		if (ret && mode == CBDFS_URING_ON)
			return ret;
		if (ret)
			log_warn("io_uring: %s: serving /dev/fuse instead",
				 strerror(-ret));
		threads = ret ? threads : 1; /* FORGET, INTERRUPT */
	}
	s->uring = uring && !ret;
	ret = cbdfs_dev_start(s, threads);
	if (ret)
		cbdfs_session_stop(fs);
	log_dbg("session: %u /dev/fuse workers%s", threads,
		s->uring ? ", io_uring queues" : "");
	while (sem_wait(&s->stop) && errno == EINTR)
		;
	WRITE_ONCE(s->exiting, true);
	cbdfs_dev_stop(s);
	if (s->uring)
		cbdfs_uring_quiesce(fs);
	return ret;
}

/* After the blkdevs are released: nothing may answer any more. */
void cbdfs_session_end(struct cbdfs *fs)
{
	if (fs->sess.uring)
		cbdfs_uring_free(fs);
	fs->sess.uring = false;
}

/* Before the mount: from then on a signal stops the session. */
int cbdfs_session_init(struct cbdfs *fs)
{
	memset(&fs->sess, 0, sizeof(fs->sess));
	fs->sess.fs = fs;
	fs->sess.fd = -1;
	if (sem_init(&fs->sess.stop, 0, 0))
		return -errno;
	return signals_install(&fs->sess);
}

void cbdfs_session_destroy(struct cbdfs *fs)
{
	signals_remove();
	sem_destroy(&fs->sess.stop);
}
