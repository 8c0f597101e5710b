/* SPDX-License-Identifier: MIT */
/*
 * The service: open (create, format) the transport, register the host,
 * start the backends, the heartbeat and discovery threads; reload and stop.
 * service_start/stop/reload/janitor run in the main thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "barrier.h"
#include "janitor.h"
#include "log.h"
#include "util.h"

bool service_lost(const struct service *svc)
{
	/* Set by the heartbeat thread. */
	return smp_load_acquire(&svc->lost);
}

/* ---- transport ---- */

/*
 * Map and format: --format, or format = if-empty on a blank transport.
 * cbdt_format applies the rules (nothing alive is ever formatted).
 */
static int transport_open_format(struct service *svc, bool explicit, bool force,
				 struct cbdt **out)
{
	const struct config *cfg = svc->cfg;
	struct cbdt_inuse busy;
	struct cbdt *t;
	char what[256];
	int ret;

	ret = cbdt_map(cfg->path, 0, &t);
	if (ret) {
		log_err("transport: %s: %s", cfg->path, cbdt_strerror(ret));
		return ret;
	}
	ret = cbdt_format(t, 0, force ? CBDT_FORMAT_FORCE : 0, &busy);
	switch (ret) {
	case 0:
		log_info("transport: %s: formatted (%u segments)", cfg->path,
			 cbdt_slot_count(t, CBDT_OBJ_SEGMENT));
		break;
	case -EBUSY:
		if (busy.type == CBDT_OBJ_SEGMENT)
			log_err("transport: %s: segment %u holds a cache with writes not yet on its backend's disk; refusing to format it",
				cfg->path, busy.id);
		else
			log_err("transport: %s: %s is alive; refusing to format a transport in use",
				cfg->path,
				cbdt_obj_describe(t, busy.type, busy.id, what,
						  sizeof(what)));
		break;
	case -EEXIST:
		if (!explicit) {
			/* A racing cbd-backend formatted it first. */
			ret = cbdt_validate(t);
			break;
		}
		log_err("transport: %s: already formatted; --format --force formats it again, destroying what it holds",
			cfg->path);
		break;
	case -ENOTEMPTY:
		log_err("transport: %s: not formatted, and not blank either: refusing to format it (%s)",
			cfg->path,
			explicit ? "--format --force overwrites it" :
				   "format = if-empty");
		break;
	default:
		log_err("transport: %s: cannot format: %s", cfg->path,
			cbdt_strerror(ret));
		break;
	}
	if (ret) {
		cbdt_close(t);
		return ret;
	}
	*out = t;
	return 0;
}

static int transport_open(struct service *svc, bool format, bool force)
{
	const struct config *cfg = svc->cfg;
	struct stat st;
	char sz[32], sz2[32];
	int ret, found = stat(cfg->path, &st);

	if (found < 0 && errno == ENOENT) {
		ret = cbdt_file_create(cfg->path, cfg->size);
		if (ret && ret != -EEXIST) {
			log_err("transport: %s: cannot create it: %s",
				cfg->path, strerror(-ret));
			return ret;
		}
		if (!ret)
			log_info("transport: %s: created (%s)", cfg->path,
				 format_size(cfg->size, sz, sizeof(sz)));
	} else if (found == 0 && cfg->size && S_ISREG(st.st_mode) &&
		   (uint64_t)st.st_size != cfg->size) {
		log_info(
			"transport: %s: exists (%s); size = %s only creates a missing one",
			cfg->path,
			format_size((uint64_t)st.st_size, sz, sizeof(sz)),
			format_size(cfg->size, sz2, sizeof(sz2)));
	}
	if (format)
		return transport_open_format(svc, true, force, &svc->t);
	ret = cbdt_open(cfg->path, 0, &svc->t);
	if (ret == -ENODATA && cfg->format == CONFIG_FORMAT_IF_EMPTY)
		return transport_open_format(svc, false, false, &svc->t);
	if (ret == -ENODATA) {
		log_err("transport: %s: not formatted; set format = if-empty in %s, or run cbd-backend --format or cbd-admin format",
			cfg->path, cfg->file);
		return ret;
	}
	if (ret)
		log_err("transport: %s: %s", cfg->path, cbdt_strerror(ret));
	return ret;
}

