/* SPDX-License-Identifier: MIT */
/*
 * On-media layout of a cbd transport, format version 1.
 *
 * Everything here lives in memory shared between hosts that do not trust
 * each other's correctness: fixed-width little-endian fields, explicit
 * padding, and a _Static_assert on every size and offset.  Each shared field
 * names its writer and its reader.  Nothing in this file is read without
 * validation (see cbdt_validate() and cbdt_se_validate()).
 *
 *   offset 0        struct cbdt_info  copy A   (4 KiB)
 *   offset 4 KiB    struct cbdt_info  copy B   (4 KiB)
 *   offset 8 KiB    struct cbdt_global         (4 KiB: janitor lease)
 *   hosts.off       struct cbdt_slot[hosts.count]
 *   backends.off    struct cbdt_slot[backends.count]
 *   blkdevs.off     struct cbdt_slot[blkdevs.count]
 *   segments.off    struct cbdt_slot[segments.count]   (segment metadata)
 *   seg_data_off    segments.count x 16 MiB            (2 MiB aligned)
 */
#ifndef CBD_TRANSPORT_LAYOUT_H
#define CBD_TRANSPORT_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cbd transport format v1 is little-endian; a big-endian port needs le*_to_cpu accessors"
#endif

#define CBDT_MAGIC	      0x3154524e54444243ULL /* "CBDTNRT1" */
#define CBDT_FORMAT_VERSION   1
#define CBDT_INFO_HDR_VERSION 1
#define CBDT_ENDIAN_MARK      0x01020304U

#define CBDT_INFO_SIZE	4096U
#define CBDT_INFO_A_OFF 0U
#define CBDT_INFO_B_OFF 4096U
#define CBDT_GLOBAL_OFF 8192U
#define CBDT_META_OFF	12288U /* first slot area */

#define CBDT_SLOT_SIZE 1024U
#define CBDT_SEG_SIZE  (16U << 20)
#define CBDT_SEG_ALIGN (2U << 20) /* segment data is 2 MiB aligned (dax) */

/* Fixed slot counts of format v1; segments follow from the size. */
#define CBDT_HOSTS_NR	  32U
#define CBDT_BACKENDS_NR  128U
#define CBDT_BLKDEVS_NR	  128U
#define CBDT_SEGMENTS_MAX 65536U

/* Host ids are 16 bit in the owner word; this one means "no host". */
#define CBDT_HOST_NONE 0xffffU

/* cbdt_info.flags */
#define CBDT_F_ENTRY_CRC (1U << 0) /* se/ce carry a crc32c */
#define CBDT_F_DATA_CRC	 (1U << 1) /* data extents carry a crc32c */
#define CBDT_F_ALL	 (CBDT_F_ENTRY_CRC | CBDT_F_DATA_CRC)

/* One array of slots. */
struct cbdt_area {
	uint64_t off;	     /* byte offset from transport start */
	uint32_t entry_size; /* CBDT_SLOT_SIZE for slot areas */
	uint32_t count;
};
_Static_assert(sizeof(struct cbdt_area) == 16, "cbdt_area size");

/*
 * Transport info, two copies (A at 0, B at 4 KiB).  Writer: cbdt_format()
 * (whoever formats), rewriting the older copy.  Readers: everybody at open;
 * the newest copy (highest seq) with a good crc wins.
 */
