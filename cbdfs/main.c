/* SPDX-License-Identifier: MIT */
/*
 * cbdfs: command line, checks before anything is written or mounted,
 * host registration, mount, the FUSE session (session.c); teardown.
 * libfuse parses the options and mounts; the protocol is ours.
 *
 * Concurrency: main() runs alone until the heartbeat thread and the FUSE
 * session start; after the session ends it tears down what they used.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "cbdfs.h"
#include "cli.h"
#include "log.h"
#include "util.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

/* -o values as fuse_opt_parse leaves them: strings, checked afterwards. */
struct cbdfs_optstr {
	char *transport;
	char *hostname;
	char *queues;
	char *timeout;
	char *chunk;
	char *io_uring;
	int ro;
	int max_threads; /* -o max_threads= given (libfuse parses it) */
	char *pos[3];	 /* the arguments that are not options */
	unsigned npos;
};

enum {
	KEY_RO,
	KEY_MAX_THREADS
};

/*
 * FUSE worker threads unless -o max_threads= says otherwise (libfuse's
 * default is 10).  Workers only turn requests into ring entries; on 2
 * cores 4 of them gave 10-40% more 4k IOPS at QD32 than 10 (fewer threads
 * contending for /dev/fuse and the CPU), and no loss at 1 MiB.
 */
#define CBDFS_MAX_THREADS 4U

#define CBDFS_OPT(t, f)                                \
	{                                              \
		t, offsetof(struct cbdfs_optstr, f), 0 \
	}
static const struct fuse_opt cbdfs_opt_spec[] = {
	CBDFS_OPT("transport=%s", transport),
	CBDFS_OPT("hostname=%s", hostname),
	CBDFS_OPT("queues=%s", queues),
	CBDFS_OPT("timeout=%s", timeout),
	CBDFS_OPT("chunk=%s", chunk),
	CBDFS_OPT("io_uring=%s", io_uring),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("max_threads=", KEY_MAX_THREADS),
	FUSE_OPT_END};

#define EXIT_USAGE CLI_EXIT_USAGE

static void usage(void)
{
	printf("usage: cbdfs [SOURCE] MOUNTPOINT [-o transport=PATH][,hostname=NAME]\n"
	       "             [,queues=N][,timeout=SEC][,chunk=SIZE][,io_uring=MODE][,ro]\n"
	       "             [FUSE options]\n"
	       "       cbdfs --help | --version\n\n"
	       "Every backend in the cbd transport appears as MOUNTPOINT/backendN;\n"
	       "attach one with losetup (--direct-io=on recommended).  SOURCE, when\n"
	       "given, is the transport, as mount -t fuse.cbdfs and /etc/fstab pass\n"
	       "it; generic mount options (defaults, _netdev, nofail, noauto,\n"
	       "x-systemd.*, ...) are ignored.\n\n"
	       "cbdfs options:\n"
	       "    -o transport=PATH      the transport: /dev/daxX.Y or a file\n"
	       "                           (required unless SOURCE names it)\n"
	       "    -o hostname=NAME       host name registered in the transport\n"
	       "                           (default: the system host name)\n"
	       "    -o queues=N            channels per opened backend, 1-%u\n"
	       "                           (default: min(backend handlers, CPUs))\n"
	       "    -o timeout=SEC         fail I/O with EIO once the backend has not\n"
	       "                           answered for SEC seconds (default: wait)\n"
	       "    -o chunk=SIZE          split reads and writes into channel requests\n"
	       "                           of at most SIZE (4K-1M, default 1M)\n"
	       "    -o io_uring=MODE       how the kernel's requests come: auto (over\n"
	       "                           io_uring when the kernel offers it), on (or\n"
	       "                           fail), off (/dev/fuse); default auto, or\n"
	       "                           $CBDFS_IO_URING\n"
	       "    -o ro                  open every backend read-only\n\n"
	       "FUSE options:\n"
	       "    -f                     foreground (log to stderr)\n"
	       "    -d, -o debug           foreground, with a debug line per request\n"
	       "    -s                     one /dev/fuse worker thread\n"
	       "    -o max_threads=N       /dev/fuse worker threads (default %u; with\n"
	       "                           io_uring one thread per CPU queue instead)\n"
	       "    -o allow_other         let users other than the mounting one in\n"
	       "    -o allow_root          let root in, too\n"
	       "    -o auto_unmount        unmount when cbdfs dies\n"
	       "    -o MOUNTFLAG           rw, nosuid, nodev, noexec, noatime, ...\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          the versions of cbdfs and libfuse\n",
	       CBDT_QUEUES_MAX, CBDFS_MAX_THREADS);
}

