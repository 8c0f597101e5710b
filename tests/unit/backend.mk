# Unit tests of cbd-backend's config parsing and backing-store I/O, and of
# libcbdt's host registration (transport/host.c) that it relies on.
UNIT_TESTS += test-config test-host test-store

test-config_LIBS := $(call pc_libs,inih)

test-store_EXTRA := backend/store.c

# The pcache index (backend/cache-index.c) against a per-sector model.
UNIT_TESTS += test-cache-index
test-cache-index_EXTRA := backend/cache-index.c

# The pcache engine on a real transport file and image, against a model.
UNIT_TESTS += test-cache
test-cache_EXTRA := backend/cache.c backend/cache-index.c backend/cache-io.c \
	backend/cache-wb.c backend/store.c
