# Unit tests of cbd-backend's config parsing and backing-store I/O, and of
# libcbdt's host registration (transport/host.c) that it relies on.
UNIT_TESTS += test-config test-host test-store

test-config_LIBS := $(call pc_libs,inih)

test-store_EXTRA := backend/store.c
