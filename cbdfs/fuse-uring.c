/* SPDX-License-Identifier: MIT */
/*
 * FUSE over io_uring (Linux 6.14+, protocol 7.42): one queue per possible
 * CPU, as the kernel requires (a request goes to the queue of the CPU its
 * submitter runs on), each with its own ring and thread and a fixed set
 * of entries.  An entry is a header buffer and a payload buffer that the
 * kernel fills with a request; we answer in the same buffers and commit,
 * which also hands the entry back for the next request (one io_uring
 * submission per request: COMMIT_AND_FETCH).
 *
 * Threads: a queue's thread is the only one that touches its ring: it
 * takes the requests and runs them, and it submits every commit (the
 * kernel cancels an entry whose last command came from a thread that has
 * exited, so an engine reaper never submits one).  A reply from another
 * thread is written into its entry's buffers and queued on the queue's
 * pending list; an eventfd read by the ring wakes the queue's thread,
 * which commits all that is pending in one submission.  While answers
 * keep coming for what it submitted, the thread reaps them itself and
 * commits them without sleeping (its ring then also hands it new
 * requests); the reaper takes over what is left only once none came for
 * URING_POLL_NS.  The queues run
 * until cbdfs_uring_free(), after the blkdevs were released: requests
 * still held are answered; new ones during shutdown fail with EIO.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "barrier.h"
#include "cbdfs.h"
#include "log.h"
#include "util.h"

#define URING_DEPTH	 32 /* entries per queue */
#define URING_PARAM	 "/sys/module/fuse/parameters/enable_uring"
#define URING_PAYLOAD_SZ CBDFS_MAX_IO
/* How long a queue's thread polls for the completions of what it
 * submitted (a backend answers a 4 KiB request in a few µs) without
 * any coming before it leaves them to the reaper and waits on its ring. */
#define URING_POLL_NS 50000U
/* Idle seconds after which a queue gives back its payload pages. */
#define URING_TRIM_S 2
/* While polling, look for new requests every this many rounds. */
#define URING_POLL_ENTER 64

struct cbdfs_uring_ent {
	struct cbdfs_req req; /* first: what ops see (req.ent = us) */
	struct cbdfs_uring_queue *q;
	struct cbdfs_uring_req_header *hdr;
	char *payload;
	struct iovec iov[2]; /* REGISTER: read when the kernel issues it */
	struct cbdfs_uring_ent *next; /* on the pending list */
};

struct cbdfs_uring_queue {
	struct cbdfs *fs;
	unsigned qid;
	struct io_uring ring; /* the queue's thread only */
	bool ring_ok;
	int efd;	      /* eventfd: replies are pending */
	uint64_t ebuf;	      /* ... its counter, read by the ring */
	pthread_mutex_t lock; /* pending */
	struct cbdfs_uring_ent *pending;
	bool stop;     /* cbdfs_uring_free(): the thread returns */
	bool active;   /* running requests or polling (atomic): what
		      * cbdfs_uring_quiesce() waits out */
	sem_t started; /* the thread took its ring: start_ret is set */
	int start_ret;
	unsigned held;	/* entries with a request, not committed yet */
	bool used;	/* payloads touched since the last trim */
	unsigned polls; /* queue_poll_done() calls */
	pthread_t thr;
	bool thr_ok;
	struct cbdfs_uring_ent ents[URING_DEPTH];
};

struct cbdfs_uring {
	unsigned nq;
	struct cbdfs_uring_queue *q;
	void *mem; /* every entry's buffers, one mapping */
	size_t mem_size;
};

/* The queue whose thread this is, if any. */
static __thread struct cbdfs_uring_queue *tl_queue;

bool cbdfs_uring_enabled(void)
{
	char c = 'N';
	int fd = open(URING_PARAM, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (read(fd, &c, 1) != 1)
		c = 'N';
	close(fd);
	return c == 'Y' || c == '1';
}

/* The kernel's num_possible_cpus(): "0-N" or a list in sysfs. */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	unsigned a, b, n = 0;
	int c;

	if (!f)
		return (unsigned)sysconf(_SC_NPROCESSORS_CONF);
	for (;;) {
		if (fscanf(f, "%u", &a) != 1)
			break;
		b = a;
		c = fgetc(f);
		if (c == '-') {
			if (fscanf(f, "%u", &b) != 1)
				break;
			c = fgetc(f);
		}
		n += b - a + 1;
		if (c != ',')
			break;
	}
	fclose(f);
	return n ? n : 1;
}

