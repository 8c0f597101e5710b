# libcbdt: the transport library (build/libcbdt.a).
LIBCBDT_SRCS := \
	transport/blkdev.c \
	transport/cache.c \
	transport/chan-alloc.c \
	transport/chan-ctrl.c \
	transport/channel.c \
	transport/clear.c \
	transport/crc32c.c \
	transport/host.c \
	transport/info.c \
	transport/inuse.c \
	transport/klog.c \
	transport/kset.c \
	transport/lease.c \
	transport/liveness.c \
	transport/probe.c \
	transport/queue.c \
	transport/serve.c \
	transport/slot.c \
	transport/transport.c \
	transport/wait.c
