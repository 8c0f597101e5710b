# Helpers shared by the daemons and tools (build/libcbdcommon.a); not part
# of libcbdt, which never prints.
COMMON_SRCS := \
	common/cli.c \
	common/config-check.c \
	common/config.c \
	common/log.c \
	common/util.c \
	common/worker.c