/* ---- host ---- */

static int host_register(struct service *svc)
{
	const struct config *cfg = svc->cfg;
	struct cbdt_host_rec rec;
	int ret;

	memset(&rec, 0, sizeof(rec));
	strlcpy_field(rec.hostname, cfg->hostname, sizeof(rec.hostname));
	ret = cbdt_boot_id(rec.boot_id);
	memcpy(svc->boot_id, rec.boot_id, sizeof(svc->boot_id));
	if (ret)
		log_warn("host: cannot read the boot id: %s", strerror(-ret));
	rec.pid = (uint32_t)getpid();
	rec.role = CBDT_ROLE_BACKEND;
	rec.hb_interval_ms = cfg->hb_interval_ms;
	rec.hb_timeout_ms = cfg->hb_timeout_ms;
	ret = cbdt_host_register(svc->t, &rec, true, &svc->host_id,
				 &svc->host_owner);
	if (ret == -EEXIST) {
		log_err("host %s: another cbd-backend with this host name is running on %s",
			cfg->hostname, cfg->path);
		return ret;
	}
	if (ret) {
		log_err("host %s: cannot register: %s", cfg->hostname,
			strerror(-ret));
		return ret;
	}
	log_info("host %s: registered as host%u", cfg->hostname, svc->host_id);
	return 0;
}

/* ---- heartbeats ---- */

static void *heartbeat_main(void *arg)
{
	struct service *svc = arg;
	struct cbdt *t = svc->t;

	do {
		pthread_mutex_lock(&svc->lock);
		if (cbdt_slot_owner(t, CBDT_OBJ_HOST, svc->host_id) ==
		    svc->host_owner) {
			cbdt_slot_heartbeat(t, CBDT_OBJ_HOST, svc->host_id);
		} else if (!service_lost(svc)) {
			log_err("host %s: host%u was taken from us (were we stalled for longer than the timeout?)",
				svc->cfg->hostname, svc->host_id);
			/* Pairs with the load-acquire in service_lost(). */
			smp_store_release(&svc->lost, 1U);
		}
		backends_heartbeat(svc);
		pthread_mutex_unlock(&svc->lock);
	} while (worker_sleep(&svc->hb, svc->hb_interval_ms));
	return NULL;
}

/* ---- start / stop ---- */

static int service_init(struct service *svc, struct config *cfg)
{
	memset(svc, 0, sizeof(*svc));
	svc->cfg = cfg;
	svc->hb_interval_ms = cfg->hb_interval_ms;
	pthread_mutex_init(&svc->lock, NULL);
	return 0;
}

int service_start(struct service *svc, struct config *cfg, bool format,
		  bool force)
{
	int ret;

	service_init(svc, cfg);
	ret = transport_open(svc, format, force);
	if (ret)
		return ret;
	transport_note(svc->t);
	svc->nr_segs = cbdt_slot_count(svc->t, CBDT_OBJ_SEGMENT);
	svc->served =
		calloc(svc->nr_segs ? svc->nr_segs : 1, sizeof(*svc->served));
	svc->seen = calloc(svc->nr_segs ? svc->nr_segs : 1, sizeof(*svc->seen));
	if (!svc->served || !svc->seen) {
		ret = -ENOMEM;
		goto err_stop;
	}
	ret = cbdt_observer_new(svc->t, cfg->hb_timeout_ms, &svc->obs);
	if (ret)
		goto err_stop;
	ret = host_register(svc);
	if (ret)
		goto err_stop;
	/* From here on we hold slots: keep them alive while we start. */
	ret = worker_start(&svc->hb, "heartbeat", heartbeat_main, svc);
	if (ret)
		goto err_stop;
	if (!cfg->nr_backends)
		log_warn("no [backend NAME] in %s: serving nothing", cfg->file);
	for (unsigned i = 0; i < cfg->nr_backends; i++) {
		ret = backend_start(svc, &cfg->backends[i]);
		if (ret)
			goto err_stop;
	}
	/* Re-attach the channels that were open before a restart now, so
	 * that "ready" means every backend is served. */
	pthread_mutex_lock(&svc->lock);
	discover_scan(svc);
	pthread_mutex_unlock(&svc->lock);
	ret = discover_start(svc);
	if (ret)
		goto err_stop;
	return 0;

err_stop:
	service_stop(svc);
	return ret;
}

