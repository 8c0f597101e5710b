/* SPDX-License-Identifier: MIT */
/*
 * cbd-backend: command line, daemonizing, pidfile and the main loop
 * (signals through a signalfd, the janitor once per heartbeat interval).
 * Signals are blocked in every thread; only this loop reads them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "backend.h"
#include "cli.h"
#include "log.h"

#define PROG	       "cbd-backend"
#define DEFAULT_CONFIG "/etc/cbd/cbd.ini"
#define EXIT_USAGE     CLI_EXIT_USAGE

enum {
	OPT_FORMAT = 256,
	OPT_FORCE,
	OPT_CHECK_CONFIG,
	OPT_LOG_FILE
};

struct options {
	const char *config;
	char *pidfile; /* absolute */
	bool daemon;
	bool foreground;
	bool format;
	bool force;
	bool check_config;
	const char *log_file;
	int verbose;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG
		" [-c FILE] [--foreground | --daemon] [--pidfile FILE]\n"
		"                   [--log-file FILE] [-v] [--format [--force]]\n"
		"       " PROG " -c FILE --check-config\n"
		"       " PROG " --help | --version\n"
		"\n"
		"Serve the backends of a cbd.ini through a cbd transport.\n"
		"\n"
		"  -c, --config FILE   configuration (default " DEFAULT_CONFIG
		")\n"
		"  -f, --foreground    stay in the foreground, log to stderr (default)\n"
		"  -d, --daemon        detach once ready; then log to syslog (or, without\n"
		"                      /dev/log, to stderr) unless --log-file is given\n"
		"  -p, --pidfile FILE  write the pid to FILE once every backend is served\n"
		"  -l, --log-file FILE append log lines (with time stamps) to FILE\n"
		"      --check-config  check the configuration and the files it names,\n"
		"                      touch nothing, and exit (0: good)\n"
		"  -v, --verbose       debug messages\n"
		"      --format        format the transport before starting; refuses a\n"
		"                      valid transport unless --force is given too\n"
		"      --force         with --format: format even a valid transport\n"
		"  -h, --help          this help\n"
		"  -V, --version       print the version\n"
		"\n"
		"Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the backends.\n"
		"Under systemd (Type=notify) it reports READY=1 once every backend is\n"
		"served.\n");
}

static char *path_absolute(const char *path)
{
	char cwd[PATH_MAX], *abs;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		return NULL;
	return abs;
}

static int options_parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"foreground", no_argument, NULL, 'f'},
		{"daemon", no_argument, NULL, 'd'},
		{"pidfile", required_argument, NULL, 'p'},
		{"verbose", no_argument, NULL, 'v'},
		{"format", no_argument, NULL, OPT_FORMAT},
		{"force", no_argument, NULL, OPT_FORCE},
		{"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
		{"log-file", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	o->config = DEFAULT_CONFIG;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:fdp:l:vhV", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'f':
			o->foreground = true;
			break;
		case 'd':
			o->daemon = true;
			break;
		case 'p':
			free(o->pidfile);
			o->pidfile = path_absolute(optarg);
			if (!o->pidfile) {
				log_err("pidfile: %s: %m", optarg);
				return EXIT_FAILURE;
			}
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_FORMAT:
			o->format = true;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_CHECK_CONFIG:
			o->check_config = true;
			break;
		case 'l':
			o->log_file = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			cli_version();
		default:
			cli_bad_option(c, argv);
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (o->daemon && o->foreground)
		cli_usage_error("--daemon and --foreground exclude each other");
	if (o->force && !o->format)
		cli_usage_error("--force only goes with --format");
	if (o->check_config && (o->format || o->daemon || o->pidfile))
		cli_usage_error(
			"--check-config touches nothing: it goes with -c only");
	return 0;
}

/*
 * Detach: fork, setsid, fork.  The original process waits until the
 * daemon says it is ready (one byte on the pipe) and exits 0, or exits 1
 * if the daemon dies first; startup errors still reach its stderr.
 */
static int daemon_start(int *ready_fd)
{
	int pfd[2], null;
	pid_t pid;
	char c = 0;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(pfd[1]);
		waitpid(pid, NULL, 0);
		while (read(pfd[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(c == 'R' ? EXIT_SUCCESS : EXIT_FAILURE);
	}
	close(pfd[0]);
	if (setsid() < 0)
		_exit(EXIT_FAILURE);
	pid = fork();
	if (pid < 0)
		_exit(EXIT_FAILURE);
	if (pid > 0)
		_exit(EXIT_SUCCESS);
	if (chdir("/") < 0)
		return -errno;
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		close(null);
	}
	*ready_fd = pfd[1];
	return 0;
}

/*
 * Ready: tell the waiting parent, and from now on log to syslog, unless
 * a log file was asked for, or there is no syslog to take it: then the
 * lines keep going where they went (a file, or the inherited stderr).
 */
static void daemon_ready(int ready_fd, bool log_file)
{
	int null;

	if (write(ready_fd, "R", 1) < 0)
		log_warn("daemon: cannot signal readiness: %m");
	close(ready_fd);
	if (log_file)
		return;
	if (log_to_syslog()) {
		log_warn(
			"no syslog (/dev/log): logging to stderr; give --log-file to keep the log");
		return;
	}
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDERR_FILENO);
		close(null);
	}
}

