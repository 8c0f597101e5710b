# cbd-backend: serves the backends of a cbd.ini through a transport.
PROGS += cbd-backend

cbd_backend_SRCS := \
	backend/backends.c \
	backend/cache-index.c \
	backend/cache-io.c \
	backend/cache-wb.c \
	backend/cache.c \
	backend/discover.c \
	backend/handler.c \
	backend/janitor.c \
	backend/main.c \
	backend/service.c \
	backend/store.c
cbd_backend_LIBS := $(call pc_libs,inih libsystemd)