void service_stop(struct service *svc)
{
	discover_stop(svc);
	while (svc->backends)
		backend_stop(svc, svc->backends);
	worker_stop(&svc->hb);
	if (svc->host_owner) {
		cbdt_host_unregister(svc->t, svc->host_id, svc->host_owner);
		log_info("host %s: host%u released", svc->cfg->hostname,
			 svc->host_id);
		svc->host_owner = 0;
	}
	cbdt_observer_free(svc->obs);
	svc->obs = NULL;
	free(svc->served);
	free(svc->seen);
	svc->served = NULL;
	svc->seen = NULL;
	cbdt_close(svc->t);
	svc->t = NULL;
	pthread_mutex_destroy(&svc->lock);
}

/* ---- reload ---- */

void service_reload(struct service *svc)
{
	struct config *old = svc->cfg, *cfg;
	unsigned stopped = 0, started = 0, failed = 0, served = 0;
	char msg[512];
	int ret;

	ret = config_load(old->file, CONFIG_CHECK_FILES, &cfg, msg,
			  sizeof(msg));
	if (ret) {
		log_err("reload: %s; keeping the running configuration", msg);
		return;
	}
	if (!config_transport_same(old, cfg))
		log_warn(
			"reload: %s: changes to [transport] need a restart; ignored",
			old->file);
	/* The running transport settings stay in force. */
	memcpy(cfg->path, old->path, sizeof(cfg->path));
	cfg->size = old->size;
	cfg->format = old->format;
	memcpy(cfg->hostname, old->hostname, sizeof(cfg->hostname));
	cfg->hb_interval_ms = old->hb_interval_ms;
	cfg->hb_timeout_ms = old->hb_timeout_ms;

	/* Removed or changed backends go first, so that a changed one can
	 * take its old slot again. */
	for (struct backend *b = svc->backends, *next; b; b = next) {
		const struct config_backend *nb =
			config_backend_find(cfg, b->conf.name);
		bool lost;

		next = b->next;
		pthread_mutex_lock(&svc->lock);
		lost = b->lost;
		pthread_mutex_unlock(&svc->lock);
		if (nb && config_backend_same(&b->conf, nb) && !lost)
			continue;
		log_info("reload: backend %s: %s", b->conf.name,
			 nb ? "changed, restarting it" :
			      "removed, stopping it");
		backend_stop(svc, b);
		stopped++;
	}
	/* The backends read svc->cfg->hostname: switch before starting. */
	pthread_mutex_lock(&svc->lock);
	svc->cfg = cfg;
	pthread_mutex_unlock(&svc->lock);
	config_free(old);
	for (unsigned i = 0; i < cfg->nr_backends; i++) {
		bool running = false;

		for (struct backend *b = svc->backends; b; b = b->next)
			running |= !strcmp(b->conf.name, cfg->backends[i].name);
		if (running)
			continue;
		log_info("reload: backend %s: starting it",
			 cfg->backends[i].name);
		ret = backend_start(svc, &cfg->backends[i]);
		if (ret) {
			log_err("reload: backend %s: not started",
				cfg->backends[i].name);
			failed++;
		} else {
			started++;
		}
	}
	for (struct backend *b = svc->backends; b; b = b->next)
		served++;
	log_info(
		"reload: %s: done: %u backend%s served (%u started, %u stopped, %u failed to start)",
		cfg->file, served, served == 1 ? "" : "s", started, stopped,
		failed);
}

/* ---- janitor ---- */

void service_janitor(struct service *svc)
{
	int ret = janitor_pass(svc->t, svc->obs, svc->host_id);

	/* The janitor logs every object it clears itself. */
	if (ret > 0)
		log_dbg("janitor: %d slots freed", ret);
	else if (ret < 0 && ret != -EBUSY)
		log_dbg("janitor: pass failed: %s", strerror(-ret));
}
