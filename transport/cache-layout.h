/* SPDX-License-Identifier: MIT */
/*
 * On-media format of the transport-resident cache (pcache), part of
 * transport format v1 (the rules of layout.h hold here too).
 *
 * A backend's cache is a list of whole segments of type CBDT_SEG_CACHE.
 * Writes are logged: a write's data is copied into cache space and a key
 * saying where it went is appended to a key set (kset).  A kset is made
 * durable before the writes it names are completed, so the cache can be
 * rebuilt after a crash by replaying the ksets from the log's tail: a
 * kset is valid only with its magic, crc32c, the next sequence number of
 * the log and keys that point into segments of the generation they name
 * (a segment reused by GC gets a new generation, so keys of its former
 * life are stale, never served).
 *
 * Writer of a kset and of the data it names: the backend owning the
 * cache (its handler threads, each with its own data head).  Readers: the
 * same backend after a restart (replay), cbd-status (counts only).
 */
#ifndef CBD_TRANSPORT_CACHE_LAYOUT_H
#define CBD_TRANSPORT_CACHE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define CBDT_KSET_MAGIC	   0x534b4243U /* "CBKS" */
#define CBDT_KSET_ALIGN	   512U	       /* ksets start on this boundary */
#define CBDT_KSET_KEYS_MAX 126U	       /* 64 + 126 * 32 = 4096 bytes */

/* cbdt_cache_key.flags */
#define CBDT_KEY_DISCARD (1U << 0) /* the range left the cache (no data) */
#define CBDT_KEY_FLAGS	 CBDT_KEY_DISCARD

/*
 * One key: [off, off + len) of the backend is held at seg_off in cache
 * segment seg (an index in the cache's segment list), written while that
 * segment had generation seg_gen.  A DISCARD key names no data (seg,
 * seg_off, seg_gen and data_crc are 0): the range is on the disk again.
 * off and len are multiples of 512; len > 0.
 */
struct cbdt_cache_key {
	uint64_t off;
	uint32_t len;
	uint32_t seg;
	uint32_t seg_off;
	uint32_t seg_gen;
	uint32_t data_crc; /* crc32c of the data (cache_data_crc), else 0 */
	uint16_t flags;	   /* CBDT_KEY_* */
	uint16_t reserved; /* 0 */
};
_Static_assert(sizeof(struct cbdt_cache_key) == 32, "cbdt_cache_key size");

/* cbdt_cache_kset.flags */
#define CBDT_KSET_NEXT_SEG (1U << 0) /* the log goes on at next_seg */
#define CBDT_KSET_FLAGS	   CBDT_KSET_NEXT_SEG

/*
 * A key set: this header, then nkeys keys; it occupies its size rounded
 * up to CBDT_KSET_ALIGN.  crc is the crc32c of every byte after it up to
 * the end of the last key.  seq is one more than the previous kset's of
 * the same log.  With NEXT_SEG the log goes on at the start of segment
 * next_seg's log area, which must have generation next_gen: the last
 * kset written in a segment says where the next one will be before that
 * one exists.  seg_gen is the generation of the segment the kset is in:
 * what a segment held before GC reused it never passes for the new log.
 */
struct cbdt_cache_kset {
	uint32_t crc;
	uint32_t magic; /* CBDT_KSET_MAGIC */
	uint64_t seq;
	uint64_t backend_ident; /* whose cache (cbdt_backend_rec.ident) */
	uint16_t nkeys;		/* 0..CBDT_KSET_KEYS_MAX */
	uint16_t flags;		/* CBDT_KSET_* */
	uint32_t next_seg;
	uint32_t next_gen;
	uint32_t seg_gen;     /* generation of the segment holding it */
	uint8_t reserved[24]; /* 0 */
	struct cbdt_cache_key keys[];
};
_Static_assert(sizeof(struct cbdt_cache_kset) == 64, "cbdt_cache_kset size");
_Static_assert(offsetof(struct cbdt_cache_kset, keys) == 64,
	       "cbdt_cache_kset.keys");
_Static_assert(sizeof(struct cbdt_cache_kset) +
			       CBDT_KSET_KEYS_MAX *
				       sizeof(struct cbdt_cache_key) ==
		       4096,
	       "a full kset is one page");

#endif /* CBD_TRANSPORT_CACHE_LAYOUT_H */
