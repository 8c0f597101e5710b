# libcbdt: the transport library (build/libcbdt.a).
LIBCBDT_SRCS := \
	transport/channel.c \
	transport/clear.c \
	transport/crc32c.c \
	transport/liveness.c \
	transport/slot.c \
	transport/transport.c \
	transport/wait.c