struct cbdt_info {
	uint32_t crc;		 /* crc32c of bytes [4, sizeof) */
	uint32_t hdr_version;	 /* CBDT_INFO_HDR_VERSION */
	uint64_t seq;		 /* bumped on every rewrite */
	uint64_t magic;		 /* CBDT_MAGIC */
	uint16_t format_version; /* CBDT_FORMAT_VERSION */
	uint16_t flags;		 /* CBDT_F_* */
	uint32_t endian;	 /* CBDT_ENDIAN_MARK as written by a LE host */
	uint64_t size;		 /* transport size at format time, bytes */
	uint8_t uuid[16];	 /* random at format; names this transport */
	struct cbdt_area hosts;
	struct cbdt_area backends;
	struct cbdt_area blkdevs;
	struct cbdt_area segments; /* segment metadata slots */
	uint64_t seg_data_off;	   /* segment i at seg_data_off + i*seg_size */
	uint32_t seg_size;	   /* CBDT_SEG_SIZE */
	uint32_t reserved0;
	uint8_t reserved[120];
};
_Static_assert(sizeof(struct cbdt_info) == 256, "cbdt_info size");
_Static_assert(offsetof(struct cbdt_info, seq) == 8, "cbdt_info.seq");
_Static_assert(offsetof(struct cbdt_info, magic) == 16, "cbdt_info.magic");
_Static_assert(offsetof(struct cbdt_info, size) == 32, "cbdt_info.size");
_Static_assert(offsetof(struct cbdt_info, hosts) == 56, "cbdt_info.hosts");
_Static_assert(offsetof(struct cbdt_info, segments) == 104,
	       "cbdt_info.segments");
_Static_assert(offsetof(struct cbdt_info, seg_data_off) == 120,
	       "cbdt_info.seg_data_off");

/*
 * Transport-wide words, changed only by CAS.
 * janitor_lease: 0 when free, else cbdt_lease_make(host id, host generation)
 * of the host whose janitor is running a pass.  Writer/reader: janitors.
 */
struct cbdt_global {
	uint64_t janitor_lease;
	uint8_t reserved[4088];
};
_Static_assert(sizeof(struct cbdt_global) == 4096, "cbdt_global size");

/*
 * Owner word of a slot, changed only by compare-and-swap.
 *   bits  0..7   state (CBDT_SLOT_*)
 *   bits  8..23  owner host id (for a host slot: its own id)
 *   bits 24..63  generation, bumped by every claim and takeover, so that a
 *                CAS against a stale owner word (ABA) fails.
 */
enum cbdt_slot_state {
	CBDT_SLOT_FREE = 0,
	CBDT_SLOT_ACTIVE = 1,
};

#define CBDT_OWNER_STATE(o) ((unsigned)((o)&0xffU))
#define CBDT_OWNER_HOST(o)  ((unsigned)(((o) >> 8) & 0xffffU))
#define CBDT_OWNER_GEN(o)   ((o) >> 24)
#define CBDT_OWNER_MAKE(state, host, gen)                              \
	(((uint64_t)(gen) << 24) | ((uint64_t)((host)&0xffffU) << 8) | \
	 ((uint64_t)(state)&0xffU))
#define CBDT_GEN_MASK ((1ULL << 40) - 1)

/* Slot header: one cache line. */
struct cbdt_slot_hdr {
	uint64_t owner;	    /* CAS only: claimers, releasers, janitors */
	uint64_t heartbeat; /* writer: owner (store-release of ++);
				 * reader: observers (load-acquire) */
	uint64_t lock;	    /* backends: writable-mapping lock, CAS only;
				 * 0 or cbdt_lease_make(blkdev id, blkdev gen).
				 * Other slot types: 0. */
	uint8_t reserved[40];
};
_Static_assert(sizeof(struct cbdt_slot_hdr) == 64, "cbdt_slot_hdr size");

/* Record header: each record is kept twice; readers take the newest valid. */
struct cbdt_rec_hdr {
	uint32_t crc; /* crc32c of bytes [4, sizeof(struct cbdt_rec)) */
	uint32_t len; /* payload bytes in use, <= CBDT_REC_PAYLOAD */
	uint64_t seq; /* 0 = never written; newest valid copy wins */
};
_Static_assert(sizeof(struct cbdt_rec_hdr) == 16, "cbdt_rec_hdr size");

#define CBDT_REC_PAYLOAD 464U

struct cbdt_rec {
	struct cbdt_rec_hdr hdr;
	uint8_t payload[CBDT_REC_PAYLOAD];
};
_Static_assert(sizeof(struct cbdt_rec) == 480, "cbdt_rec size");

/* Writer of the records: the slot's owner.  Readers: anybody. */
struct cbdt_slot {
	struct cbdt_slot_hdr hdr;
	struct cbdt_rec rec[2];
};
_Static_assert(sizeof(struct cbdt_slot) == CBDT_SLOT_SIZE, "cbdt_slot size");
_Static_assert(offsetof(struct cbdt_slot, rec) == 64, "cbdt_slot.rec");

