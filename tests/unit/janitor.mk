# Unit tests of mapping (transport/blkdev.c), clearing (transport/clear.c)
# and the janitor's decisions (backend/janitor.c) on real transports.
UNIT_TESTS += test-blkdev test-janitor
test-janitor_EXTRA := backend/janitor.c
