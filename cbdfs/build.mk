# cbdfs: the FUSE client (build/cbdfs).
PROGS += cbdfs
cbdfs_SRCS := \
	cbdfs/blkdev.c \
	cbdfs/engine.c \
	cbdfs/fuse-dev.c \
	cbdfs/fuse-uring.c \
	cbdfs/main.c \
	cbdfs/names.c \
	cbdfs/ops.c \
	cbdfs/session.c
cbdfs_LIBS = $(call pc_libs,fuse3 liburing)
EXTRA_CFLAGS_cbdfs_ = $(call pc_cflags,fuse3)