/* ---- record payloads (all fit CBDT_REC_PAYLOAD) ---- */

#define CBDT_HOSTNAME_LEN 64
#define CBDT_NAME_LEN	  64
#define CBDT_PATH_LEN	  256

enum cbdt_host_role {
	CBDT_ROLE_BACKEND = 1, /* a cbd-backend process */
	CBDT_ROLE_CLIENT = 2,  /* a cbdfs process */
};

struct cbdt_host_rec {
	char hostname[CBDT_HOSTNAME_LEN]; /* NUL terminated */
	uint8_t boot_id[16]; /* /proc/sys/kernel/random/boot_id of the process */
	uint32_t pid;	     /* of the process that owns the slot */
	uint16_t role;	     /* enum cbdt_host_role */
	uint16_t reserved0;
	uint32_t hb_interval_ms; /* how often this host bumps its heartbeats */
	uint32_t hb_timeout_ms;	 /* the timeout this host's janitor applies */
	uint8_t reserved[40];
	char mountpoint[CBDT_PATH_LEN]; /* a cbdfs client: where it is
					 * mounted (NUL terminated; empty in
					 * records of older writers) */
};
_Static_assert(sizeof(struct cbdt_host_rec) == 392, "cbdt_host_rec size");
_Static_assert(offsetof(struct cbdt_host_rec, mountpoint) == 136,
	       "host_rec.mountpoint");

#define CBDT_BACKEND_RO (1U << 0)
/* A cache in the transport acknowledges writes once durable there: a
 * client's FLUSH has nothing to do (clients may complete it at once). */
#define CBDT_BACKEND_CACHED (1U << 1)

/* A backend serves at least one 4 KiB block, in whole 512-byte sectors. */
#define CBDT_BACKEND_MIN_SIZE 4096U
#define CBDT_SECTOR_SIZE      512U

struct cbdt_backend_rec {
	uint16_t host_id;  /* host serving it */
	uint16_t handlers; /* max handler threads = max channels served */
	uint32_t flags;	   /* CBDT_BACKEND_* */
	uint64_t size;	   /* bytes */
	char name[CBDT_NAME_LEN]; /* [backend NAME] of cbd.ini */
	char path[CBDT_PATH_LEN]; /* backing file or block device */
	uint32_t block_size;	  /* logical block size of the backing store */
	uint32_t reserved0;
	uint64_t ident; /* cbdt_backend_ident(hostname, name, path):
				 * stable across restarts of the same config, so
				 * a restarted backend only re-attaches channels
				 * that were mapped to it */
	uint8_t reserved[16];
};
_Static_assert(sizeof(struct cbdt_backend_rec) == 368, "cbdt_backend_rec size");
_Static_assert(offsetof(struct cbdt_backend_rec, path) == 80,
	       "backend_rec.path");
_Static_assert(offsetof(struct cbdt_backend_rec, ident) == 344,
	       "backend_rec.ident");

#define CBDT_QUEUES_MAX 32U
#define CBDT_BLKDEV_RO	(1U << 0)

struct cbdt_blkdev_rec {
	uint16_t host_id; /* host (cbdfs) that mapped it */
	uint16_t backend_id;
	uint16_t queues;		/* number of channels in segs[] */
	uint16_t flags;			/* CBDT_BLKDEV_* */
	uint64_t backend_owner;		/* backend owner word when mapped */
	uint32_t segs[CBDT_QUEUES_MAX]; /* channel segment ids */
	uint64_t backend_ident;		/* ident of the backend when mapped */
	uint8_t reserved[40];
};
_Static_assert(sizeof(struct cbdt_blkdev_rec) == 192, "cbdt_blkdev_rec size");

enum cbdt_seg_type {
	CBDT_SEG_NONE = 0,
	CBDT_SEG_CHANNEL = 1,
	CBDT_SEG_CACHE = 2, /* part of a backend's cache (cache-layout.h) */
};