/* Mount options that mean something to mount(8), fstab or systemd but
 * not to FUSE: mount.fuse3 may pass them on; they are dropped. */
static bool opt_generic(const char *arg)
{
	static const char *const plain[] = {
		"defaults", "_netdev", "nofail", "auto",  "noauto",	 "user",
		"nouser",   "users",   "owner",	 "group", "nosymfollow",
	};

	if (!strncmp(arg, "x-", 2) || !strncmp(arg, "comment=", 8))
		return true;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (!strcmp(arg, plain[i]))
			return true;
	return false;
}

/* What fuse_parse_cmdline() takes besides -o (libfuse 3.14). */
static bool opt_cmdline(const char *arg)
{
	static const char *const known[] = {
		"-h", "--help", "-V", "--version", "-d", "-f", "-s",
	};

	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (!strcmp(arg, known[i]))
			return true;
	return false;
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct cbdfs_optstr *o = data;

	switch (key) {
	case KEY_RO:
		o->ro = 1;
		return 1; /* keep it: "ro" also makes the mount read-only */
	case KEY_MAX_THREADS:
		o->max_threads = 1;
		return 1; /* libfuse parses it */
	case FUSE_OPT_KEY_OPT:
		/* -o OPT comes without a dash; a dash is one of libfuse's
		 * command-line options or nobody's */
		if (arg[0] == '-' && !opt_cmdline(arg)) {
			cli_usage_msg("unknown option %s", arg);
			return -1;
		}
		return opt_generic(arg) ? 0 : 1;
	case FUSE_OPT_KEY_NONOPT:
		/* [SOURCE] MOUNTPOINT: sorted out once all are seen */
		if (o->npos < sizeof(o->pos) / sizeof(o->pos[0]))
			o->pos[o->npos] = strdup(arg);
		o->npos++;
		return 0;
	default:
		return 1;
	}
}

/*
 * cbdfs [SOURCE] MOUNTPOINT: hand the mount point back to libfuse and take
 * SOURCE as the transport (it must agree with transport=).  0, -ENOMEM, or
 * EXIT_USAGE with the reason logged.
 */
static int positional_sort(struct cbdfs_optstr *o, struct fuse_args *args)
{
	const char *mnt;

	if (o->npos > 2) {
		cli_usage_msg(
			"too many arguments: expected [SOURCE] MOUNTPOINT");
		return EXIT_USAGE;
	}
	if (o->npos == 0)
		return 0; /* reported once --help and --version are ruled out */
	mnt = o->pos[o->npos - 1];
	if (o->npos == 2) {
		if (!o->pos[0])
			return -ENOMEM;
		if (o->transport && strcmp(o->transport, o->pos[0])) {
			cli_usage_msg("SOURCE %s and -o transport=%s disagree",
				      o->pos[0], o->transport);
			return EXIT_USAGE;
		}
		if (!o->transport && !(o->transport = strdup(o->pos[0])))
			return -ENOMEM;
	}
	if (!mnt || fuse_opt_add_arg(args, mnt))
		return -ENOMEM;
	return 0;
}

/*
 * libfuse's messages through our logger, "cbdfs: ..." like ours.  libfuse
 * builds some lines from several calls: collect up to the newline.
 */
static void fuse_log_cb(enum fuse_log_level level, const char *fmt, va_list ap)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char line[512];
	static size_t len;
	const char *p = line;

	if (level > FUSE_LOG_NOTICE) {
		vfprintf(stderr, fmt, ap); /* -d protocol trace */
		return;
	}
	pthread_mutex_lock(&lock);
	vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	len = strlen(line);
	if (len && line[len - 1] != '\n' && len < sizeof(line) - 1) {
		pthread_mutex_unlock(&lock);
		return;
	}
	while (len && line[len - 1] == '\n')
		line[--len] = '\0';
	if (strncmp(p, "fuse: ", 6) == 0)
		p += 6;
	log_err("%s", p);
	len = 0;
	line[0] = '\0';
	pthread_mutex_unlock(&lock);
}