/* Queue a uring command for @e (the queue's thread); 0 or -errno. */
static int ent_cmd(struct cbdfs_uring_ent *e, uint32_t cmd)
{
	struct cbdfs_uring_queue *q = e->q;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct cbdfs_uring_cmd_req *cr;

	if (!sqe)
		return -EAGAIN; /* never: one entry, one SQE at a time */
	memset(sqe, 0, 128);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->fs->sess.fd;
	sqe->cmd_op = cmd;
	sqe->user_data = (uintptr_t)e;
	cr = (struct cbdfs_uring_cmd_req *)sqe->cmd;
	cr->qid = (uint16_t)q->qid;
	if (cmd == CBDFS_URING_CMD_REGISTER) {
		e->iov[0] = (struct iovec){e->hdr, sizeof(*e->hdr)};
		e->iov[1] = (struct iovec){e->payload, URING_PAYLOAD_SZ};
		sqe->addr = (uintptr_t)e->iov;
		sqe->len = 2;
	} else {
		cr->commit_id = e->hdr->ring_ent_in_out.commit_id;
	}
	return 0;
}

static int queue_submit(struct cbdfs_uring_queue *q, unsigned wait)
{
	int ret;

	do
		ret = io_uring_submit_and_wait(&q->ring, wait);
	while (ret == -EINTR && !wait);
	return ret < 0 ? ret : 0;
}

/*
 * Every entry's payload holds up to max_write bytes and the kernel fills
 * them in turn, so after big requests on a queue all of them are
 * resident (32 MiB).  Once the queue has been idle for URING_TRIM_S with
 * no request held, give the pages back: nobody else writes a payload
 * then (replies only go into held entries; the kernel copies requests in
 * during this thread's own io_uring_enter).
 */
static void queue_trim(struct cbdfs_uring_queue *q)
{
	if (q->held || READ_ONCE(q->pending))
		return;
	for (unsigned i = 0; i < URING_DEPTH; i++)
		madvise(q->ents[i].payload, URING_PAYLOAD_SZ, MADV_DONTNEED);
	q->used = false;
}

/* Submit what is queued and wait for a completion (or for the trim). */
static int queue_wait(struct cbdfs_uring_queue *q)
{
	struct __kernel_timespec ts = {.tv_sec = URING_TRIM_S};
	struct io_uring_cqe *cqe;
	int ret;

	if (!q->used)
		return queue_submit(q, 1);
	ret = io_uring_submit_and_wait_timeout(&q->ring, &cqe, 1, &ts, NULL);
	if (ret == -ETIME) {
		queue_trim(q);
		return 0;
	}
	return ret < 0 ? ret : 0;
}

/* Ask the ring to complete a read of the eventfd when replies wait. */
static int queue_arm_eventfd(struct cbdfs_uring_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe)
		return -EAGAIN;
	io_uring_prep_read(sqe, q->efd, &q->ebuf, sizeof(q->ebuf), 0);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

/* The queue's thread: an SQE for every reply pending. */
static void queue_commit_pending(struct cbdfs_uring_queue *q)
{
	struct cbdfs_uring_ent *e, *next;

	pthread_mutex_lock(&q->lock);
	e = q->pending;
	q->pending = NULL;
	pthread_mutex_unlock(&q->lock);
	for (; e; e = next) {
		next = e->next;
		q->held--;
		/* never fails: one SQE per entry and the eventfd's fit */
		if (ent_cmd(e, CBDFS_URING_CMD_COMMIT_AND_FETCH))
			log_err("io_uring: queue %u: no SQE for a commit",
				q->qid);
	}
}

