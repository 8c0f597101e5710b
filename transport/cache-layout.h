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

/*
 * A cache segment: a CBDT_CACHE_HDR_SIZE header, then its area: data, or
 * ksets (a key segment, whose last CBDT_KSET_ALIGN bytes are kept for the
 * link to the next one).  Keys name offsets in areas.  Only the header of
 * cache index 0 is used: struct cbdt_cache_hdr.
 */
#define CBDT_CACHE_HDR_SIZE  4096U
#define CBDT_CACHE_HDR_MAGIC 0x31484342U /* "BCH1" */

/*
 * What a cache shows and is asked, in the header of its index-0 segment.
 * Writer of the first block: the backend, from its writeback thread
 * (WRITE_ONCE per word, a few times a second; the counters are rates'
 * raw material).  Readers: cbd-status.  wb_request and wb_pause are
 * written by cbd-admin (an atomic increment: "write back everything
 * dirty now"; a store: hold the writeback back), wb_done by the backend
 * once everything that was dirty when it saw the request is on the
 * disk: cbd-admin waits for it.
 */
struct cbdt_cache_hdr {
	uint32_t magic; /* CBDT_CACHE_HDR_MAGIC once the cache is set up */
	uint32_t gc_percent;
	uint64_t size;	     /* bytes of data the cache can hold */
	uint64_t used;	     /* bytes of segments in use (data and keys) */
	uint64_t dirty;	     /* bytes of data not yet written back */
	uint64_t read_bytes; /* bytes read through the cache */
	uint64_t hit_bytes;  /* ... of which it held */
	uint64_t write_bytes;
	uint64_t wb_bytes; /* bytes written back to the disk */
	uint8_t pad0[64];
	uint64_t wb_request; /* cbd-admin: bump to ask for a full writeback */
	uint32_t wb_pause;   /* cbd-admin: 1 = write back only what must go
			      * (a full cache, a discard, a request, a stop) */
	uint8_t pad1[52];
	uint64_t wb_done; /* backend: the last request fully served */
	uint8_t pad2[56];
};
_Static_assert(sizeof(struct cbdt_cache_hdr) == 256, "cbdt_cache_hdr size");
_Static_assert(offsetof(struct cbdt_cache_hdr, wb_request) == 128,
	       "cache_hdr.wb_request");
_Static_assert(offsetof(struct cbdt_cache_hdr, wb_done) == 192,
	       "cache_hdr.wb_done");

/* cbdt_cache_key.flags */
#define CBDT_KEY_DISCARD (1U << 0) /* the range left the cache (no data) */
#define CBDT_KEY_ZEROES	 (1U << 1) /* with DISCARD: write zeroes instead */
#define CBDT_KEY_CRC	 (1U << 2) /* data_crc holds the data's crc32c */
#define CBDT_KEY_FLAGS	 (CBDT_KEY_DISCARD | CBDT_KEY_ZEROES | CBDT_KEY_CRC)

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
	uint32_t data_crc; /* with CBDT_KEY_CRC: crc32c of the data, else 0 */
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