static int cfg_check(const struct cbdfs_optstr *o, struct cbdfs_cfg *cfg)
{
	const char *mode;
	char host[256];
	uint64_t v;

	if (!o->transport || !*o->transport) {
		cli_usage_msg("missing -o transport=PATH");
		return -EINVAL;
	}
	cfg->transport = o->transport;
	if (o->queues) {
		if (parse_uint(o->queues, 1, CBDT_QUEUES_MAX, &v)) {
			cli_usage_msg(
				"queues=%s: expected a number from 1 to %u",
				o->queues, CBDT_QUEUES_MAX);
			return -EINVAL;
		}
		cfg->queues = (unsigned)v;
	}
	if (o->timeout) {
		if (parse_uint(o->timeout, 1, 86400, &v)) {
			cli_usage_msg(
				"timeout=%s: expected seconds from 1 to 86400",
				o->timeout);
			return -EINVAL;
		}
		cfg->timeout_s = (unsigned)v;
	}
	if (o->chunk) {
		if (parse_size(o->chunk, &v) || v < CBDT_DATA_UNIT ||
		    v > CBDFS_MAX_IO || v % CBDT_DATA_UNIT) {
			cli_usage_msg(
				"chunk=%s: expected a multiple of 4K from 4K to 1M",
				o->chunk);
			return -EINVAL;
		}
		cfg->chunk = (uint32_t)v;
	}
	/* the environment gives the default, so that a test suite can run
	 * every mount in either mode */
	mode = o->io_uring ? o->io_uring : getenv("CBDFS_IO_URING");
	if (!mode || !*mode || !strcmp(mode, "auto")) {
		cfg->uring = CBDFS_URING_AUTO;
	} else if (!strcmp(mode, "on")) {
		cfg->uring = CBDFS_URING_ON;
	} else if (!strcmp(mode, "off")) {
		cfg->uring = CBDFS_URING_OFF;
	} else {
		cli_usage_msg("io_uring=%s: expected auto, on or off", mode);
		return -EINVAL;
	}
	if (o->hostname) {
		cfg->hostname = strdup(o->hostname);
	} else {
		if (gethostname(host, sizeof(host)) < 0) {
			log_err("hostname: %m");
			return -errno;
		}
		host[sizeof(host) - 1] = '\0';
		cfg->hostname = strdup(host);
	}
	if (!cfg->hostname)
		return -ENOMEM;
	if (!*cfg->hostname || strlen(cfg->hostname) >= CBDT_HOSTNAME_LEN) {
		cli_usage_msg("hostname=%s: must be 1 to %u characters",
			      cfg->hostname, CBDT_HOSTNAME_LEN - 1);
		return -EINVAL;
	}
	cfg->ro = o->ro;
	return 0;
}

/*
 * A cbdfs of our host name that died (kill -9, a crash) left its blkdevs
 * behind, under the host slot we just took over: they are nobody's now.
 * Clear them at once instead of making every writable open wait for a
 * janitor (EBUSY for a heartbeat timeout).  Their heartbeats stopped with
 * their process, so an observer with a tiny timeout sees them dead.
 */
static void predecessor_clear(struct cbdfs *fs)
{
	uint32_t n = cbdt_slot_count(fs->t, CBDT_OBJ_BLKDEV);
	struct cbdt_observer *obs;
	struct cbdt_blocker by;
	uint64_t deadline;
	char what[256];
	int ret;

	if (cbdt_observer_new(fs->t, 1, &obs))
		return;
	cbdt_observer_sample(obs);
	cbdt_sleep_ms(5);
	for (uint32_t id = 0; id < n; id++) {
		uint64_t o = cbdt_slot_owner(fs->t, CBDT_OBJ_BLKDEV, id);

		if (CBDT_OWNER_STATE(o) != CBDT_SLOT_ACTIVE ||
		    CBDT_OWNER_HOST(o) != fs->host_id)
			continue;
		cbdt_obj_describe(fs->t, CBDT_OBJ_BLKDEV, id, what,
				  sizeof(what));
		/* the backend's handlers detach on request: a few seconds */
		deadline = cbdt_now_ms() + 10000;
		while ((ret = cbdt_blkdev_clear(fs->t, id, obs, &by)) ==
			       -EAGAIN &&
		       cbdt_now_ms() < deadline)
			cbdt_sleep_ms(20);
		if (ret)
			log_warn(
				"host %u: %s of our dead predecessor: not cleared: %s",
				fs->host_id, what, cbdt_strerror(ret));
		else
			log_info("host %u: cleared %s of our dead predecessor",
				 fs->host_id, what);
	}
	cbdt_observer_free(obs);
}

