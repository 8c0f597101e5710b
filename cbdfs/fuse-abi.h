/* SPDX-License-Identifier: MIT */
/*
 * The FUSE kernel ABI as cbdfs speaks it: <linux/fuse.h> of the build
 * machine (Debian 12: protocol 7.38) plus what it lacks of protocol 7.42,
 * the version whose io_uring transport we use (Linux 6.14+): the INIT
 * flag and the layouts of fuse_uring_req_header and fuse_uring_cmd_req,
 * as include/uapi/linux/fuse.h of the kernel defines them.  Nothing else
 * of 7.39-7.45 is used.
 */
#ifndef CBD_CBDFS_FUSE_ABI_H
#define CBD_CBDFS_FUSE_ABI_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>

/* The protocol minor we implement; the kernel's may be newer or older. */
#define CBDFS_FUSE_MINOR 42
/* Older kernels lack what we rely on (FUSE_MAX_PAGES, full structs). */
#define CBDFS_FUSE_MINOR_MIN 31

#ifndef FUSE_INIT_EXT
#error "<linux/fuse.h> older than protocol 7.36"
#endif

/* 7.42: INIT flag (bit 41: flags2 bit 9) */
#ifndef FUSE_OVER_IO_URING
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif

#define CBDFS_URING_IN_OUT_HEADER_SZ 128
#define CBDFS_URING_OP_IN_OUT_SZ     128

/* Per entry, written by the kernel with a request, by us with the reply. */
struct cbdfs_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* the request's unique: ours to commit with */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

/* The header buffer of an entry (iov[0] of its REGISTER). */
struct cbdfs_uring_req_header {
	/* request: struct fuse_in_header; reply: struct fuse_out_header */
	char in_out[CBDFS_URING_IN_OUT_HEADER_SZ];
	/* request: the op's in-struct (in_args[0]); unused in replies,
	 * whose out-struct goes to the payload */
	char op_in[CBDFS_URING_OP_IN_OUT_SZ];
	struct cbdfs_uring_ent_in_out ring_ent_in_out;
};

enum cbdfs_uring_cmd {
	CBDFS_URING_CMD_REGISTER = 1,
	CBDFS_URING_CMD_COMMIT_AND_FETCH = 2,
};

/* In the command area of the SQE (SQE128). */
struct cbdfs_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct cbdfs_uring_ent_in_out) == 32, "ent_in_out");
_Static_assert(sizeof(struct cbdfs_uring_req_header) == 288, "req_header");
_Static_assert(offsetof(struct cbdfs_uring_req_header, ring_ent_in_out) == 256,
	       "req_header.ring_ent_in_out");
_Static_assert(sizeof(struct cbdfs_uring_cmd_req) == 24, "cmd_req");
_Static_assert(sizeof(struct fuse_init_out) == 64, "fuse_init_out");

#endif /* CBD_CBDFS_FUSE_ABI_H */
