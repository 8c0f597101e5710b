# Unit tests of cbd-backend's config parsing and backing-store I/O.
UNIT_TESTS += test-config test-store

test-config_EXTRA := backend/config.c
test-config_LIBS := $(call pc_libs,inih)

test-store_EXTRA := backend/store.c