int cbdfs_uring_commit(struct cbdfs_req *r, int err, const struct iovec *iov,
		       int n)
{
	struct cbdfs_uring_ent *e = r->ent;
	struct cbdfs_uring_queue *q = e->q;
	struct fuse_out_header *oh = (void *)e->hdr->in_out;
	uint64_t one = 1;
	size_t len = 0;
	bool wake;

	for (int i = 0; i < n && !err; i++) {
		if (len + iov[i].iov_len > URING_PAYLOAD_SZ) {
			err = EIO; /* never: replies are at most max_read */
			break;
		}
		memcpy(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	memset(oh, 0, sizeof(*oh));
	oh->error = -err;
	oh->unique = r->unique;
	e->hdr->ring_ent_in_out.payload_sz = err ? 0 : (uint32_t)len;
	pthread_mutex_lock(&q->lock);
	wake = !q->pending;
	e->next = q->pending;
	q->pending = e;
	pthread_mutex_unlock(&q->lock);
	/* the queue's own thread commits before it waits again */
	if (wake && tl_queue != q && write(q->efd, &one, sizeof(one)) < 0)
		log_warn("io_uring: queue %u: eventfd: %m", q->qid);
	return 0;
}

/* A request arrived in @e: hand it to the operations. */
static void ent_request(struct cbdfs_uring_ent *e)
{
	const struct fuse_in_header *h = (const void *)e->hdr->in_out;
	uint32_t paylen = e->hdr->ring_ent_in_out.payload_sz;
	const struct cbdfs_op *op = cbdfs_op_find(h->opcode);

	memset(&e->req, 0, sizeof(e->req));
	e->req.fs = e->q->fs;
	e->req.ent = e;
	e->q->held++; /* until its commit */
	cbdfs_engine_held(e->q->held);
	e->q->used = true;
	if (paylen > URING_PAYLOAD_SZ)
		paylen = URING_PAYLOAD_SZ;
	if (cbdfs_session_exiting(e->q->fs)) {
		e->req.unique = h->unique;
		cbdfs_reply_err(&e->req, EIO); /* shutting down */
		return;
	}
	cbdfs_session_dispatch(&e->req, h, e->hdr->op_in,
			       op ? MIN(op->insize, CBDFS_URING_OP_IN_OUT_SZ) :
				    0,
			       e->payload, paylen);
}

/*
 * Polling ends when a reply is pending or the kernel sent more.  The
 * ring defers its task work (new requests among it) to our entering the
 * kernel: now and then, enter it to take what came.
 */
static bool queue_poll_done(void *arg)
{
	struct cbdfs_uring_queue *q = arg;

	if (READ_ONCE(q->pending) || io_uring_cq_ready(&q->ring))
		return true;
	if (++q->polls % URING_POLL_ENTER)
		return false;
	io_uring_get_events(&q->ring);
	return io_uring_cq_ready(&q->ring);
}

/* IORING_REGISTER_ENABLE_RINGS (Debian's liburing 2.3 declares
 * io_uring_enable_rings() but does not export it). */
static int ring_enable(struct io_uring *ring)
{
	if (syscall(__NR_io_uring_register, ring->ring_fd,
		    IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	return 0;
}

static void *queue_main(void *arg)
{
	struct cbdfs_uring_queue *q = arg;
	struct io_uring_cqe *cqe;
	bool polling = false; /* for requests still in flight */
	unsigned head, seen;
	cpu_set_t set;
	int ret;

	tl_queue = q;
	/* the ring's one submitter from now on; the entries' REGISTER */
	ret = ring_enable(&q->ring);
	if (!ret)
		ret = queue_submit(q, 0);
	q->start_ret = ret;
	sem_post(&q->started);
	if (ret)
		return NULL;
	cbdfs_engine_poll_enable(true);
	/* near the CPU whose requests we take (best effort) */
	CPU_ZERO(&set);
	CPU_SET(q->qid, &set);
	sched_setaffinity(0, sizeof(set), &set);
	while (!READ_ONCE(q->stop)) {
		queue_commit_pending(q);
		if (polling) {
			/* answers out, new requests in: no sleep */
			ret = io_uring_submit_and_get_events(&q->ring);
			ret = ret < 0 ? ret : 0;
		} else {
			cbdfs_engine_poll_end(); /* the reapers' now */
			ret = queue_wait(q);
		}
		/* pairs with cbdfs_uring_quiesce(): it sees us active, or
		 * we see the session exiting (ent_request) */
		WRITE_ONCE(q->active, true);
		smp_mb();
		if (ret && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			log_err("io_uring: queue %u: %s", q->qid,
				strerror(-ret));
			break;
		}
		seen = 0;
		io_uring_for_each_cqe(&q->ring, head, cqe)
		{
			struct cbdfs_uring_ent *e = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			seen++;
			if (!e) { /* the eventfd: replies are pending */
				queue_arm_eventfd(q);
				continue;
			}
			if (res == 0) {
				ent_request(e);
				continue;
			}
			if (res == -EINTR || res == -EAGAIN) {
				ent_cmd(e, CBDFS_URING_CMD_COMMIT_AND_FETCH);
				continue;
			}
			/* unmounted or aborted: the entry is gone */
			if (res != -ENOTCONN && res != -ECONNABORTED &&
			    res != -ECANCELED)
				log_warn("io_uring: queue %u: entry: %s",
					 q->qid, strerror(-res));
		}
		io_uring_cq_advance(&q->ring, seen);
		polling = cbdfs_engine_poll(URING_POLL_NS, queue_poll_done, q);
		if (!polling)
			smp_store_release(&q->active, false);
	}
	cbdfs_engine_poll_end();
	WRITE_ONCE(q->active, false);
	return NULL;
}

static int queue_setup(struct cbdfs_uring *u, struct cbdfs_uring_queue *q,
		       char **mem)
{
	/*
	 * One thread submits to it, and task work (the kernel copying a
	 * request into an entry) runs only when it enters the kernel for
	 * completions: so between two such calls nothing but that thread
	 * writes a payload, which queue_trim() relies on.
	 */
	struct io_uring_params p = {
		.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE |
			 IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
		.cq_entries = 2 * (URING_DEPTH + 1)};
	int ret;

	pthread_mutex_init(&q->lock, NULL);
	sem_init(&q->started, 0, 0);
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0)
		return -errno;
	/* the entries and the eventfd, each one SQE at most at any time */
	ret = io_uring_queue_init_params(URING_DEPTH + 1, &q->ring, &p);
	if (ret)
		return ret;
	q->ring_ok = true;
	for (unsigned i = 0; i < URING_DEPTH; i++) {
		struct cbdfs_uring_ent *e = &q->ents[i];

		e->q = q;
		e->hdr = (void *)*mem;
		*mem += 4096;
		e->payload = *mem;
		*mem += URING_PAYLOAD_SZ;
		ret = ent_cmd(e, CBDFS_URING_CMD_REGISTER);
		if (ret)
			return ret;
	}
	(void)u;
	return queue_arm_eventfd(q); /* all submitted by the queue's thread */
}

int cbdfs_uring_start(struct cbdfs *fs)
{
	struct cbdfs_uring *u = calloc(1, sizeof(*u));
	char *mem;
	int ret;

	if (!u)
		return -ENOMEM;
	fs->sess.ur = u;
	u->nq = possible_cpus();
	u->q = calloc(u->nq, sizeof(*u->q));
	u->mem_size = (size_t)u->nq * URING_DEPTH * (4096 + URING_PAYLOAD_SZ);
	/* untouched until used: the RSS grows with the requests seen */
	u->mem = mmap(NULL, u->mem_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!u->q || u->mem == MAP_FAILED) {
		u->mem = NULL;
		return -ENOMEM;
	}
	mem = u->mem;
	for (unsigned i = 0; i < u->nq; i++) {
		struct cbdfs_uring_queue *q = &u->q[i];

		q->fs = fs;
		q->qid = i;
		ret = queue_setup(u, q, &mem);
		if (ret) {
			log_err("io_uring: queue %u: %s", i, strerror(-ret));
			return ret;
		}
	}
	for (unsigned i = 0; i < u->nq; i++) {
		ret = -pthread_create(&u->q[i].thr, NULL, queue_main, &u->q[i]);
		if (ret)
			return ret;
		thread_name(u->q[i].thr, "fuse-uring%u", i);
		u->q[i].thr_ok = true;
		while (sem_wait(&u->q[i].started) && errno == EINTR)
			;
		if (u->q[i].start_ret) {
			log_err("io_uring: queue %u: %s", i,
				strerror(-u->q[i].start_ret));
			return u->q[i].start_ret;
		}
	}
	log_info("io_uring: %u queues of %u entries", u->nq, URING_DEPTH);
	return 0;
}

void cbdfs_uring_quiesce(struct cbdfs *fs)
{
	struct cbdfs_uring *u = fs->sess.ur;

	smp_mb(); /* the session's exiting before our look at active */
	for (unsigned i = 0; u && i < u->nq; i++)
		while (smp_load_acquire(&u->q[i].active))
			cbdt_sleep_ms(1);
}

void cbdfs_uring_free(struct cbdfs *fs)
{
	struct cbdfs_uring *u = fs->sess.ur;

	if (!u)
		return;
	for (unsigned i = 0; u->q && i < u->nq; i++) {
		struct cbdfs_uring_queue *q = &u->q[i];

		if (q->thr_ok) {
			WRITE_ONCE(q->stop, true);
			cbdfs_thread_stop(q->thr);
		}
		/* cancels the entries: the kernel fails what they hold */
		if (q->ring_ok)
			io_uring_queue_exit(&q->ring);
		if (q->efd > 0)
			close(q->efd);
		pthread_mutex_destroy(&q->lock);
		sem_destroy(&q->started);
	}
	if (u->mem)
		munmap(u->mem, u->mem_size);
	free(u->q);
	free(u);
	fs->sess.ur = NULL;
}