static int host_register(struct cbdfs *fs)
{
	struct cbdt_host_rec rec;
	int ret;

	memset(&rec, 0, sizeof(rec));
	strlcpy_field(rec.hostname, fs->cfg.hostname, sizeof(rec.hostname));
	cbdt_boot_id(rec.boot_id);
	rec.pid = (uint32_t)getpid();
	rec.role = CBDT_ROLE_CLIENT;
	rec.hb_interval_ms = CBDFS_HB_INTERVAL_MS;
	rec.hb_timeout_ms = CBDFS_HB_TIMEOUT_MS;
	strlcpy_field(rec.mountpoint, fs->mountpoint, sizeof(rec.mountpoint));
	/* A dead cbdfs of our name (this boot: its pid is gone; another
	 * boot: its heartbeat stays still) is taken over, as cbd-backend
	 * does; a live one refuses us. */
	ret = cbdt_host_register(fs->t, &rec, true, &fs->host_id,
				 &fs->host_owner);
	if (ret == -EEXIST) {
		log_err("host: another cbdfs with host name %s is running on this transport (give -o hostname=)",
			fs->cfg.hostname);
		return ret;
	}
	if (ret) {
		log_err("host: register %s: %s", fs->cfg.hostname,
			cbdt_strerror(ret));
		return ret;
	}
	predecessor_clear(fs);
	return 0;
}

/* After fuse_daemonize() the pid in the host record is the parent's. */
static void host_update_pid(struct cbdfs *fs)
{
	struct cbdt_host_rec rec;
	int ret;

	if (cbdt_host_read(fs->t, fs->host_id, &rec) ||
	    rec.pid == (uint32_t)getpid())
		return;
	rec.pid = (uint32_t)getpid();
	ret = cbdt_record_write(fs->t, CBDT_OBJ_HOST, fs->host_id, &rec,
				sizeof(rec));
	if (ret)
		log_warn("host %u: update pid: %s", fs->host_id,
			 cbdt_strerror(ret));
}

static const struct fuse_lowlevel_ops no_ops;

static int run(struct cbdfs *fs, struct fuse_args *args,
	       const struct fuse_cmdline_opts *fo)
{
	struct stat st;
	int ret;

	ret = cbdt_open(fs->cfg.transport, 0, &fs->t);
	if (ret) {
		log_err("transport: %s: %s", fs->cfg.transport,
			cbdt_strerror(ret));
		return ret;
	}
	if (stat(fo->mountpoint, &st) < 0) {
		ret = -errno;
		log_err("mountpoint: %s: %m", fo->mountpoint);
		goto out_close;
	}
	if (!S_ISDIR(st.st_mode)) {
		ret = -ENOTDIR;
		log_err("mountpoint: %s: not a directory", fo->mountpoint);
		goto out_close;
	}
	ret = cbdfs_state_init(fs);
	if (ret) {
		log_err("state: %s", strerror(-ret));
		goto out_close;
	}
	/* no operations: the session only mounts, session.c serves */
	fs->se = fuse_session_new(args, &no_ops, sizeof(no_ops), fs);
	if (!fs->se) {
		/* libfuse said which option it does not know */
		fprintf(stderr, "Try 'cbdfs --help'.\n");
		ret = -EDOM;
		goto out_state;
	}
	/*
	 * A FUSE daemon behind a loop device must not wait on its own
	 * writeback when it allocates memory.  Before any thread exists:
	 * they all inherit it.
	 */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) < 0)
		log_warn(
			"prctl(PR_SET_IO_FLUSHER): %m (needs CAP_SYS_RESOURCE): "
			"a loop device on cbdfs may deadlock under memory pressure");
	/* the first write to the transport: everything was checked before */
	if (!realpath(fo->mountpoint, fs->mountpoint))
		strlcpy_field(fs->mountpoint, fo->mountpoint,
			      sizeof(fs->mountpoint));
	ret = host_register(fs);
	if (ret)
		goto out_session;
	ret = cbdfs_session_init(fs);
	if (ret)
		goto out_host;
	ret = -EIO;
	if (fuse_session_mount(fs->se, fo->mountpoint))
		goto out_signals;
	if (fuse_daemonize(fo->foreground))
		goto out_unmount;
	if (!fo->foreground)
		log_to_syslog();
	host_update_pid(fs);
	fs->main_thread = pthread_self();
	ret = cbdfs_heartbeat_start(fs);
	if (ret) {
		log_err("heartbeat thread: %s", strerror(-ret));
		goto out_unmount;
	}
	transport_note(fs->t);
	log_info("%s: host %u (%s) on %s", fo->mountpoint, fs->host_id,
		 fs->cfg.hostname, fs->cfg.transport);
	ret = cbdfs_session_run(fs, fuse_session_fd(fs->se),
				fo->singlethread ? 1 : fo->max_threads,
				(enum cbdfs_uring_mode)fs->cfg.uring);
	log_info("%s: unmounting", fo->mountpoint);