/*
 * A channel segment's record is written by the client that maps it; a
 * cache segment's by the backend whose cache it is (blkdev_* are 0 then).
 * The cache_* fields are 0 in channels.  Every cache segment's record
 * says its generation (bumped, and persisted, each time the cache puts
 * the segment to a new use, before anything names the new generation);
 * the record of cache index 0 also holds the cache control fields: the
 * dirty tail of the key log {seg, off, seq}, rewritten after each
 * writeback pass (two copies, crc and seq, as every record).
 */
struct cbdt_segment_rec {
	uint16_t type;	/* enum cbdt_seg_type */
	uint16_t queue; /* channel: index in the blkdev's segs[];
			 * cache: index in the cache's segment list */
	uint16_t backend_id;
	uint16_t blkdev_id;
	uint64_t blkdev_owner;	 /* blkdev owner word this channel belongs to;
				 * a janitor frees the segment once the blkdev
				 * slot no longer holds this word */
	uint64_t backend_ident;	 /* ident of the backend it is mapped to, or
				 * whose cache it is */
	uint32_t cache_gen;	 /* the segment's generation in the cache */
	uint32_t cache_nsegs;	 /* segments in the cache */
	uint32_t cache_tail_seg; /* index 0 only: where the oldest dirty */
	uint32_t cache_tail_off; /* kset is (cache index, byte offset in its */
	uint64_t cache_tail_seq; /* log area) and its sequence number */
	uint8_t reserved[16];
};
_Static_assert(sizeof(struct cbdt_segment_rec) == 64, "cbdt_segment_rec size");
_Static_assert(offsetof(struct cbdt_segment_rec, cache_gen) == 24,
	       "segment_rec.cache_gen");
_Static_assert(offsetof(struct cbdt_segment_rec, cache_tail_seq) == 40,
	       "segment_rec.cache_tail_seq");

/* ---- channels ---- */

#define CBDT_CHANNEL_MAGIC   0x314e484344424300ULL /* "\0CBDCHN1" */
#define CBDT_CHANNEL_VERSION 1
#define CBDT_CTRL_SIZE	     4096U
#define CBDT_DATA_UNIT	     4096U /* data area allocation granule */

enum cbdt_client_state {
	CBDT_CLIENT_NONE = 0,
	CBDT_CLIENT_OPEN = 1,	 /* client submitting */
	CBDT_CLIENT_CLOSING = 2, /* client gone or going: handler detaches */
};

/*
 * handler_flags.  UNFLUSHED: a write completed on this channel may sit in
 * the page cache of the handler's host (durability = writeback) and no
 * flush through this channel followed.  A later handler that finds it set
 * by another boot (the host crashed or rebooted) knows acknowledged
 * writes may be lost, and sets LOST: from then on every request of the
 * channel fails with -EIO, so the client never goes on with a disk that
 * went back in time.  Zero in channels of older writers: nothing known.
 * PACK: a hint for the client, set at attach: this handler's store is
 * memory (tmpfs, a RAM disk), where a request costs a copy and never a
 * device wait, so that requests queued on this one channel lose no
 * parallelism; the client may fill it before it uses other channels.
 */
#define CBDT_HF_UNFLUSHED (1U << 0)
#define CBDT_HF_LOST	  (1U << 1)
#define CBDT_HF_PACK	  (1U << 2)

enum cbdt_handler_state {
	CBDT_HANDLER_NONE = 0,
	CBDT_HANDLER_ATTACHED = 1, /* a handler serves the channel */
	CBDT_HANDLER_DETACHED = 2, /* handler stopped serving on request */
};

/*
 * What a channel's handler counts, in the control area (lines 5-8).
 * Writer: the handler, for every request just before its completion
 * (WRITE_ONCE of each word; one writer).  Readers: cbd-status (relaxed
 * loads; rates come from two samples).  Zero at channel init; they go on
 * counting across handler restarts.  Zero in channels of older writers.
 */
#define CBDT_STAT_OPS 6 /* index: enum cbdt_op; 0 counts bad entries */
#define CBDT_LAT_BUCKETS \
	14 /* handler time: [0,1) us, [1,2), [2,4), ...
				* [4096, inf) us */
