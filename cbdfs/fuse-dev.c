/* SPDX-License-Identifier: MIT */
/*
 * The classic FUSE transport: worker threads that read(2) requests from
 * /dev/fuse (session.c answers them with writev(2)).  Left to itself the
 * kernel hands each request to the worker that has waited longest in
 * read(2): at queue depth 1 a cold thread, woken on whichever CPU, for
 * every request, a wake-up that costs more than the request on a VM
 * (docs/performance.md).  So while we hold no request, one worker reads
 * and the others park, the last to park on top of a stack: the worker
 * that answered a request alone reads the next one itself.  With requests
 * in flight every worker that comes back reads at once, as many at a time
 * as there are, and a parked one is woken when a request was read while
 * others are held (the load grows), when a request that may block (any
 * but READ and WRITE) leaves nobody reading, when a worker polling for
 * its completion sees another request waiting with nobody to read it,
 * and before a worker blocks for room in a ring.
 *
 * Threads: the workers.  readers and the stack are under dev->lock; a
 * parked worker's semaphore is posted once per pop, by whoever counted it
 * in readers for it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <unistd.h>

#include "barrier.h"
#include "cbdfs.h"
#include "log.h"
#include "util.h"

/* How long a worker polls for the completion of what it just submitted
 * (see URING_POLL_NS) before it reads the next request. */
#define DEV_POLL_NS 50000U
/* While polling with nobody reading, look for a request every this
 * many rounds. */
#define DEV_POLL_PEEK 64U

struct dev_worker {
	struct cbdfs_session *s;
	pthread_t thr;
	bool thr_ok;
	sem_t wake; /* popped: counted in readers, read */
};

struct cbdfs_dev {
	pthread_mutex_t lock;
	unsigned readers; /* workers in read(2), or about to be */
	unsigned nparked;
	struct dev_worker **parked; /* [nparked - 1]: parked last */
	unsigned n;
	struct dev_worker *w;
};

static __thread struct dev_worker *tl_worker;
static __thread bool tl_reading; /* counted in readers */
static __thread unsigned tl_peeks;

/* Under lock: the worker that parked last, counted as a reader. */
static struct dev_worker *dev_unpark(struct cbdfs_dev *d)
{
	if (!d->nparked)
		return NULL;
	d->readers++;
	return d->parked[--d->nparked];
}

/* Wake a parked worker if nobody reads. */
static void dev_fill(struct cbdfs_dev *d)
{
	struct dev_worker *next = NULL;

	pthread_mutex_lock(&d->lock);
	if (!d->readers)
		next = dev_unpark(d);
	pthread_mutex_unlock(&d->lock);
	if (next)
		sem_post(&next->wake);
}

/*
 * Become a reader: at once while requests are held (ours may be among
 * them) or nobody reads, else park until woken; false if the session is
 * exiting meanwhile.
 */
static bool dev_reader_enter(struct dev_worker *w)
{
	struct cbdfs_dev *d = w->s->dev;
	bool park;

	pthread_mutex_lock(&d->lock);
	park = d->readers && !smp_load_acquire(&w->s->held);
	if (park)
		d->parked[d->nparked++] = w;
	else
		d->readers++;
	pthread_mutex_unlock(&d->lock);
	if (!park)
		return true;
	while (sem_wait(&w->wake))
		if (cbdfs_session_exiting(w->s->fs))
			goto err_unpark;
	return true;

err_unpark:
	/* stopping: off the stack, unless popped meanwhile */
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nparked; i++)
		if (d->parked[i] == w) {
			d->parked[i] = d->parked[--d->nparked];
			break;
		}
	pthread_mutex_unlock(&d->lock);
	return false;
}

void cbdfs_dev_took(uint32_t opcode, unsigned held)
{
	struct cbdfs_dev *d;
	struct dev_worker *next = NULL;

	if (!tl_worker || !tl_reading)
		return;
	d = tl_worker->s->dev;
	tl_reading = false;
	tl_peeks = 0;
	pthread_mutex_lock(&d->lock);
	d->readers--;
	if (!d->readers &&
	    (held > 1 || (opcode != FUSE_READ && opcode != FUSE_WRITE)))
		next = dev_unpark(d);
	pthread_mutex_unlock(&d->lock);
	if (next)
		sem_post(&next->wake);
}

