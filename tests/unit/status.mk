# Unit tests of cbd-status's snapshot, JSON builder and tables (tools/).
UNIT_TESTS += test-status
test-status_EXTRA := tools/status-cache.c tools/status-io.c tools/status.c tools/status-json.c tools/status-table.c
test-status_LIBS := $(call pc_libs,jansson)