enum cbdt_stat_err {
	CBDT_ERR_EIO,	  /* EIO (and LOST channels) */
	CBDT_ERR_EINVAL,  /* a bad entry */
	CBDT_ERR_EBADMSG, /* a crc mismatch */
	CBDT_ERR_EROFS,	  /* a write to a read-only backend */
	CBDT_ERR_ENOSPC,  /* the backing store is full */
	CBDT_ERR_OTHER,
	CBDT_ERR_NR,
};

struct cbdt_chan_stats {
	uint64_t ops[CBDT_STAT_OPS];	/* requests completed, by op */
	uint64_t bytes[CBDT_STAT_OPS];	/* READ/WRITE: data moved;
					* DISCARD/WRITE_ZEROES: range */
	uint64_t errors[CBDT_ERR_NR];	/* failed requests, by errno */
	uint64_t lat[CBDT_LAT_BUCKETS]; /* handler time per request */
};
_Static_assert(sizeof(struct cbdt_chan_stats) == 4 * 64, "chan_stats size");

/*
 * Control area at the start of a channel segment.  Cache lines split by
 * writer so that the two sides never write the same line.  Every ring index
 * is a free-running uint32_t (slot = index & (count - 1)); a ring is full
 * when head - tail == count.
 */
struct cbdt_channel_ctrl {
	/* line 0: geometry.  Writer: client at init.  Reader: handler, who
	 * validates it (cbdt_channel_ctrl_validate) before use. */
	uint64_t magic;	   /* CBDT_CHANNEL_MAGIC */
	uint32_t version;  /* CBDT_CHANNEL_VERSION */
	uint32_t flags;	   /* CBDT_F_* in force on this channel */
	uint32_t se_off;   /* from segment start */
	uint32_t se_count; /* power of two */
	uint32_t ce_off;
	uint32_t ce_count; /* power of two */
	uint32_t data_off;
	uint32_t data_size; /* multiple of CBDT_DATA_UNIT */
	uint16_t backend_id;
	uint16_t blkdev_id;
	uint16_t queue;
	uint16_t reserved0;
	uint64_t blkdev_owner; /* as in the segment record */
	uint8_t pad0[8];

	/* line 1.  Writer: client.  Reader: handler (and cbd-status). */
	uint32_t sq_head; /* next se to fill; store-release after the se */
	uint32_t cq_tail; /* next ce to reap; store-release after reading */
	uint32_t client_state; /* enum cbdt_client_state */
	uint32_t client_hints; /* CBDT_CH_*: hints, read relaxed */
	uint64_t timed_out;    /* requests the client failed for timeout=
			     * (its reaper; WRITE_ONCE, read relaxed) */
	uint64_t submitted;    /* requests the client submitted (under its
			     * queue lock; WRITE_ONCE, read relaxed) */
	uint8_t pad1[32];

	/* line 2.  Writer: handler.  Reader: client (and janitor). */
	uint32_t sq_tail; /* next se to consume; advanced after completion */
	uint32_t cq_head; /* next ce to post; store-release after the ce */
	uint32_t handler_state; /* enum cbdt_handler_state */
	uint32_t handler_flags; /* CBDT_HF_*; written before the completion
				 * whose store-release of cq_head publishes it */
	uint64_t handler_owner; /* backend owner word of the attached handler */
	uint8_t handler_boot[16]; /* boot id of the attached handler's kernel;
				 * read by the next handler (zero: unknown) */
	uint8_t pad2[24];

	/* line 3: handler's doorbell.  The handler sets it to 1 before
	 * sleeping; the client clears it and wakes the handler after a submit. */
	uint32_t sq_sleep;
	uint8_t pad3[60];

	/* line 4: client's doorbell, the same for completions. */
	uint32_t cq_sleep;
	uint8_t pad4[60];

	/* lines 5-8: the handler's counters (struct cbdt_chan_stats). */
	struct cbdt_chan_stats stats;

	uint8_t reserved[CBDT_CTRL_SIZE - 9 * 64];
};
_Static_assert(sizeof(struct cbdt_channel_ctrl) == CBDT_CTRL_SIZE, "ctrl size");
_Static_assert(offsetof(struct cbdt_channel_ctrl, sq_head) == 64,
	       "ctrl.sq_head");