void cbdfs_dev_may_block(void)
{
	if (tl_worker)
		dev_fill(tl_worker->s->dev);
}

/*
 * Polling ends with the first reply this worker sent, or once nothing is
 * held (a reaper answered ours): then no request can have come at QD1,
 * and we read the next one.  One that came meanwhile, with nobody
 * reading, gets a reader.
 */
static bool dev_poll_done(void *arg)
{
	struct cbdfs_dev *d = tl_worker->s->dev;
	struct pollfd p;

	if (cbdfs_session_replies() != *(unsigned *)arg ||
	    !smp_load_acquire(&tl_worker->s->held))
		return true;
	if (++tl_peeks % DEV_POLL_PEEK || READ_ONCE(d->readers) ||
	    !READ_ONCE(d->nparked))
		return false;
	p = (struct pollfd){.fd = tl_worker->s->fd, .events = POLLIN};
	if (poll(&p, 1, 0) > 0)
		dev_fill(d);
	return false;
}

static void *dev_worker_main(void *arg)
{
	struct dev_worker *w = arg;
	struct cbdfs_session *s = w->s;
	char *buf = malloc(CBDFS_DEV_BUF_SIZE);
	unsigned replies;
	ssize_t n;

	if (!buf) {
		log_err("FUSE worker: out of memory");
		cbdfs_session_stop(s->fs);
		return NULL;
	}
	tl_worker = w;
	while (!cbdfs_session_exiting(s->fs)) {
		if (!tl_reading) {
			if (!dev_reader_enter(w))
				break;
			tl_reading = true;
		}
		n = read(s->fd, buf, CBDFS_DEV_BUF_SIZE);
		if (n < 0 &&
		    (errno == EINTR || errno == EAGAIN || errno == ENOENT))
			continue; /* ENOENT: interrupted meanwhile */
		if (n <= 0) {
			/* ENODEV: unmounted; 0 (not from /dev/fuse): gone */
			if (n < 0 && errno != ENODEV)
				log_err("/dev/fuse: read: %m");
			cbdfs_session_stop(s->fs);
			break;
		}
		replies = cbdfs_session_replies();
		cbdfs_session_request(s, buf, (size_t)n); /* cbdfs_dev_took */
		cbdfs_engine_poll(DEV_POLL_NS, dev_poll_done, &replies);
		cbdfs_engine_poll_end(); /* read(2) may sleep */
	}
	free(buf);
	return NULL;
}

int cbdfs_dev_start(struct cbdfs_session *s, unsigned threads)
{
	struct cbdfs_dev *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	s->dev = d;
	pthread_mutex_init(&d->lock, NULL);
	d->w = calloc(threads, sizeof(*d->w));
	d->parked = calloc(threads, sizeof(*d->parked));
	if (!d->w || !d->parked)
		return -ENOMEM;
	for (d->n = 0; d->n < threads; d->n++) {
		struct dev_worker *w = &d->w[d->n];

		w->s = s;
		sem_init(&w->wake, 0, 0);
		ret = -pthread_create(&w->thr, NULL, dev_worker_main, w);
		if (ret) {
			sem_destroy(&w->wake);
			return ret;
		}
		w->thr_ok = true;
		thread_name(w->thr, "fuse-dev%u", d->n);
	}
	return 0;
}

void cbdfs_dev_stop(struct cbdfs_session *s)
{
	struct cbdfs_dev *d = s->dev;

	if (!d)
		return;
	/* the session is exiting: a parked worker leaves at its signal */
	for (unsigned i = 0; i < d->n; i++)
		if (d->w[i].thr_ok)
			cbdfs_thread_stop(d->w[i].thr);
	for (unsigned i = 0; i < d->n; i++)
		sem_destroy(&d->w[i].wake);
	pthread_mutex_destroy(&d->lock);
	free(d->parked);
	free(d->w);
	free(d);
	s->dev = NULL;
}
