# cbd-status (read-only view of a transport) and cbd-admin (format, clear
# dead objects); both share the snapshot in tools/status.c.
PROGS += cbd-status cbd-admin

cbd_status_SRCS := \
	tools/cbd-status.c \
	tools/status-cache.c \
	tools/status-io.c \
	tools/status-json.c \
	tools/status-table.c \
	tools/status.c
cbd_status_LIBS := $(call pc_libs,jansson inih)

cbd_admin_SRCS := \
	tools/admin-cache.c \
	tools/admin-clear.c \
	tools/cbd-admin.c \
	tools/status-cache.c \
	tools/status-io.c \
	tools/status.c
cbd_admin_LIBS := $(call pc_libs,inih)
