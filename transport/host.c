/* SPDX-License-Identifier: MIT */
/*
 * Host registration: every process that uses a transport holds one host
 * slot.  A restarted cbd-backend re-adopts the slot of its dead predecessor
 * so that its host id, and with it its backends' ownership, survive a crash.
 * Safe against concurrent registrations: every claim or takeover is a CAS.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cbdt.h"

/* How often a candidate's heartbeat is sampled while deciding. */
#define HOST_PROBE_MS 50U
/* Takeover CAS lost to a racer: look again, a bounded number of times. */
#define HOST_ADOPT_TRIES 8

enum candidate_state {
	CAND_NONE,  /* not ours: other name, role or FREE */
	CAND_DEAD,  /* our predecessor, known dead now */
	CAND_LIVE,  /* a live process holds our name and role */
	CAND_PROBE, /* other boot: dead only if its heartbeat stays */
};

bool cbdt_pid_exists(uint32_t pid)
{
	if (pid == 0 || pid > INT32_MAX)
		return false;
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Judge slot @id against the registering host @rec.  *owner gets the owner
 * word the judgement was made on. */
static enum candidate_state host_judge(struct cbdt *t, uint32_t id,
				       const struct cbdt_host_rec *rec,
				       uint64_t *owner)
{
	struct cbdt_host_rec old;

	*owner = cbdt_slot_owner(t, CBDT_OBJ_HOST, id);
	if (CBDT_OWNER_STATE(*owner) != CBDT_SLOT_ACTIVE)
		return CAND_NONE;
	if (cbdt_host_read(t, id, &old))
		return CAND_NONE;
	if (strncmp(old.hostname, rec->hostname, sizeof(old.hostname)) ||
	    old.role != rec->role)
		return CAND_NONE;
	if (memcmp(old.boot_id, rec->boot_id, sizeof(old.boot_id)))
		return CAND_PROBE;
	/* Same boot: the pid tells.  Our own pid can only be a reused one
	 * (a container restarting its pid 1): the old process is gone. */
	if (old.pid == rec->pid || !cbdt_pid_exists(old.pid))
		return CAND_DEAD;
	return CAND_LIVE;
}

/*
 * Probe the candidates of another boot: any whose heartbeat moves within
 * @timeout_ms is alive (-EEXIST); else return the first one's id.
 */
static int host_probe(struct cbdt *t, const uint32_t *ids, unsigned n,
		      uint32_t timeout_ms)
{
	uint64_t hb[CBDT_HOSTS_NR];
	uint64_t start = cbdt_now_ms();

	for (unsigned i = 0; i < n; i++)
		hb[i] = cbdt_slot_heartbeat_read(t, CBDT_OBJ_HOST, ids[i]);
	for (;;) {
		for (unsigned i = 0; i < n; i++)
			if (cbdt_slot_heartbeat_read(t, CBDT_OBJ_HOST,
						     ids[i]) != hb[i])
				return -EEXIST;
		if (cbdt_now_ms() - start >= timeout_ms)
			return (int)ids[0];
		cbdt_sleep_ms(HOST_PROBE_MS);
	}
}

/*
 * Find the slot of a dead predecessor with our hostname and role.
 * Returns its id, -ENOENT if there is none, -EEXIST if a live one holds
 * the name.  *owner gets the owner word to take over.
 */
static int host_find_adoptable(struct cbdt *t, const struct cbdt_host_rec *rec,
			       uint64_t *owner)
{
	uint32_t count = cbdt_slot_count(t, CBDT_OBJ_HOST);
	uint32_t probe[CBDT_HOSTS_NR];
	int dead = -1;
	unsigned nprobe = 0;
	uint64_t o, dead_owner = 0;
	int ret;

	if (count > CBDT_HOSTS_NR)
		count = CBDT_HOSTS_NR;
	for (uint32_t id = 0; id < count; id++) {
		switch (host_judge(t, id, rec, &o)) {
		case CAND_LIVE:
			return -EEXIST;
		case CAND_DEAD:
			if (dead < 0) {
				dead = (int)id;
				dead_owner = o;
			}
			break;
		case CAND_PROBE:
			probe[nprobe++] = id;
			break;
		case CAND_NONE:
			break;
		}
	}
	if (dead >= 0) {
		*owner = dead_owner;
		return dead;
	}
	if (!nprobe)
		return -ENOENT;
	ret = host_probe(t, probe, nprobe, rec->hb_timeout_ms);
	if (ret < 0)
		return ret;
	/* Re-judge after the wait: the owner word may have moved on. */
	if (host_judge(t, (uint32_t)ret, rec, owner) != CAND_PROBE)
		return -EAGAIN;
	return ret;
}

int cbdt_boot_id(uint8_t out[16])
{
	char text[64];
	unsigned n = 0;
	FILE *f;

	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return -errno;
	if (!fgets(text, sizeof(text), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	for (const char *p = text; *p && n < 32; p++) {
		int d;

		if (*p == '-')
			continue;
		if (!isxdigit((unsigned char)*p))
			break;
		d = isdigit((unsigned char)*p) ?
			    *p - '0' :
			    (tolower((unsigned char)*p) - 'a' + 10);
		if (n % 2 == 0)
			out[n / 2] = (uint8_t)(d << 4);
		else
			out[n / 2] |= (uint8_t)d;
		n++;
	}
	return n == 32 ? 0 : -EINVAL;
}

int cbdt_host_register(struct cbdt *t, const struct cbdt_host_rec *rec,
		       bool adopt, uint32_t *id, uint64_t *owner)
{
	uint64_t old, o;
	int ret;

	if (!t || !rec || !id || !owner || !rec->hostname[0] ||
	    memchr(rec->hostname, 0, sizeof(rec->hostname)) == NULL)
		return -EINVAL;

	for (int tries = 0; adopt && tries < HOST_ADOPT_TRIES; tries++) {
		ret = host_find_adoptable(t, rec, &old);
		if (ret == -ENOENT)
			break;
		if (ret == -EAGAIN)
			continue;
		if (ret < 0)
			return ret;
		/* -ESTALE: someone (a racing twin, a janitor) moved it. */
		if (cbdt_slot_takeover(t, CBDT_OBJ_HOST, (uint32_t)ret, old, 0,
				       &o))
			continue;
		goto write_record;
	}

	ret = cbdt_slot_claim(t, CBDT_OBJ_HOST, -1, 0, &o);
	if (ret < 0)
		return ret;

write_record:
	*id = (uint32_t)ret;
	ret = cbdt_record_write(t, CBDT_OBJ_HOST, *id, rec, sizeof(*rec));
	if (ret) {
		cbdt_slot_release(t, CBDT_OBJ_HOST, *id, o);
		return ret;
	}
	/* A first beat, so observers see the new owner moving at once. */
	cbdt_slot_heartbeat(t, CBDT_OBJ_HOST, *id);
	*owner = o;
	return 0;
}

void cbdt_host_unregister(struct cbdt *t, uint32_t id, uint64_t owner)
{
	/* -ESTALE means a janitor already cleared us: nothing left to do. */
	(void)cbdt_slot_release(t, CBDT_OBJ_HOST, id, owner);
}

bool cbdt_host_same_kernel(const struct cbdt *t, uint32_t a, uint32_t b)
{
	static const uint8_t zero[16];
	struct cbdt_host_rec ra, rb;

	if (cbdt_host_read(t, a, &ra) || cbdt_host_read(t, b, &rb))
		return false;
	return memcmp(ra.boot_id, zero, sizeof(zero)) &&
	       !memcmp(ra.boot_id, rb.boot_id, sizeof(ra.boot_id));
}