out_unmount:
	/*
	 * Files still open (a loop device): drain and unmap them ourselves,
	 * while the reapers can still answer on the FUSE fd, which
	 * fuse_session_unmount() closes.
	 */
	cbdfs_blkdev_release_all(fs);
	cbdfs_heartbeat_stop(fs);
	cbdfs_session_end(fs);
	fuse_session_unmount(fs->se);
	if (fs->host_lost)
		ret = -ESTALE;
out_signals:
	cbdfs_session_destroy(fs);
out_host:
	if (!fs->host_lost)
		cbdt_host_unregister(fs->t, fs->host_id, fs->host_owner);
out_session:
	fuse_session_destroy(fs->se);
	fs->se = NULL;
out_state:
	cbdfs_state_destroy(fs);
out_close:
	cbdt_close(fs->t);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cbdfs_optstr o = {0};
	struct fuse_cmdline_opts fo = {0};
	static struct cbdfs fs;
	char *fsname = NULL;
	int ret, rc;

	log_init("cbdfs", 0);
	fuse_set_log_func(fuse_log_cb);
	ret = EXIT_USAGE;
	if (fuse_opt_parse(&args, &o, cbdfs_opt_spec, opt_proc) == -1)
		goto out_args;
	rc = positional_sort(&o, &args);
	if (rc) {
		ret = rc == EXIT_USAGE ? EXIT_USAGE : 1;
		goto out_args;
	}
	if (fuse_parse_cmdline(&args, &fo) != 0) {
		/* libfuse said why: a bad mount point or option */
		fprintf(stderr, "Try 'cbdfs --help'.\n");
		goto out_args;
	}
	if (!o.max_threads)
		fo.max_threads = CBDFS_MAX_THREADS;
	if (fo.show_help) {
		usage();
		ret = 0;
		goto out_opts;
	}
	if (fo.show_version) {
		printf("cbdfs %s\n", CBD_VERSION);
		fflush(stdout); /* before fusermount3's line */
		fuse_lowlevel_version();
		ret = 0;
		goto out_opts;
	}
	log_init("cbdfs", fo.debug ? 1 : 0);
	if (!fo.mountpoint) {
		cli_usage_msg("no mountpoint given");
		goto out_opts;
	}
	if (cfg_check(&o, &fs.cfg))
		goto out_opts;
	ret = 1;
	fs.uid = getuid();
	fs.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs.start_time);
	fuse_opt_add_arg(&args, "-odefault_permissions");
	fuse_opt_add_arg(&args, "-osubtype=cbdfs");
	/* /proc/mounts then shows the transport as the source, as fstab has
	 * it; a path with a comma or backslash would need escaping: no. */
	if (asprintf(&fsname, "-ofsname=%s",
		     strpbrk(fs.cfg.transport, ",\\") ? "cbdfs" :
							fs.cfg.transport) < 0) {
		fsname = NULL;
		goto out_opts;
	}
	fuse_opt_add_arg(&args, fsname);
	ret = run(&fs, &args, &fo);
	ret = ret == -EDOM ? EXIT_USAGE : ret ? 1 : 0;

out_opts:
	free(fo.mountpoint);
	free(fs.cfg.hostname);
out_args:
	free(o.transport);
	free(o.hostname);
	free(o.queues);
	free(o.timeout);
	free(o.chunk);
	free(o.io_uring);
	for (unsigned i = 0; i < o.npos && i < 3; i++)
		free(o.pos[i]);
	free(fsname);
	fuse_opt_free_args(&args);
	return ret;
}