_Static_assert(offsetof(struct cbdt_channel_ctrl, sq_tail) == 128,
	       "ctrl.sq_tail");
_Static_assert(offsetof(struct cbdt_channel_ctrl, handler_flags) == 140,
	       "ctrl.handler_flags");
_Static_assert(offsetof(struct cbdt_channel_ctrl, handler_boot) == 152,
	       "ctrl.handler_boot");
_Static_assert(offsetof(struct cbdt_channel_ctrl, sq_sleep) == 192,
	       "ctrl.sq_sleep");
_Static_assert(offsetof(struct cbdt_channel_ctrl, cq_sleep) == 256,
	       "ctrl.cq_sleep");
_Static_assert(offsetof(struct cbdt_channel_ctrl, timed_out) == 80,
	       "ctrl.timed_out");
_Static_assert(offsetof(struct cbdt_channel_ctrl, submitted) == 88,
	       "ctrl.submitted");
_Static_assert(offsetof(struct cbdt_channel_ctrl, stats) == 320, "ctrl.stats");

enum cbdt_op {
	CBDT_OP_READ = 1,
	CBDT_OP_WRITE = 2,
	CBDT_OP_FLUSH = 3,
	CBDT_OP_DISCARD = 4,
	CBDT_OP_WRITE_ZEROES = 5,
	CBDT_OP_MAX = CBDT_OP_WRITE_ZEROES,
};

/* client_hints: the last submission was the only request its client
 * held, so the next is likely to follow its completion closely (QD1) */
#define CBDT_CH_LONE (1U << 0)

#define CBDT_SE_FUA	  (1U << 0) /* write through: data durable on completion */
#define CBDT_SE_FLAGS_ALL CBDT_SE_FUA

/*
 * Submission entry.  Writer: client, before the store-release of sq_head.
 * Reader: handler, after the load-acquire of sq_head; it copies the entry
 * to private memory and validates that copy (cbdt_se_validate).
 */
struct cbdt_se {
	uint32_t crc;	   /* crc32c of bytes [4, 64) if CBDT_F_ENTRY_CRC */
	uint16_t op;	   /* enum cbdt_op */
	uint16_t flags;	   /* CBDT_SE_* */
	uint64_t seq;	   /* submission number; (uint32_t)seq == ring index */
	uint64_t req_id;   /* opaque to the handler, echoed in the ce */
	uint64_t offset;   /* byte offset in the backend */
	uint32_t len;	   /* bytes (READ/WRITE/DISCARD/WRITE_ZEROES) */
	uint32_t data_off; /* extent in the data area (READ/WRITE) */
	uint32_t data_len; /* == len for READ/WRITE, else 0 */
	uint32_t data_crc; /* WRITE: crc32c of the data if CBDT_F_DATA_CRC */
	uint8_t reserved[16];
};
_Static_assert(sizeof(struct cbdt_se) == 64, "cbdt_se size");
_Static_assert(offsetof(struct cbdt_se, offset) == 24, "cbdt_se.offset");
_Static_assert(offsetof(struct cbdt_se, data_crc) == 44, "cbdt_se.data_crc");

/*
 * Completion entry.  Writer: handler, before the store-release of cq_head.
 * Reader: client, after the load-acquire of cq_head.
 */
struct cbdt_ce {
	uint32_t crc;	   /* crc32c of bytes [4, 32) if CBDT_F_ENTRY_CRC */
	int32_t result;	   /* 0 or -errno */
	uint64_t seq;	   /* seq of the se it completes */
	uint64_t req_id;   /* req_id of that se */
	uint32_t data_crc; /* READ: crc32c of the data if CBDT_F_DATA_CRC */
	uint32_t reserved;
};
_Static_assert(sizeof(struct cbdt_ce) == 32, "cbdt_ce size");
_Static_assert(offsetof(struct cbdt_ce, req_id) == 16, "cbdt_ce.req_id");

#endif /* CBD_TRANSPORT_LAYOUT_H */
