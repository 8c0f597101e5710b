/* SPDX-License-Identifier: MIT */
/*
 * Key sets of the transport-resident cache: encoding, and validation of
 * what a replay finds in the log (see cache-layout.h).  The order of the
 * checks decides the error a replay acts on: no magic is the end of the
 * log, a short area or a bad crc a torn write, a wrong sequence number,
 * backend or generation an older log; only a kset that passes all of
 * those yet names impossible ranges is corrupt (-EINVAL).
 */
#include <errno.h>
#include <string.h>

#include "cbdt-cache.h"
#include "cbdt.h"

#define KSET_MAX_SIZE                     \
	(sizeof(struct cbdt_cache_kset) + \
	 CBDT_KSET_KEYS_MAX * sizeof(struct cbdt_cache_key))

size_t cbdt_kset_size(unsigned nkeys)
{
	size_t n = sizeof(struct cbdt_cache_kset) +
		   (size_t)nkeys * sizeof(struct cbdt_cache_key);

	return (n + CBDT_KSET_ALIGN - 1) / CBDT_KSET_ALIGN * CBDT_KSET_ALIGN;
}

static uint32_t kset_crc(const struct cbdt_cache_kset *k, size_t len)
{
	return cbdt_crc32c(0, (const char *)k + sizeof(k->crc),
			   len - sizeof(k->crc));
}

int cbdt_kset_encode(void *buf, const struct cbdt_kset_hdr *h,
		     const struct cbdt_cache_key *keys, unsigned nkeys)
{
	struct cbdt_cache_kset *k = buf;
	size_t len = sizeof(*k) + (size_t)nkeys * sizeof(*keys);

	if (nkeys > CBDT_KSET_KEYS_MAX)
		return -EINVAL;
	memset(buf, 0, cbdt_kset_size(nkeys));
	k->magic = CBDT_KSET_MAGIC;
	k->seq = h->seq;
	k->backend_ident = h->backend_ident;
	k->seg_gen = h->seg_gen;
	k->nkeys = (uint16_t)nkeys;
	if (h->next) {
		k->flags = CBDT_KSET_NEXT_SEG;
		k->next_seg = h->next_seg;
		k->next_gen = h->next_gen;
	}
	if (nkeys) /* a link kset may pass no keys at all */
		memcpy(k->keys, keys, (size_t)nkeys * sizeof(*keys));
	k->crc = kset_crc(k, len);
	return 0;
}

static bool zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* A key's own fields; -ESTALE for a segment's former generation. */
static int key_check(const struct cbdt_cache_key *key,
		     const struct cbdt_kset_ctx *ctx)
{
	if ((key->flags & ~CBDT_KEY_FLAGS) || key->reserved || !key->len ||
	    key->off % CBDT_SECTOR_SIZE || key->len % CBDT_SECTOR_SIZE ||
	    key->off > ctx->backend_size ||
	    key->len > ctx->backend_size - key->off ||
	    (key->flags & (CBDT_KEY_ZEROES | CBDT_KEY_DISCARD)) ==
		    CBDT_KEY_ZEROES)
		return -EINVAL;
	if (!(key->flags & CBDT_KEY_CRC) && key->data_crc)
		return -EINVAL;
	if (key->flags & CBDT_KEY_DISCARD)
		return key->seg || key->seg_off || key->seg_gen ||
				       (key->flags & CBDT_KEY_CRC) ?
			       -EINVAL :
			       0;
	if (key->seg >= ctx->nsegs || key->seg_off > ctx->seg_data_size ||
	    key->len > ctx->seg_data_size - key->seg_off)
		return -EINVAL;
	return key->seg_gen == ctx->gens[key->seg] ? 0 : -ESTALE;
}

ssize_t cbdt_kset_read(const void *src, size_t avail,
		       const struct cbdt_kset_ctx *ctx,
		       struct cbdt_cache_kset *out)
{
	size_t len;
	int ret;

	if (avail < sizeof(*out))
		return avail ? -ERANGE : -ENODATA;
	/* the header first: nkeys says how much more to copy; what is
	 * checked below is the copy only */
	memcpy(out, src, sizeof(*out));
	if (out->magic != CBDT_KSET_MAGIC)
		return -ENODATA;
	if (out->nkeys > CBDT_KSET_KEYS_MAX)
		return -EBADMSG; /* the crc could not match either */
	len = sizeof(*out) + (size_t)out->nkeys * sizeof(out->keys[0]);
	if (cbdt_kset_size(out->nkeys) > avail)
		return -ERANGE;
	memcpy(out->keys, (const char *)src + sizeof(*out), len - sizeof(*out));
	if (kset_crc(out, len) != out->crc)
		return -EBADMSG;
	if (out->seq != ctx->seq || out->backend_ident != ctx->backend_ident ||
	    out->seg_gen != ctx->seg_gen)
		return -ESTALE;
	if ((out->flags & ~CBDT_KSET_FLAGS) ||
	    !zero(out->reserved, sizeof(out->reserved)))
		return -EINVAL;
	if (out->flags & CBDT_KSET_NEXT_SEG ? out->next_seg >= ctx->nsegs :
					      out->next_seg || out->next_gen)
		return -EINVAL;
	for (unsigned i = 0; i < out->nkeys; i++) {
		ret = key_check(&out->keys[i], ctx);
		if (ret)
			return ret;
	}
	_Static_assert(KSET_MAX_SIZE == 4096, "a full kset is one page");
	return (ssize_t)cbdt_kset_size(out->nkeys);
}