/* Written atomically (rename), so a reader never sees it half-written. */
static int pidfile_write(const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int ret = -errno;

		unlink(tmp);
		return ret;
	}
	return 0;
}

/* Only our own: a successor may already have written its pid there. */
static void pidfile_remove(const char *path)
{
	FILE *f = fopen(path, "re");
	int pid = 0;

	if (!f)
		return;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid == (int)getpid())
		unlink(path);
}

static int signals_setup(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Before any thread exists, so that every thread inherits it. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	return fd;
}

/* Run until SIGTERM/SIGINT (0) or until we lost our host slot (1). */
static int main_loop(struct service *svc, int sfd)
{
	uint64_t interval = svc->hb_interval_ms,
		 next = cbdt_now_ms() + interval;
	struct signalfd_siginfo si;
	struct pollfd pfd = {.fd = sfd, .events = POLLIN};

	for (;;) {
		uint64_t now = cbdt_now_ms();

		if (poll(&pfd, 1, next > now ? (int)(next - now) : 0) < 0 &&
		    errno != EINTR) {
			log_err("poll: %m");
			return EXIT_FAILURE;
		}
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			switch (si.ssi_signo) {
			case SIGHUP:
				log_info("SIGHUP: reloading %s",
					 svc->cfg->file);
				sd_notify(0, "RELOADING=1");
				service_reload(svc);
				sd_notify(0, "READY=1");
				break;
			default:
				log_info("SIG%s: stopping",
					 sigabbrev_np((int)si.ssi_signo));
				return EXIT_SUCCESS;
			}
		}
		if (service_lost(svc))
			return EXIT_FAILURE;
		now = cbdt_now_ms();
		if (now >= next) {
			service_janitor(svc);
			next = now + interval;
		}
	}
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct service svc;
	struct config *cfg;
	char msg[1024];
	int ret, sfd, ready_fd = -1;

	log_init(PROG, 0);
	ret = options_parse(argc, argv, &o);
	if (ret)
		goto out_free;
	log_init(PROG, o.verbose);
	ret = EXIT_FAILURE;
	if (o.log_file && log_to_file(o.log_file)) {
		log_err("log file: %s: %m", o.log_file);
		goto out_free;
	}

	/* Every check of the config happens before the transport is touched. */
	if (config_load(o.config, CONFIG_CHECK_FILES, &cfg, msg, sizeof(msg))) {
		log_err("%s", msg);
		goto out_free;
	}
	if (o.check_config) {
		printf("%s: configuration OK: transport %s, %u backend%s\n",
		       cfg->file, cfg->path, cfg->nr_backends,
		       cfg->nr_backends == 1 ? "" : "s");
		ret = EXIT_SUCCESS;
		goto out_config;
	}
	if (o.daemon) {
		int e = daemon_start(&ready_fd);

		if (e) {
			log_err("daemon: %s", strerror(-e));
			goto out_config;
		}
	}
	sfd = signals_setup();
	if (sfd < 0) {
		log_err("signals: %s", strerror(-sfd));
		goto out_config;
	}
	if (service_start(&svc, cfg, o.format, o.force))
		goto out_signals;
	if (o.pidfile && (ret = pidfile_write(o.pidfile))) {
		log_err("pidfile: %s: %s", o.pidfile, strerror(-ret));
		ret = EXIT_FAILURE;
		goto out_stop;
	}
	log_info("ready: host%u, %u backends served", svc.host_id,
		 svc.cfg->nr_backends);
	if (o.daemon)
		daemon_ready(ready_fd, o.log_file);
	sd_notifyf(0, "READY=1\nMAINPID=%d\nSTATUS=serving %u backends",
		   (int)getpid(), svc.cfg->nr_backends);

	ret = main_loop(&svc, sfd);

out_stop:
	sd_notify(0, "STOPPING=1");
	service_stop(&svc);
	/* Last: no pidfile means every slot is released. */
	if (o.pidfile)
		pidfile_remove(o.pidfile);
	/* A reload may have replaced the config. */
	cfg = svc.cfg;
	if (ret == EXIT_SUCCESS)
		log_info("stopped");
out_signals:
	close(sfd);
out_config:
	config_free(cfg);
out_free:
	free(o.pidfile);
	return ret;
}
