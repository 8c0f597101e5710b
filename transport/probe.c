/* SPDX-License-Identifier: MIT */
/*
 * What kind of thing a transport path is, before it is mapped: a dax
 * character device (size and alignment through libdaxctl, system-ram mode,
 * a page map on the device), or a file on a file system that is not one
 * memory for the hosts that map it.  Reads sysfs and /proc, never the
 * device itself.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <daxctl/libdaxctl.h>

#include "cbdt.h"
#include "internal.h"

/*
 * Does the nd_dax device above dax character device @rdev keep its page
 * map (struct pages) on the device itself (ndctl --map=dev, sysfs mode
 * "pmem")?  Each kernel that maps it then writes its own page structs into
 * the shared memory: two hosts corrupt each other.
 */
bool dax_pagemap_on_device(dev_t rdev)
{
	char path[96], mode[16] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/../mode", major(rdev),
		 minor(rdev));
	f = fopen(path, "re");
	if (!f)
		return false; /* not under an NVDIMM namespace */
	if (!fgets(mode, sizeof(mode), f))
		mode[0] = '\0';
	fclose(f);
	return !strncmp(mode, "pmem", 4);
}

/*
 * Size and alignment of a dax character device through libdaxctl; refuses
 * a device in system-ram mode (its memory belongs to the kernel), and any
 * other character device (-ENODEV).
 */
int dax_probe(dev_t rdev, uint64_t *size, uint64_t *align)
{
	struct daxctl_ctx *ctx;
	struct daxctl_region *region;
	struct daxctl_dev *dev;
	int ret = -ENODEV;

	if (daxctl_new(&ctx) < 0)
		return -ENODEV;
	daxctl_region_foreach (ctx, region) {
		daxctl_dev_foreach (region, dev) {
			if ((unsigned)daxctl_dev_get_major(dev) !=
				    major(rdev) ||
			    (unsigned)daxctl_dev_get_minor(dev) != minor(rdev))
				continue;
			if (daxctl_dev_get_memory(dev)) {
				ret = -EADDRINUSE; /* system-ram mode */
				goto out_unref;
			}
			*size = daxctl_dev_get_size(dev);
			*align = daxctl_dev_get_align(dev);
			if (!*align)
				*align = daxctl_region_get_align(region);
			if (!*align)
				*align = CBDT_SEG_ALIGN;
			ret = 0;
			goto out_unref;
		}
	}
out_unref:
	daxctl_unref(ctx);
	return ret;
}

/*
 * A file on a file system served by another machine or process (NFS, SMB,
 * 9p, virtiofs, Ceph, FUSE, cluster file systems): its pages are not one
 * memory for the hosts that map it, so it is never a transport.  The type
 * comes from /proc/self/mountinfo: statfs() of a 9p file reports the
 * server's file system.
 */
bool fs_is_remote(dev_t dev)
{
	static const char *const remote[] = {
		"nfs",	    "nfs4",   "cifs", "smb3",	   "smbfs", "9p",
		"virtiofs", "ceph",   "fuse", "fuseblk",   "ocfs2", "gfs2",
		"gpfs",	    "lustre", "afs",  "glusterfs",
	};
	char line[4096], fstype[64];
	unsigned maj, min;
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2 || !sep ||
		    maj != major(dev) || min != minor(dev) ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		for (unsigned i = 0; i < sizeof(remote) / sizeof(remote[0]);
		     i++)
			if (!strcmp(fstype, remote[i]) ||
			    !strncmp(fstype, "fuse.", 5))
				found = true;
		break;
	}
	fclose(f);
	return found;
}
