/* SPDX-License-Identifier: MIT */
/*
 * What cbdfs shows: the root directory with a file "backendN" per
 * backend listed (blkdev.c says which), and "by-name" with a symbolic link
 * NAME -> ../backendN per backend name, the lowest id of a name winning.
 * Inode numbers are fixed (cbdfs.h), attributes come from the backends,
 * and directory listings are snapshots taken at opendir.  No state of its
 * own: every answer is computed from cbdfs_backend_info().
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cbdfs.h"
#include "util.h"

#define BLKSIZE 4096

enum cbdfs_ino_kind cbdfs_ino_kind(uint64_t ino, uint32_t *id)
{
	if (ino == CBDFS_ROOT_INO)
		return CBDFS_INO_ROOT;
	if (ino == CBDFS_BYNAME_INO)
		return CBDFS_INO_BYNAME;
	if (ino >= CBDFS_INO(0) && ino < CBDFS_INO(CBDT_BACKENDS_NR)) {
		*id = (uint32_t)(ino - CBDFS_INO(0));
		return CBDFS_INO_FILE;
	}
	if (ino >= CBDFS_LINK_INO(0) &&
	    ino < CBDFS_LINK_INO(CBDT_BACKENDS_NR)) {
		*id = (uint32_t)(ino - CBDFS_LINK_INO(0));
		return CBDFS_INO_LINK;
	}
	return CBDFS_INO_NONE;
}

/* A backend name that can be a directory entry (records of any writer). */
static bool link_name_ok(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") &&
	       !strchr(name, '/');
}

/* The backend by-name/@name points to: the lowest id of that name. */
static int by_name(struct cbdfs *fs, const char *name, uint32_t *id,
		   struct cbdfs_backend_info *bi)
{
	if (!link_name_ok(name))
		return -ENOENT;
	for (uint32_t i = 0; i < CBDT_BACKENDS_NR; i++)
		if (!cbdfs_backend_info(fs, i, bi) && !strcmp(bi->name, name)) {
			*id = i;
			return 0;
		}
	return -ENOENT;
}

/* Backend @id has the link by-name/NAME (it is the lowest id of NAME). */
static int link_info(struct cbdfs *fs, uint32_t id,
		     struct cbdfs_backend_info *bi)
{
	struct cbdfs_backend_info other;
	uint32_t owner;

	if (cbdfs_backend_info(fs, id, bi) ||
	    by_name(fs, bi->name, &owner, &other) || owner != id)
		return -ENOENT;
	return 0;
}

int cbdfs_link_target(struct cbdfs *fs, uint32_t id, char *buf, size_t size)
{
	struct cbdfs_backend_info bi;

	if (link_info(fs, id, &bi))
		return -ENOENT;
	return snprintf(buf, size, "../backend%u", id);
}

/* "backendN" with N a canonical decimal backend id; -1 otherwise. */
static long name_to_id(const char *name)
{
	const char *p;
	long id = 0;

	if (strncmp(name, "backend", 7) != 0)
		return -1;
	p = name + 7;
	if (!*p || (p[0] == '0' && p[1]) || strlen(p) > 5)
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		id = id * 10 + (*p - '0');
	}
	return id < CBDT_BACKENDS_NR ? id : -1;
}

uint64_t cbdfs_lookup(struct cbdfs *fs, uint64_t parent, const char *name)
{
	struct cbdfs_backend_info bi;
	uint32_t id;
	long n;

	if (parent == CBDFS_ROOT_INO && !strcmp(name, CBDFS_BYNAME))
		return CBDFS_BYNAME_INO;
	if (parent == CBDFS_ROOT_INO) {
		n = name_to_id(name);
		return n >= 0 ? CBDFS_INO(n) : 0;
	}
	if (parent == CBDFS_BYNAME_INO && !by_name(fs, name, &id, &bi))
		return CBDFS_LINK_INO(id);
	return 0;
}

int cbdfs_attr(struct cbdfs *fs, uint64_t ino, struct fuse_attr *a,
	       struct cbdfs_backend_info *bi)
{
	struct cbdfs_backend_info tmp;
	char target[32];
	uint32_t id = 0;

