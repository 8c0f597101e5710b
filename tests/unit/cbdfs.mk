# Unit tests of cbdfs's FUSE protocol layer (session.c, ops.c, names.c)
# on a real transport, with a socket pair in place of /dev/fuse.
UNIT_TESTS += test-fuse
test-fuse_EXTRA := cbdfs/blkdev.c cbdfs/engine.c cbdfs/names.c cbdfs/ops.c \
	cbdfs/session.c cbdfs/fuse-dev.c cbdfs/fuse-uring.c
test-fuse_LIBS := $(call pc_libs,liburing)
