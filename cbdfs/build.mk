# cbdfs: the FUSE client (build/cbdfs).
PROGS += cbdfs
cbdfs_SRCS := \
	cbdfs/blkdev.c \
	cbdfs/engine.c \
	cbdfs/main.c \
	cbdfs/ops.c
cbdfs_LIBS = $(call pc_libs,fuse3)
EXTRA_CFLAGS_cbdfs_ = $(call pc_cflags,fuse3)