	if (!bi)
		bi = &tmp;
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->uid = (uint32_t)fs->uid;
	a->gid = (uint32_t)fs->gid;
	a->atime = a->mtime = a->ctime = (uint64_t)fs->start_time.tv_sec;
	a->atimensec = a->mtimensec = a->ctimensec =
		(uint32_t)fs->start_time.tv_nsec;
	a->blksize = BLKSIZE;
	switch (cbdfs_ino_kind(ino, &id)) {
	case CBDFS_INO_ROOT:
		a->mode = S_IFDIR | 0755;
		a->nlink = 3; /* ., .. and by-name/.. */
		return 0;
	case CBDFS_INO_BYNAME:
		a->mode = S_IFDIR | 0755;
		a->nlink = 2;
		return 0;
	case CBDFS_INO_LINK:
		if (link_info(fs, id, bi))
			return -ENOENT;
		a->mode = S_IFLNK | 0777;
		a->nlink = 1;
		a->size = (uint64_t)snprintf(target, sizeof(target),
					     "../backend%u", id);
		return 0;
	case CBDFS_INO_FILE:
		if (cbdfs_backend_info(fs, id, bi))
			return -ENOENT;
		a->mode = S_IFREG | (bi->ro ? 0400 : 0600);
		a->nlink = 1;
		a->size = bi->size;
		a->blocks = (bi->size + 511) / 512;
		return 0;
	default:
		return -ENOENT;
	}
}

/* ---- directory snapshots ---------------------------------------------- */

static int dir_add(struct cbdfs_dir *d, const char *name, uint64_t ino,
		   unsigned type)
{
	size_t namelen = strlen(name);
	size_t len = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
	struct fuse_dirent *de;
	char *p = realloc(d->p, d->size + len);

	if (!p)
		return -ENOMEM;
	d->p = p;
	de = (struct fuse_dirent *)(p + d->size);
	memset(de, 0, len);
	de->ino = ino;
	de->off = d->size + len; /* where the next READDIR starts */
	de->namelen = (uint32_t)namelen;
	de->type = type;
	memcpy(de->name, name, namelen);
	d->size += len;
	return 0;
}

int cbdfs_dir_open(struct cbdfs *fs, uint64_t ino, struct cbdfs_dir **out)
{
	struct cbdfs_backend_info bi;
	struct cbdfs_dir *d;
	bool links = ino == CBDFS_BYNAME_INO;
	char name[32];
	uint32_t id;
	int ret;

	switch (cbdfs_ino_kind(ino, &id)) {
	case CBDFS_INO_ROOT:
	case CBDFS_INO_BYNAME:
		break;
	case CBDFS_INO_NONE:
		return -ENOENT;
	default:
		return -ENOTDIR;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	ret = dir_add(d, ".", ino, DT_DIR);
	if (!ret)
		ret = dir_add(d, "..", CBDFS_ROOT_INO, DT_DIR);
	if (!ret && !links)
		ret = dir_add(d, CBDFS_BYNAME, CBDFS_BYNAME_INO, DT_DIR);
	for (id = 0; id < CBDT_BACKENDS_NR && !ret; id++) {
		if (!links) {
			if (cbdfs_backend_info(fs, id, &bi))
				continue;
			snprintf(name, sizeof(name), "backend%u", id);
			ret = dir_add(d, name, CBDFS_INO(id), DT_REG);
		} else if (!link_info(fs, id, &bi)) {
			ret = dir_add(d, bi.name, CBDFS_LINK_INO(id), DT_LNK);
		}
	}
	if (ret) {
		cbdfs_dir_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

void cbdfs_dir_free(struct cbdfs_dir *d)
{
	if (d) {
		free(d->p);
		free(d);
	}
}

/* Totals for statfs: every listed backend's blocks, and the files. */
void cbdfs_totals(struct cbdfs *fs, uint64_t *blocks, uint64_t *files)
{
	struct cbdfs_backend_info bi;

	*blocks = 0;
	*files = 2; /* the directories */
	for (uint32_t id = 0; id < CBDT_BACKENDS_NR; id++) {
		if (cbdfs_backend_info(fs, id, &bi))
			continue;
		*blocks += bi.size / BLKSIZE;
		(*files)++;
	}
}
